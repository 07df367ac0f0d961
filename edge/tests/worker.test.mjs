// Miniflare tests against the built worker (run `worker-build --release` in edge/ first;
// infra/test.sh does). Run: (cd edge && node --test tests/)
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { BASE, STANDARD_SECRET, assertError, json, standardHeaders, startWorker } from "./helpers.mjs";

const paymentBody = JSON.stringify({
  type: "payment.paid",
  timestamp: "2026-11-22T12:00:00Z",
  data: { payment_id: "pay_test_1", amount: 52000, currency: "KRW" },
});

describe("edge worker (Miniflare)", () => {
  /** @type {Miniflare} */
  let mf;

  before(async () => {
    mf = await startWorker();
  });

  after(async () => {
    await mf?.dispose();
  });

  it("GET /healthz answers 200 with status ok", async () => {
    const res = await mf.dispatchFetch(`${BASE}/healthz`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    const body = await json(res);
    assert.equal(body.status, "ok");
  });

  it("an unknown path is a 404 not_found JSON error", async () => {
    const res = await mf.dispatchFetch(`${BASE}/nope`);
    assert.equal(res.status, 404);
    assertError(await json(res), "not_found");
  });

  it("a Standard Webhooks delivery with a wrong signature is a 401 invalid_signature", async () => {
    const headers = standardHeaders("whsec_" + Buffer.from("not-the-secret-at-all-32-bytes!!").toString("base64"), paymentBody);
    const res = await mf.dispatchFetch(`${BASE}/v1/webhooks/standard`, { method: "POST", headers, body: paymentBody });
    assert.equal(res.status, 401);
    assertError(await json(res), "invalid_signature");
  });

  it("a correct signature over a different body is a 401 invalid_signature", async () => {
    const headers = standardHeaders(STANDARD_SECRET, paymentBody);
    const tampered = paymentBody.replace("52000", "1");
    const res = await mf.dispatchFetch(`${BASE}/v1/webhooks/standard`, { method: "POST", headers, body: tampered });
    assert.equal(res.status, 401);
    assertError(await json(res), "invalid_signature");
  });

  it("an unknown provider is a 404 unknown_provider", async () => {
    const headers = standardHeaders(STANDARD_SECRET, paymentBody);
    const res = await mf.dispatchFetch(`${BASE}/v1/webhooks/acme`, { method: "POST", headers, body: paymentBody });
    assert.equal(res.status, 404);
    assertError(await json(res), "unknown_provider");
  });

  it("GET on a webhook endpoint is a 405", async () => {
    const res = await mf.dispatchFetch(`${BASE}/v1/webhooks/standard`);
    assert.equal(res.status, 405);
    await res.arrayBuffer();
  });
});
