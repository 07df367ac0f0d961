// Miniflare tests against the built worker (run `worker-build --release` in edge/ first;
// infra/test.sh does). Run: (cd edge && node --test tests/)
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

const SHIM = fileURLToPath(new URL("../build/worker/shim.mjs", import.meta.url));
const STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BASE = "http://promo.test";

/** Standard Webhooks signature header value: `v1,<base64 HMAC-SHA256(id.ts.body)>`. */
export function standardSignature(secret, id, timestamp, body) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const mac = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64");
  return `v1,${mac}`;
}

function standardHeaders(secret, body, { id = `msg_${randomUUID()}`, timestamp } = {}) {
  const ts = String(timestamp ?? Math.floor(Date.now() / 1000));
  return {
    "content-type": "application/json",
    "webhook-id": id,
    "webhook-timestamp": ts,
    "webhook-signature": standardSignature(secret, id, ts, body),
  };
}

async function json(res) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    assert.fail(`expected a JSON body, got ${res.status}: ${text.slice(0, 200)}`);
  }
}

function assertError(body, code) {
  assert.equal(typeof body?.error, "object", `no "error" object in ${JSON.stringify(body)}`);
  assert.equal(body.error.code, code, `error.code in ${JSON.stringify(body)}`);
  assert.equal(typeof body.error.message, "string", `error.message in ${JSON.stringify(body)}`);
  assert.ok(body.error.message.length > 0, "error.message is empty");
}

const paymentBody = JSON.stringify({
  type: "payment.paid",
  timestamp: "2026-11-22T12:00:00Z",
  data: { payment_id: "pay_test_1", amount: 52000, currency: "KRW" },
});

describe("edge worker (Miniflare)", () => {
  /** @type {Miniflare} */
  let mf;

  before(async () => {
    if (!existsSync(SHIM)) {
      throw new Error(`${SHIM} is missing: build the worker first with (cd edge && worker-build --release)`);
    }
    mf = new Miniflare({
      modules: true,
      scriptPath: SHIM,
      modulesRules: [
        { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
        { type: "CompiledWasm", include: ["**/*.wasm"] },
      ],
      compatibilityDate: "2026-04-01",
      cf: false,
      kvNamespaces: ["PROMO_KV"],
      durableObjects: { WEBHOOK_DEDUPE: { className: "WebhookDedupe", useSQLite: true } },
      bindings: {
        PROMO_WEBHOOK_SECRET_STANDARD: STANDARD_SECRET,
        PROMO_WEBHOOK_TOLERANCE_SECONDS: "300",
      },
    });
    await mf.ready;
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
