// Per-request time of the built worker inside workerd (Miniflare), against GET /healthz of
// the same worker in the same run. Sequential requests, so each number is one request's
// full path through workerd: wasm + (for accepted webhooks) the Durable Object and the
// hand-off fetch to a local issuer stand-in.
// With a payment queue, an accepted webhook is one round trip to its delivery object, which
// keeps the message in its outbox and sends it from its alarm (SendMessageBatch, SigV4): the
// rows of those workers wait until every message of the run reached the queue before reading
// the CPU time, so the sends are in the figure. They are measured against a local SQS
// stand-in that answers at once, sequentially and with concurrent requests (batches form
// only when several messages wait in one of the 64 objects), and, with
// PROMO_TEST_DYNAMODB_ENDPOINT set (moto, which serves SQS too; infra/test.sh
// --services-only starts it), against moto's SQS.
// Run: (cd edge && worker-build --release && node bench/workerd.mjs [N])
import { createServer } from "node:http";
import { readFileSync, readdirSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { BASE, STANDARD_SECRET, standardHeaders, startWorker } from "../tests/helpers.mjs";

const N = Number(process.argv[2] ?? 2000);
const ISSUER_SECRET = "whsec_" + Buffer.from("issuer-handoff-secret-for-bench!").toString("base64");
// The issuer's function URL and an SQS stand-in in one: a SendMessageBatch is answered as SQS
// does (every entry successful), and its messages counted.
const sent = { messages: 0, batches: 0 };
const issuer = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    if (req.headers["x-amz-target"] !== "AmazonSQS.SendMessageBatch") return res.end("{}");
    const entries = JSON.parse(Buffer.concat(chunks).toString()).Entries;
    sent.messages += entries.length;
    sent.batches += 1;
    res.end(JSON.stringify({ Successful: entries.map((e) => ({ Id: e.Id, MessageId: randomUUID(), MD5OfMessageBody: "" })), Failed: [] }));
  });
});
await new Promise((r) => issuer.listen(0, "127.0.0.1", r));
const mf = await startWorker({
  PROMO_ISSUER_URL: `http://127.0.0.1:${issuer.address().port}/issue`,
  PROMO_ISSUER_SECRET: ISSUER_SECRET,
});

function paid(i) {
  return JSON.stringify({ type: "paid", payment_id: `bench-${i}`, order_id: `o-${i}`, user_id: "u-1",
    amount: 60000, currency: "KRW", items: [], occurred_at: "2026-11-27T10:00:00Z" });
}

/** A new delivery of a new payment: accepted, handed off. */
function accepted(i) {
  const body = paid(`${randomUUID()}-${i}`);
  return [`${BASE}/v1/webhooks/standard`, { method: "POST", headers: standardHeaders(STANDARD_SECRET, body), body }];
}

// CPU time of the workerd process(es) Miniflare spawned: utime + stime from /proc, all
// threads included (the wasm, the Durable Object and the runtime's own I/O). Miniflare has
// no per-request CPU counter, so the per-request figure is the process's CPU delta over the
// run divided by the number of requests; the /healthz row is the runtime's own floor.
const TICKS_PER_SECOND = 100; // USER_HZ on Linux
function workerdPids() {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (comm === "workerd" && ppid === process.pid) pids.push(entry);
    } catch { /* the process went away */ }
  }
  if (pids.length === 0) throw new Error("no workerd child process found: cannot measure its CPU time");
  return pids;
}
function workerdCpuMicros(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
  }
  return (ticks * 1e6) / TICKS_PER_SECOND;
}

/** Until `done()` holds (every message of a run sent), at most 60 s. */
async function until(done) {
  const deadline = Date.now() + 60_000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error("the outbox did not drain within 60 s");
    await new Promise((r) => setTimeout(r, 20));
  }
}

