// The webhook gateway end to end in workerd: Durable Object dedupe and the signed hand-off
// to the issuer (a local HTTP server standing in for the issuer's function URL).
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createHmac, randomUUID } from "node:crypto";
import { BASE, STANDARD_SECRET, assertError, json, standardHeaders, standardSignature, startWorker } from "./helpers.mjs";

const ISSUER_SECRET = "whsec_" + Buffer.from("issuer-handoff-secret-for-tests!").toString("base64");
const PORTONE_SECRET = "whsec_" + Buffer.from("portone-webhook-secret-for-tests").toString("base64");
const PORTONE_API_SECRET = "portone-api-secret";
const STRIPE_SECRET = "whsec_stripe_endpoint_secret_for_tests";

function stripeSignature(secret, timestamp, body) {
  return `t=${timestamp},v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

function paidEvent(paymentId, amount = 52000) {
  return JSON.stringify({
    type: "paid", payment_id: paymentId, order_id: `order-${paymentId}`, user_id: "u-1",
    amount, currency: "KRW", items: [], occurred_at: "2026-11-22T12:00:00Z",
  });
}

describe("webhook gateway in workerd", () => {
  let mf, issuer, issuerUrl;
  /** Requests the issuer received. */
  let received = [];
  /** Status the issuer answers with. */
  let issuerStatus = 200;
  /** PortOne's payments, by id. */
  const portonePayments = new Map();

  before(async () => {
    issuer = createServer((req, res) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        if (req.url.startsWith("/payments/")) {
          // The stand-in PortOne API.
          const p = portonePayments.get(decodeURIComponent(req.url.slice("/payments/".length)));
          const authorized = req.headers.authorization === `PortOne ${PORTONE_API_SECRET}`;
          res.writeHead(!authorized ? 401 : p ? 200 : 404, { "content-type": "application/json" });
          return res.end(JSON.stringify(p ?? { type: "PAYMENT_NOT_FOUND" }));
        }
        received.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
        res.writeHead(issuerStatus, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise((r) => issuer.listen(0, "127.0.0.1", r));
    issuerUrl = `http://127.0.0.1:${issuer.address().port}/issue`;
    mf = await startWorker({
      PROMO_ISSUER_URL: issuerUrl,
      PROMO_ISSUER_SECRET: ISSUER_SECRET,
      PROMO_WEBHOOK_SECRET_PORTONE: PORTONE_SECRET,
      PROMO_WEBHOOK_SECRET_STRIPE: STRIPE_SECRET,
      PROMO_PORTONE_API_BASE: `http://127.0.0.1:${issuer.address().port}`,
      PROMO_PORTONE_API_SECRET: PORTONE_API_SECRET,
    });
  });

  after(async () => {
    await mf?.dispose();
    await new Promise((r) => issuer?.close(r));
  });

  beforeEach(() => {
    received = [];
    issuerStatus = 200;
  });

  const post = (body, headers) =>
    mf.dispatchFetch(`${BASE}/v1/webhooks/standard`, { method: "POST", headers, body });

  it("accepts a verified delivery and hands it off once, signed", async () => {
    const body = paidEvent(`pay_${randomUUID()}`);
    const res = await post(body, standardHeaders(STANDARD_SECRET, body));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("idempotent-replayed"), null);
    const answer = await json(res);
    assert.equal(answer.status, "accepted");
    assert.equal(received.length, 1);
    const h = received[0].headers;
    assert.equal(received[0].body, JSON.stringify(JSON.parse(received[0].body)), "canonical JSON");
    assert.equal(h["webhook-signature"], standardSignature(ISSUER_SECRET, h["webhook-id"], h["webhook-timestamp"], received[0].body));
  });

  it("answers a replay of the same delivery from the Durable Object, without a second hand-off", async () => {
    const body = paidEvent(`pay_${randomUUID()}`);
    const headers = standardHeaders(STANDARD_SECRET, body);
    const first = await json(await post(body, headers));
    const replays = await Promise.all([1, 2, 3].map(() => post(body, headers)));
    for (const r of replays) {
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("idempotent-replayed"), "true");
      assert.deepEqual(await json(r), first, "a replay gets the first answer, exactly");
    }
    assert.equal(received.length, 1);
  });

  it("refuses the same delivery id with another body (409) and stores nothing for it", async () => {
    const id = `msg_${randomUUID()}`;
    const body = paidEvent(`pay_${randomUUID()}`);
    assert.equal((await post(body, standardHeaders(STANDARD_SECRET, body, { id }))).status, 200);
    const other = paidEvent(`pay_${randomUUID()}`, 1000);
    const res = await post(other, standardHeaders(STANDARD_SECRET, other, { id }));
    assert.equal(res.status, 409);
    assertError(await json(res), "conflict");
    assert.equal(received.length, 1);
  });

  it("answers 503 when the hand-off fails, and lets the retry through", async () => {
    const body = paidEvent(`pay_${randomUUID()}`);
    const headers = standardHeaders(STANDARD_SECRET, body);
    issuerStatus = 500;
    const failed = await post(body, headers);
    assert.equal(failed.status, 503);
    assertError(await json(failed), "unavailable");
    issuerStatus = 200;
    const retried = await post(body, headers);
    assert.equal(retried.status, 200);
    assert.equal(retried.headers.get("idempotent-replayed"), null, "the retry ran afresh");
    assert.equal((await json(retried)).status, "accepted");
    assert.equal(received.length, 2, "the failed attempt and the retry both reached the issuer");
  });

  it("acknowledges a verified event of a type it does not handle, without a hand-off", async () => {
    const body = JSON.stringify({ type: "payment.pending", payment_id: "p" });
    const res = await post(body, standardHeaders(STANDARD_SECRET, body));
    assert.equal(res.status, 200);
    assert.equal((await json(res)).status, "ignored");
    assert.equal(received.length, 0);
  });

  it("rejects stale and future timestamps, bad JSON and oversized bodies, storing nothing", async () => {
    const body = paidEvent(`pay_${randomUUID()}`);
    // A minute past the 300 s tolerance either way. The exact boundary (±301 s) is unit-tested
    // in Rust with a fixed clock; here workerd reads its own clock a moment after ours, and a
    // second boundary falling in between once turned "301 s ahead" into an accepted 300 s.
    const now = Math.floor(Date.now() / 1000);
    for (const timestamp of [now - 360, now + 360]) {
      const res = await post(body, standardHeaders(STANDARD_SECRET, body, { timestamp }));
      assert.equal(res.status, 401);
      assertError(await json(res), "invalid_signature");
    }
    const notJson = "{nope";
    const bad = await post(notJson, standardHeaders(STANDARD_SECRET, notJson));
    assert.equal(bad.status, 400);
    assertError(await json(bad), "invalid_body");
    const huge = JSON.stringify({ type: "paid", pad: "x".repeat(70 * 1024) });
    const big = await post(huge, standardHeaders(STANDARD_SECRET, huge));
    assert.equal(big.status, 413);
    assertError(await json(big), "payload_too_large");
    assert.equal(received.length, 0);
  });

  it("a PortOne webhook and the shop's callback for one payment hand it off once, as PortOne reports it", async () => {
    const paymentId = `po_${randomUUID()}`;
    portonePayments.set(paymentId, {
      status: "PAID", id: paymentId, currency: "KRW", amount: { total: 60000, paid: 60000, cancelled: 0 },
      customer: { id: "u-po" }, paidAt: "2026-11-27T10:00:00Z",
    });
    const body = JSON.stringify({ type: "Transaction.Paid", timestamp: "2026-11-27T10:00:01Z",
      data: { storeId: "store-1", paymentId, transactionId: "tx-1" } });
    const headers = standardHeaders(PORTONE_SECRET, body);
    const hook = await mf.dispatchFetch(`${BASE}/v1/webhooks/portone`, { method: "POST", headers, body });
    assert.equal(hook.status, 200);
    assert.equal((await json(hook)).status, "accepted");
    const cb = await mf.dispatchFetch(`${BASE}/v1/payments/${paymentId}/complete`, { method: "POST", body: "{}" });
    assert.equal(cb.status, 200);
    assert.equal((await json(cb)).status, "accepted");
    // Both reached the issuer, which dedupes the payment; both carry PortOne's amount.
    assert.equal(received.length, 2);
    for (const r of received) assert.equal(JSON.parse(r.body).amount, 60000);
    const replay = await mf.dispatchFetch(`${BASE}/v1/payments/${paymentId}/complete`, { method: "POST", body: "{}" });
    assert.equal(replay.headers.get("idempotent-replayed"), "true");
    assert.equal((await json(replay)).status, "accepted");
    assert.equal(received.length, 2);
  });

  it("a callback for a payment PortOne does not know is a 404, and one not fully paid is ignored", async () => {
    const unknown = await mf.dispatchFetch(`${BASE}/v1/payments/po_nope/complete`, { method: "POST", body: "{}" });
    assert.equal(unknown.status, 404);
    assertError(await json(unknown), "not_found");
    portonePayments.set("po_short", { status: "PAID", id: "po_short", currency: "KRW",
      amount: { total: 60000, paid: 10, cancelled: 0 }, customer: { id: "u-po" } });
    const short = await mf.dispatchFetch(`${BASE}/v1/payments/po_short/complete`, { method: "POST", body: "{}" });
    assert.equal(short.status, 200);
    assert.equal((await json(short)).status, "ignored");
    assert.equal(received.length, 0);
  });

  it("verifies Stripe signatures and dedupes by the event id", async () => {
    const body = JSON.stringify({ id: `evt_${randomUUID()}`, object: "event", type: "payment_intent.succeeded",
      created: Math.floor(Date.now() / 1000), data: { object: { id: `pi_${randomUUID()}`, amount_received: 80000,
      currency: "krw", metadata: { user_id: "u-stripe" } } } });
    const sig = stripeSignature(STRIPE_SECRET, Math.floor(Date.now() / 1000), body);
    const send = () => mf.dispatchFetch(`${BASE}/v1/webhooks/stripe`, { method: "POST", headers: { "stripe-signature": sig }, body });
    const first = await send();
    assert.equal(first.headers.get("idempotent-replayed"), null);
    const firstAnswer = await json(first);
    const again = await send();
    assert.equal(again.headers.get("idempotent-replayed"), "true");
    assert.deepEqual(await json(again), firstAnswer);
    assert.equal(received.length, 1);
    const bad = await mf.dispatchFetch(`${BASE}/v1/webhooks/stripe`, { method: "POST",
      headers: { "stripe-signature": stripeSignature("whsec_wrong", Math.floor(Date.now() / 1000), body) }, body });
    assert.equal(bad.status, 401);
    assertError(await json(bad), "invalid_signature");
  });
});
