// One origin for the shop: the Worker passes the shoppers' routes (claims, wallets, personal
// price reads) to the API Lambda (here a local stand-in recording what it gets) and answers
// CORS for the shop's pages, from the one PROMO_CORS_ORIGINS setting.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, it } from "node:test";

import { BASE, assertError, json, startWorker } from "./helpers.mjs";

const SHOP = "https://shop.example";

/**
 * A body of `bytes` spaces sent as a stream: chunked, with no content-length. With `hold`, the
 * stream stays open after its bytes until `release()` (or `hold` ms): a server that answers
 * once past its limit answers while the upload is still open, and the client reads that
 * answer instead of racing the server's close with its last chunks.
 */
function streamed(bytes, { chunk = 16 * 1024, hold = 0 } = {}) {
  let sent = 0;
  let release;
  const held = new Promise((r) => {
    release = r;
    if (hold) setTimeout(r, hold).unref?.();
  });
  const stream = new ReadableStream({
    async pull(controller) {
      if (sent >= bytes) {
        if (hold) await held;
        return controller.close();
      }
      const n = Math.min(chunk, bytes - sent);
      controller.enqueue(new Uint8Array(n).fill(0x20));
      sent += n;
    },
  });
  return { stream, release: () => release() };
}

/** Waits until just past a second boundary: a burst of requests then falls in one second. */
async function startOfSecond() {
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20));
}

describe("one origin: the shoppers' routes through the Worker, with CORS", () => {
  let mf, api;
  const received = [];

  before(async () => {
    api = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        received.push({ method: req.method, url: req.url, headers: req.headers, body });
        const status = req.method === "POST" ? 201 : 200;
        res.writeHead(status, { "content-type": "application/json", "idempotent-replayed": "true",
          "set-cookie": "never=forwarded", "cache-control": "public, max-age=600" });
        res.end(JSON.stringify({ from: "api", path: req.url }));
      });
    });
    await new Promise((r) => api.listen(0, "127.0.0.1", r));
    mf = await startWorker({
      PROMO_API_URL: `http://127.0.0.1:${api.address().port}`,
      PROMO_CORS_ORIGINS: `${SHOP} https://m.shop.example`,
    });
  });

  after(async () => {
    await mf?.dispose();
    await new Promise((r) => api?.close(r));
  });

  it("passes a claim to the API with its method, token, key and body, and its answer back", async () => {
    received.length = 0;
    const res = await mf.dispatchFetch(`${BASE}/v1/campaigns/bf/claims`, {
      method: "POST",
      headers: { authorization: "Bearer t0ken", "idempotency-key": "k-1", origin: SHOP, cookie: "session=secret" },
    });
    assert.equal(res.status, 201);
    assert.deepEqual(await json(res), { from: "api", path: "/v1/campaigns/bf/claims" });
    assert.equal(res.headers.get("idempotent-replayed"), "true");
    assert.equal(res.headers.get("set-cookie"), null, "only the headers a client needs come back");
    assert.equal(res.headers.get("access-control-allow-origin"), SHOP);
    assert.equal(received.length, 1);
    assert.equal(received[0].method, "POST");
    assert.equal(received[0].headers.authorization, "Bearer t0ken");
    assert.equal(received[0].headers["idempotency-key"], "k-1");
    assert.equal(received[0].headers.cookie, undefined, "the shop's cookies never reach the API");
  });

  it("passes reservations (POST, DELETE, a shopper's list) and keeps an event's view for a second", async () => {
    received.length = 0;
    const reserve = await mf.dispatchFetch(`${BASE}/v1/events/drop-1/reservations`, {
      method: "POST", headers: { authorization: "Bearer t", "idempotency-key": "k-2" },
    });
    assert.equal(reserve.status, 201);
    const cancel = await mf.dispatchFetch(`${BASE}/v1/events/drop-1/reservations/r-1`, {
      method: "DELETE", headers: { authorization: "Bearer t" },
    });
    assert.equal(cancel.status, 200);
    const mine = await mf.dispatchFetch(`${BASE}/v1/users/u-1/reservations`, { headers: { authorization: "Bearer t" } });
    assert.equal(mine.status, 200);
    assert.deepEqual(received.map((r) => `${r.method} ${r.url}`), [
      "POST /v1/events/drop-1/reservations", "DELETE /v1/events/drop-1/reservations/r-1", "GET /v1/users/u-1/reservations",
    ]);
    assert.equal(received[0].headers["idempotency-key"], "k-2");
    // A crowd refreshing the event page: the API is asked once a second, not per request.
    received.length = 0;
    await startOfSecond();
    const first = await mf.dispatchFetch(`${BASE}/v1/events/drop-1`);
    assert.equal(first.status, 200);
    assert.deepEqual(await json(first), { from: "api", path: "/v1/events/drop-1" });
    for (let i = 0; i < 5; i++) {
      const again = await mf.dispatchFetch(`${BASE}/v1/events/drop-1`);
      assert.equal(again.status, 200);
      assert.equal(again.headers.get("cache-control"), "public, max-age=1");
      assert.deepEqual(await json(again), { from: "api", path: "/v1/events/drop-1" });
    }
    assert.equal(received.length, 1, "one read of the API for six views within the second");
    await new Promise((r) => setTimeout(r, 2100));
    await (await mf.dispatchFetch(`${BASE}/v1/events/drop-1`)).arrayBuffer();
    assert.equal(received.length, 2, "read again once the second has passed");
  });

  it("never keeps a HEAD's empty answer as an event's view", async () => {
    // `curl -I` once a second must not blank the event page for everyone.
    received.length = 0;
    await startOfSecond();
    const head = await mf.dispatchFetch(`${BASE}/v1/events/drop-2`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
    const get = await mf.dispatchFetch(`${BASE}/v1/events/drop-2`);
    assert.equal(get.status, 200);
    assert.deepEqual(await json(get), { from: "api", path: "/v1/events/drop-2" });
    const again = await mf.dispatchFetch(`${BASE}/v1/events/drop-2`);
    assert.deepEqual(await json(again), { from: "api", path: "/v1/events/drop-2" });
    assert.deepEqual(received.map((r) => `${r.method} ${r.url}`), ["HEAD /v1/events/drop-2", "GET /v1/events/drop-2"],
      "the GET after the HEAD reads the API; the next GET is the stored view");
  });

  it("bounds a streamed body without content-length on every route (413), passing nothing on", async () => {
    received.length = 0;
    const small = await mf.dispatchFetch(`${BASE}/v1/campaigns/bf/claims`, {
      method: "POST", headers: { authorization: "Bearer t" }, body: streamed(100).stream, duplex: "half",
    });
    assert.equal(small.status, 201, "a streamed body under the limit goes through");
    assert.equal(received[0].body, " ".repeat(100));
    received.length = 0;
    for (const path of ["/v1/quotes", "/v1/campaigns/bf/claims", "/v1/payments/po_1/complete", "/v1/webhooks/standard"]) {
      // Past the 64 KiB limit, then held open (2 s at most: a worker that reads on answers then).
      const body = streamed(80 * 1024, { hold: 2000 });
      const res = await mf.dispatchFetch(`${BASE}${path}`, {
        method: "POST", headers: { authorization: "Bearer t" }, body: body.stream, duplex: "half",
      });
      body.release();
      assert.equal(res.status, 413, path);
      assertError(await json(res), "payload_too_large");
    }
    assert.equal(received.length, 0, "nothing reached the API");
  });

  it("passes wallets and tokened price reads; a personal answer is never cacheable", async () => {
    received.length = 0;
    const wallet = await mf.dispatchFetch(`${BASE}/v1/users/u-1/coupons`, { headers: { authorization: "Bearer t" } });
    assert.equal(wallet.status, 200);
    const price = await mf.dispatchFetch(`${BASE}/v1/products/p-1/max-benefit-price`, {
      headers: { authorization: "Bearer t" },
    });
    assert.equal(price.status, 200);
    assert.equal(price.headers.get("cache-control"), "private, no-store");
    assert.deepEqual(received.map((r) => `${r.method} ${r.url}`), [
      "GET /v1/users/u-1/coupons",
      "GET /v1/products/p-1/max-benefit-price",
    ]);
  });

  it("answers the preflight of an allowed origin and refuses others and webhooks", async () => {
    const preflight = (path, origin, method = "POST") =>
      mf.dispatchFetch(`${BASE}${path}`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": method, "access-control-request-headers": "authorization" },
      });
    const ok = await preflight("/v1/campaigns/bf/claims", "https://m.shop.example");
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get("access-control-allow-origin"), "https://m.shop.example");
    assert.match(ok.headers.get("access-control-allow-headers"), /authorization/);
    assert.equal((await preflight("/v1/campaigns/bf/claims", "https://evil.example")).status, 403);
    assert.equal((await preflight("/v1/webhooks/stripe", SHOP)).status, 403);
    const quote = await mf.dispatchFetch(`${BASE}/v1/quotes`, { method: "POST", headers: { origin: "https://evil.example" }, body: "{}" });
    assert.equal(quote.headers.get("access-control-allow-origin"), null);
    assert.match(quote.headers.get("vary") ?? "", /Origin/);
  });
});

