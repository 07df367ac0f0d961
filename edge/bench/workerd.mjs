// Per-request time of the built worker inside workerd (Miniflare), against GET /healthz of
// the same worker in the same run. Sequential requests, so each number is one request's
// full path through workerd: wasm + (for accepted webhooks) the Durable Object and the
// hand-off fetch to a local issuer stand-in.
// Run: (cd edge && worker-build --release && node bench/workerd.mjs [N])
import { createServer } from "node:http";
import { readFileSync, readdirSync } from "node:fs";
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

async function measure(name, make) {
  for (let i = 0; i < 100; i++) await (await mf.dispatchFetch(...make(-i - 1))).arrayBuffer(); // warm-up
  const pids = workerdPids();
  const cpu0 = workerdCpuMicros(pids);
  const times = [];
  for (let i = 0; i < N; i++) {
    const args = make(i);
    const t0 = process.hrtime.bigint();
    const res = await mf.dispatchFetch(...args);
    await res.arrayBuffer();
    times.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  const cpuPerRequest = (workerdCpuMicros(pids) - cpu0) / N;
  times.sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / N;
  const q = (p) => times[Math.min(N - 1, Math.floor(N * p))];
  console.log(`${name.padEnd(44)} mean ${mean.toFixed(0).padStart(6)} µs  p50 ${q(0.5).toFixed(0).padStart(6)} µs  p99 ${q(0.99).toFixed(0).padStart(6)} µs  workerd CPU ${cpuPerRequest.toFixed(0).padStart(5)} µs/req`);
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
