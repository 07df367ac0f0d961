// Per-request time of the built worker inside workerd (Miniflare), against GET /healthz of
// the same worker in the same run. Sequential requests, so each number is one request's
// full path through workerd: wasm + (for accepted webhooks) the Durable Object and the
// hand-off fetch to a local issuer stand-in.
// Run: (cd edge && worker-build --release && node bench/workerd.mjs [N])
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { BASE, STANDARD_SECRET, standardHeaders, startWorker } from "../tests/helpers.mjs";

const N = Number(process.argv[2] ?? 2000);
const ISSUER_SECRET = "whsec_" + Buffer.from("issuer-handoff-secret-for-bench!").toString("base64");
const issuer = createServer((req, res) => { req.resume(); req.on("end", () => res.end("{}")); });
await new Promise((r) => issuer.listen(0, "127.0.0.1", r));
const mf = await startWorker({
  PROMO_ISSUER_URL: `http://127.0.0.1:${issuer.address().port}/issue`,
  PROMO_ISSUER_SECRET: ISSUER_SECRET,
});

function paid(i) {
  return JSON.stringify({ type: "paid", payment_id: `bench-${i}`, order_id: `o-${i}`, user_id: "u-1",
    amount: 60000, currency: "KRW", items: [], occurred_at: "2026-11-27T10:00:00Z" });
}

async function measure(name, make) {
  for (let i = 0; i < 100; i++) await (await mf.dispatchFetch(...make(-i - 1))).arrayBuffer(); // warm-up
  const times = [];
  for (let i = 0; i < N; i++) {
    const args = make(i);
    const t0 = process.hrtime.bigint();
    const res = await mf.dispatchFetch(...args);
    await res.arrayBuffer();
    times.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  times.sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / N;
  const q = (p) => times[Math.min(N - 1, Math.floor(N * p))];
  console.log(`${name.padEnd(44)} mean ${mean.toFixed(0).padStart(6)} µs  p50 ${q(0.5).toFixed(0).padStart(6)} µs  p99 ${q(0.99).toFixed(0).padStart(6)} µs`);
}

console.log(`workerd via Miniflare, ${N} sequential requests each`);
await measure("GET /healthz (baseline)", () => [`${BASE}/healthz`]);
await measure("POST webhook, bad signature (verify only)", (i) => {
  const body = paid(`bad-${i}`);
  const headers = standardHeaders("whsec_" + Buffer.from("wrong-secret-wrong-secret-wrong!").toString("base64"), body);
  return [`${BASE}/v1/webhooks/standard`, { method: "POST", headers, body }];
});
await measure("POST webhook, accepted (verify+DO+hand-off)", (i) => {
  const body = paid(`${randomUUID()}-${i}`);
  return [`${BASE}/v1/webhooks/standard`, { method: "POST", headers: standardHeaders(STANDARD_SECRET, body), body }];
});
await measure("POST webhook, replay (verify+DO)", () => {
  const body = paid("replayed");
  return [`${BASE}/v1/webhooks/standard`, { method: "POST", headers: standardHeaders(STANDARD_SECRET, body, { id: "msg_replayed" }), body }];
});
await mf.dispose();
issuer.close();