describe("a shoppers' API that cannot be reached, in workerd", () => {
  let mf, port;
  const logs = [];

  before(async () => {
    // A loopback port nothing listens on.
    const probe = createServer();
    await new Promise((r) => probe.listen(0, "127.0.0.1", r));
    port = probe.address().port;
    await new Promise((r) => probe.close(r));
    mf = await startWorker({ PROMO_API_URL: `http://127.0.0.1:${port}` }, {}, {}, { logs });
  });

  after(async () => {
    await mf?.dispose();
  });

  it("answers 503 in words for the shop with the request id; the fetch error goes to the log only", async () => {
    const res = await mf.dispatchFetch(`${BASE}/v1/campaigns/bf/claims`, {
      method: "POST", headers: { authorization: "Bearer t", "x-request-id": "mf-req-12" }, body: "{}",
    });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("x-request-id"), "mf-req-12");
    const text = await res.text();
    const body = JSON.parse(text);
    assertError(body, "unavailable");
    assert.equal(body.error.message, "a service this request needs is unavailable right now; retry shortly");
    assert.equal(body.error.request_id, "mf-req-12");
    for (const detail of ["127.0.0.1", String(port), "API:", "TypeError", "fetch", "Error"]) {
      assert.ok(!text.includes(detail), `the answer shows "${detail}": ${text}`);
    }
    await new Promise((r) => setTimeout(r, 200));
    const line = logs.find((l) => l.message.includes("mf-req-12"));
    assert.ok(line, `no log line names the request: ${JSON.stringify(logs)}`);
    assert.match(line.message, /unavailable/);
    assert.match(line.message, /API/, "the detail is in the log");
  });
});