// `drained(n)`: resolves once `n` more messages than before the run reached the queue (the
// outbox rows), so the sends' CPU is counted; `concurrency` requests are in flight at once.
async function measure(name, make, worker = mf, { drained, concurrency = 1 } = {}) {
  for (let i = 0; i < 100; i++) await (await worker.dispatchFetch(...make(-i - 1))).arrayBuffer(); // warm-up
  if (drained) await drained(0);
  const pids = workerdPids();
  const batches0 = sent.batches, messages0 = sent.messages;
  const cpu0 = workerdCpuMicros(pids);
  const times = [];
  let next = 0;
  const t00 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < N) {
      const args = make(next++);
      const t0 = process.hrtime.bigint();
      const res = await worker.dispatchFetch(...args);
      await res.arrayBuffer();
      times.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
  }));
  const wall = Number(process.hrtime.bigint() - t00) / 1e9;
  if (drained) await drained(N);
  const cpuPerRequest = (workerdCpuMicros(pids) - cpu0) / N;
  times.sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / N;
  const q = (p) => times[Math.min(N - 1, Math.floor(N * p))];
  const batches = sent.batches - batches0;
  const extra = batches ? `  ${(N / wall).toFixed(0)} req/s, ${sent.messages - messages0} messages in ${batches} batches` : "";
  console.log(`${name.padEnd(44)} mean ${mean.toFixed(0).padStart(6)} µs  p50 ${q(0.5).toFixed(0).padStart(6)} µs  p99 ${q(0.99).toFixed(0).padStart(6)} µs  workerd CPU ${cpuPerRequest.toFixed(0).padStart(5)} µs/req${extra}`);
}

console.log(`workerd via Miniflare, ${N} sequential requests each`);
await measure("GET /healthz (baseline)", () => [`${BASE}/healthz`]);
await measure("POST webhook, bad signature (verify only)", (i) => {
  const body = paid(`bad-${i}`);
  const headers = standardHeaders("whsec_" + Buffer.from("wrong-secret-wrong-secret-wrong!").toString("base64"), body);
  return [`${BASE}/v1/webhooks/standard`, { method: "POST", headers, body }];
});
await measure("POST webhook, accepted (verify+DO+hand-off)", accepted);
await measure("POST webhook, accepted, 16 at once (fetch)", accepted, mf, { concurrency: 16 });
// The production hand-off (the outbox, SendMessageBatch signed with SigV4) against the local
// stand-in, which answers at once: the Worker's and its objects' own cost. The outbox's window
// (PROMO_OUTBOX_WINDOW_MS) trades the hand-off's delay for batches; with a window longer than
// the run, nothing is sent during it: the request path alone.
const queueAt = `http://127.0.0.1:${issuer.address().port}/123456789012/promo-payments`;
const signingWorker = (window) => startWorker({ PROMO_PAYMENT_QUEUE_URL: queueAt, PROMO_AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
  PROMO_AWS_SECRET_ACCESS_KEY: "bench-secret-key", ...(window === undefined ? {} : { PROMO_OUTBOX_WINDOW_MS: String(window) }) });
