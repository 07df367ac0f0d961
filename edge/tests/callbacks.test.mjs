// The shop's client callback (POST /v1/payments/{id}/complete) in workerd, and the request
// checks every route shares: ids outside the id alphabet never reach PortOne, "unknown" and
// "not final yet" answers are remembered for a while, each payment and each client has a
// limit (the Workers Rate Limiting bindings), the shop's token is required when configured,
// and header bytes outside visible ASCII are a 400.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { BASE, STANDARD_SECRET, assertError, json, standardHeaders, startWorker } from "./helpers.mjs";

const PORTONE_SECRET = "whsec_" + Buffer.from("portone-webhook-secret-for-tests").toString("base64");
const PORTONE_API_SECRET = "portone-api-secret";
const ISSUER_SECRET = "whsec_" + Buffer.from("issuer-handoff-secret-for-tests!").toString("base64");

/** A stand-in PortOne API and issuer on one port; `asked` lists every PortOne path. */
async function standIns() {
  const payments = new Map();
  const asked = [];
  const handedOff = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      if (req.url.startsWith("/payments")) {
        asked.push(req.url);
        const p = payments.get(decodeURIComponent(req.url.slice("/payments/".length)));
        res.writeHead(p ? 200 : 404, { "content-type": "application/json" });
        return res.end(JSON.stringify(p ?? { type: "PAYMENT_NOT_FOUND" }));
      }
      handedOff.push(Buffer.concat(chunks).toString());
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${server.address().port}`;
  return { server, base, payments, asked, handedOff };
}

function paid(id, user = "u-cb") {
  return { status: "PAID", id, currency: "KRW", amount: { total: 60000, paid: 60000, cancelled: 0 },
    customer: { id: user }, paidAt: "2026-11-27T10:00:00Z" };
}

describe("client callbacks in workerd", () => {
  let mf, s;
  const complete = (id, headers = {}) =>
    mf.dispatchFetch(`${BASE}/v1/payments/${id}/complete`, { method: "POST", headers, body: "{}" });

  before(async () => {
    s = await standIns();
    mf = await startWorker({
      PROMO_ISSUER_URL: `${s.base}/issue`,
      PROMO_ISSUER_SECRET: ISSUER_SECRET,
      PROMO_WEBHOOK_SECRET_PORTONE: PORTONE_SECRET,
      PROMO_PORTONE_API_BASE: s.base,
      PROMO_PORTONE_API_SECRET: PORTONE_API_SECRET,
      PROMO_CALLBACK_RECHECK_SECONDS: "30",
    }, { client: 8, payment: 3 });
  });

  after(async () => {
    await mf?.dispose();
    await new Promise((r) => s?.server.close(r));
  });

  it("remembers that a payment is unknown, and answers the same without asking PortOne again", async () => {
    const id = `po_unknown_${randomUUID()}`;
    const first = await complete(id);
    assert.equal(first.status, 404);
    const body = await json(first);
    assertError(body, "not_found");
    const again = await complete(id);
    assert.equal(again.status, 404);
    assert.equal(again.headers.get("idempotent-replayed"), "true");
    assert.deepEqual(await json(again), body);
    assert.equal(s.asked.filter((p) => p.endsWith(id)).length, 1, "one look-up");
  });

  it("limits callbacks for one payment, whatever they answer", async () => {
    const id = `po_busy_${randomUUID()}`;
    s.payments.set(id, paid(id));
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await complete(id)).status);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    const refused = await complete(id);
    assertError(await json(refused), "rate_limited");
    assert.equal(refused.headers.get("retry-after"), "60");
  });

  it("limits callbacks from one client across payments", async () => {
    const client = { "cf-connecting-ip": "203.0.113.9" };
    const statuses = [];
    for (let i = 0; i < 9; i++) statuses.push((await complete(`po_client_${i}_${randomUUID()}`, client)).status);
    assert.deepEqual(statuses, [404, 404, 404, 404, 404, 404, 404, 404, 429]);
    assert.equal((await complete(`po_other_${randomUUID()}`, { "cf-connecting-ip": "203.0.113.10" })).status, 404);
  });

  it("refuses ids outside the id alphabet before any look-up", async () => {
    const before = s.asked.length;
    for (const id of ["a%2Fb", "a%20b", "%C3%A9", "a%23b", "x".repeat(129)]) {
      const res = await complete(id);
      assert.equal(res.status, 400, id);
      assertError(await json(res), "invalid_id");
    }
    const body = JSON.stringify({ type: "Transaction.Paid", data: { paymentId: ".." } });
    const hook = await mf.dispatchFetch(`${BASE}/v1/webhooks/portone`,
      { method: "POST", headers: standardHeaders(PORTONE_SECRET, body), body });
    assert.equal(hook.status, 400);
    assertError(await json(hook), "invalid_body");
    assert.equal(s.asked.length, before, `no look-up: ${s.asked.slice(before)}`);
  });

  it("refuses header bytes outside visible ASCII with 400 invalid_header, on every route", async () => {
    const latin1 = { "idempotency-key": "key-\u00e9" };
    for (const [method, path] of [["GET", "/healthz"], ["POST", "/v1/payments/po_x/complete"],
      ["GET", "/v1/products/p-1/max-benefit-price"], ["POST", "/v1/quotes"]]) {
      const res = await mf.dispatchFetch(`${BASE}${path}`, { method, headers: latin1, body: method === "POST" ? "{}" : undefined });
      assert.equal(res.status, 400, `${method} ${path}`);
      assertError(await json(res), "invalid_header");
    }
    // A correctly signed webhook with a second, Latin-1 signature header is refused too.
    const body = JSON.stringify({ type: "payment.pending" });
    const headers = new Headers(standardHeaders(STANDARD_SECRET, body));
    headers.append("webhook-signature", "v1,\u00e9");
    const res = await mf.dispatchFetch(`${BASE}/v1/webhooks/standard`, { method: "POST", headers, body });
    assert.equal(res.status, 400);
    assertError(await json(res), "invalid_header");
  });
});

describe("client callbacks with the shop's tokens in workerd", () => {
  let mf, s;
  before(async () => {
    s = await standIns();
    mf = await startWorker({
      PROMO_ISSUER_URL: `${s.base}/issue`,
      PROMO_ISSUER_SECRET: ISSUER_SECRET,
      PROMO_PORTONE_API_BASE: s.base,
      PROMO_PORTONE_API_SECRET: PORTONE_API_SECRET,
      PROMO_CALLBACK_TOKENS: "shop-token-old shop-token-new",
    });
  });

  after(async () => {
    await mf?.dispose();
    await new Promise((r) => s?.server.close(r));
  });

  it("needs one of the tokens, and looks nothing up without one", async () => {
    const id = `po_tok_${randomUUID()}`;
    s.payments.set(id, paid(id, "u-tok"));
    for (const authorization of [undefined, "Bearer shop-token-wrong", "Basic shop-token-new"]) {
      const headers = authorization ? { authorization } : {};
      const res = await mf.dispatchFetch(`${BASE}/v1/payments/${id}/complete`, { method: "POST", headers, body: "{}" });
      assert.equal(res.status, 401, String(authorization));
      assertError(await json(res), "unauthorized");
    }
    assert.equal(s.asked.length, 0);
    const ok = await mf.dispatchFetch(`${BASE}/v1/payments/${id}/complete`,
      { method: "POST", headers: { authorization: "Bearer shop-token-old" }, body: "{}" });
    assert.equal(ok.status, 200);
    assert.equal((await json(ok)).status, "accepted");
    assert.equal(s.handedOff.length, 1);
  });
});

describe("client callbacks without the rate limiting bindings in workerd", () => {
  let mf, s;
  const logs = [];
  before(async () => {
    s = await standIns();
    mf = await startWorker({
      PROMO_ISSUER_URL: `${s.base}/issue`,
      PROMO_ISSUER_SECRET: ISSUER_SECRET,
      PROMO_PORTONE_API_BASE: s.base,
      PROMO_PORTONE_API_SECRET: PORTONE_API_SECRET,
    }, {}, {}, { rateLimits: false, logs });
  });

  after(async () => {
    await mf?.dispose();
    await new Promise((r) => s?.server.close(r));
  });

  it("answers 503, never lets callbacks through unlimited, and says why in the log once", async () => {
    const id = `po_nolimit_${randomUUID()}`;
    s.payments.set(id, paid(id, "u-nolimit"));
    for (const headers of [{}, { "cf-connecting-ip": "203.0.113.20" }, {}]) {
      const res = await mf.dispatchFetch(`${BASE}/v1/payments/${id}/complete`, { method: "POST", headers, body: "{}" });
      assert.equal(res.status, 503);
      assertError(await json(res), "unavailable");
      assert.equal(res.headers.get("retry-after"), "5");
    }
    assert.equal(s.asked.length, 0, "no look-up at PortOne");
    assert.equal(s.handedOff.length, 0, "nothing handed off");
    // Structured logs may arrive just after the answer.
    await new Promise((r) => setTimeout(r, 200));
    const missing = logs.filter((l) => /rate limiting binding .* is missing/.test(l.message));
    assert.equal(missing.length, 1, `one loud line per isolate: ${JSON.stringify(logs)}`);
    assert.equal(missing[0].level, "error");
  });
});
