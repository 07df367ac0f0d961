// Shared by the Miniflare test files.
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer as createNetServer } from "node:net";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

export const SHIM = fileURLToPath(new URL("../build/worker/shim.mjs", import.meta.url));
export const STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
export const BASE = "http://promo.test";

/** Standard Webhooks signature header value: `v1,<base64 HMAC-SHA256(id.ts.body)>`. */
export function standardSignature(secret, id, timestamp, body) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const mac = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64");
  return `v1,${mac}`;
}

export function standardHeaders(secret, body, { id = `msg_${randomUUID()}`, timestamp } = {}) {
  const ts = String(timestamp ?? Math.floor(Date.now() / 1000));
  return {
    "content-type": "application/json",
    "webhook-id": id,
    "webhook-timestamp": ts,
    "webhook-signature": standardSignature(secret, id, ts, body),
  };
}

export async function json(res) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    assert.fail(`expected a JSON body, got ${res.status}: ${text.slice(0, 200)}`);
  }
}

export function assertError(body, code) {
  assert.equal(typeof body?.error, "object", `no "error" object in ${JSON.stringify(body)}`);
  assert.equal(body.error.code, code, `error.code in ${JSON.stringify(body)}`);
  assert.equal(typeof body.error.message, "string", `error.message in ${JSON.stringify(body)}`);
  assert.ok(body.error.message.length > 0, "error.message is empty");
}

/**
 * A Miniflare instance running the built worker with the production bindings; `listen`
 * (`{host, port}`) also serves it over HTTP there, for a browser. `opts.rateLimits: false`
 * leaves the rate limiting bindings out (a misconfigured deployment); `opts.logs`, an array,
 * collects what the worker logs (`{level, message}`).
 */
export async function startWorker(extraBindings = {}, limits = {}, listen = {}, opts = {}) {
  if (!existsSync(SHIM)) {
    throw new Error(`${SHIM} is missing: build the worker first with (cd edge && worker-build --release)`);
  }
  const mf = new Miniflare({
    modules: true,
    scriptPath: SHIM,
    modulesRules: [
      { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: "2026-04-01",
    cf: false,
    ...listen,
    kvNamespaces: ["PROMO_KV"],
    durableObjects: { WEBHOOK_DEDUPE: { className: "WebhookDedupe", useSQLite: true } },
    // As wrangler.toml binds them, with the limits a test asks for.
    ...(opts.rateLimits === false ? {} : {
      ratelimits: {
        CALLBACK_CLIENT_LIMITER: { simple: { limit: limits.client ?? 60, period: 60 } },
        CALLBACK_PAYMENT_LIMITER: { simple: { limit: limits.payment ?? 10, period: 60 } },
      },
    }),
    ...(opts.logs ? { handleStructuredLogs: ({ level, message }) => { opts.logs.push({ level, message }); } } : {}),
    bindings: {
      PROMO_WEBHOOK_SECRET_STANDARD: STANDARD_SECRET,
      PROMO_WEBHOOK_TOLERANCE_SECONDS: "300",
      ...extraBindings,
    },
  });
  await mf.ready;
  return mf;
}

/** A free loopback port (for a server a test starts). */
export async function freePort() {
  const srv = createNetServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/** Polls `check` every 100 ms until it answers something truthy (returned), or fails naming `what`. */
export async function waitFor(what, check, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