let sentBase = 0;
const drainedWithin = (window = 50) => async (n) => {
  if (n === 0) {
    const quiet = window + 300; // the warm-up's messages are all sent when none came for this long
    await until(async () => { const s = sent.messages; await new Promise((r) => setTimeout(r, quiet)); return s === sent.messages; });
    sentBase = sent.messages;
    return;
  }
  await until(() => sent.messages >= sentBase + n);
};
{
  const signed = await signingWorker();
  await measure("GET /healthz (baseline, signing worker)", () => [`${BASE}/healthz`], signed);
  await measure("POST webhook, replay (signing worker)", () => {
    const body = paid("replayed-signed");
    return [`${BASE}/v1/webhooks/standard`, { method: "POST", headers: standardHeaders(STANDARD_SECRET, body, { id: "msg_replayed_signed" }), body }];
  }, signed);
  await measure("POST webhook, accepted (outbox, 1 s window)", accepted, signed, { drained: drainedWithin(1000) });
  await measure("POST webhook, accepted, 16 at once (1 s)", accepted, signed, { drained: drainedWithin(1000), concurrency: 16 });
  await signed.dispose();
}
for (const window of [50, 5000, 60000]) {
  const signed = await signingWorker(window);
  const label = window === 60000 ? "request path, sent after the run" : `${window >= 1000 ? `${window / 1000} s` : `${window} ms`} window`;
  await measure(`POST webhook, accepted (outbox, ${label})`, accepted, signed, window === 60000 ? {} : { drained: drainedWithin(window) });
  await signed.dispose();
}
const MOTO = process.env.PROMO_TEST_DYNAMODB_ENDPOINT;
if (MOTO) {
  const sqs = async (action, body) => {
    const res = await fetch(`${MOTO}/`, { method: "POST", body: JSON.stringify(body), headers: {
      "content-type": "application/x-amz-json-1.0", "x-amz-target": `AmazonSQS.${action}`,
      authorization: "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0" } });
    if (res.status !== 200) throw new Error(`${action}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const { QueueUrl } = await sqs("CreateQueue", { QueueName: `promo-bench-${randomUUID()}` });
  const queued = await startWorker({ PROMO_PAYMENT_QUEUE_URL: QueueUrl, PROMO_AWS_ACCESS_KEY_ID: "test",
    PROMO_AWS_SECRET_ACCESS_KEY: "test" });
  const inQueue = async () => Number((await sqs("GetQueueAttributes", { QueueUrl,
    AttributeNames: ["ApproximateNumberOfMessages"] })).Attributes.ApproximateNumberOfMessages);
  let base = 0;
  const drained = async (n) => {
    if (n === 0) { await until(async () => { const a = await inQueue(); await new Promise((r) => setTimeout(r, 500)); return a === await inQueue(); }); base = await inQueue(); return; }
    await until(async () => (await inQueue()) >= base + n);
  };
  await measure("GET /healthz (baseline, queue worker)", () => [`${BASE}/healthz`], queued);
  await measure("POST webhook, accepted (outbox to moto's SQS)", accepted, queued, { drained });
  await queued.dispose();
  await sqs("DeleteQueue", { QueueUrl });
}
await measure("POST webhook, replay (verify+DO)", () => {
  const body = paid("replayed");
  return [`${BASE}/v1/webhooks/standard`, { method: "POST", headers: standardHeaders(STANDARD_SECRET, body, { id: "msg_replayed" }), body }];
});
// The pricing engine inside workerd: POST /v1/quotes with the spec's example (1 coupon, 1
// promotion) and a large request (50 coupons, 20 promotions, 500,000 mileage in units of 10).
const window = { starts_at: "2026-01-01T00:00:00Z", ends_at: "2099-01-01T00:00:00Z" };
const none = { products: [], brands: [], categories: [] };
const small = {
  currency: "KRW", now: "2026-11-22T12:00:00Z", rounding_unit: 10, quantity: 1,
  product: { id: "p-1", brand: "b-1", category: "c-1", list_price: 59000, sale_price: 52000 },
  coupons: [{ id: "welcome", kind: "product", discount: { percent: 15, max: 7000 }, min_order: 30000, ...window,
    applies_to: { ...none, brands: ["b-1"] }, excludes: none, stackable: true, owned: false }],
  payment_promotions: [{ id: "card-x", method: "card:x", discount: { percent: 10, max: 5000 }, min_payment: 40000, ...window }],
  mileage: { balance: 3000, max_ratio_percent: 10, min_use: 1000, unit: 10 },
};
const large = {
  ...small,
  product: { id: "p-1", brand: "b-1", category: "c-1", list_price: 990000, sale_price: 890000 },
  coupons: Array.from({ length: 50 }, (_, i) => ({
    id: `c-${String(i).padStart(2, "0")}`, kind: i % 2 ? "cart" : "product",
    discount: i % 3 ? { percent: 5 + (i % 20), max: 10000 + 1000 * i } : { fixed: 5000 + 700 * i },
    min_order: 10000 * (i % 7), ...window, applies_to: none, excludes: none, stackable: i % 4 !== 0, owned: i % 5 === 0,
  })),
  payment_promotions: Array.from({ length: 20 }, (_, i) => ({
    id: `card-${String(i).padStart(2, "0")}`, method: `card:${i}`,
    discount: i % 2 ? { percent: 3 + i, max: 20000 + 1000 * i } : { fixed: 3000 + 500 * i },
    min_payment: 50000 * i, ...window,
  })),
  mileage: { balance: 500000, max_ratio_percent: 30, min_use: 1000, unit: 10 },
};
for (const [name, body] of [["POST /v1/quotes, small (spec example)", small], ["POST /v1/quotes, large (50 coupons, 20 promos)", large]]) {
  const text = JSON.stringify(body);
  const check = await mf.dispatchFetch(`${BASE}/v1/quotes`, { method: "POST", body: text });
  if (check.status !== 200) throw new Error(`${name}: ${check.status} ${await check.text()}`);
  await check.arrayBuffer();
  await measure(name, () => [`${BASE}/v1/quotes`, { method: "POST", body: text }]);
}
await mf.dispose();
issuer.close();
