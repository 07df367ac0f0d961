// Product-page prices in the built worker (Miniflare): products and the price book in KV,
// public answers in the Cache API (MISS then HIT, 304, expiry with stale-while-revalidate,
// a deploy's new price book purging exactly the products it changed), personal answers
// passed to the API Lambda and never cached. Run: (cd edge && node --test tests/)
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { BASE, assertError, json, startWorker } from "./helpers.mjs";

const day = 86_400_000;
const startsAt = new Date(Date.now() - day).toISOString();
const endsAt = new Date(Date.now() + 30 * day).toISOString();
const none = { products: [], brands: [], categories: [] };

function product(id, brand) {
  return { id, brand, category: "c-1", currency: "KRW", list_price: 59000, sale_price: 52000 };
}

/** The price book a deploy publishes: one public coupon for brand b-1, one card promotion. */
function priceBook(percent) {
  return {
    rounding_unit: 10,
    coupons: [{
      currency: "KRW", campaign_id: "nov", template_id: "welcome",
      coupon: { id: "nov:welcome", kind: "product", discount: { percent, max: 7000 }, min_order: 30000,
        starts_at: startsAt, ends_at: endsAt, applies_to: { ...none, brands: ["b-1"] }, excludes: none,
        stackable: true, owned: false },
    }],
    payment_promotions: [{
      currency: "KRW",
      promotion: { id: "nov:card-x", method: "card:x", discount: { percent: 10, max: 5000 }, min_payment: 40000,
        starts_at: startsAt, ends_at: endsAt },
    }],
  };
}

const url = (id) => `${BASE}/v1/products/${id}/max-benefit-price`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe("max-benefit price reads (Miniflare, KV + Cache API)", () => {
  let mf, kv, api, apiCalls = [];

  before(async () => {
    // The API Lambda's stand-in: answers personal reads (and says "public", which the
    // worker must not believe).
    api = createServer((req, res) => {
      apiCalls.push({ path: req.url, auth: req.headers.authorization });
      res.setHeader("content-type", "application/json");
      res.setHeader("cache-control", "public, max-age=600");
      res.end(JSON.stringify({ final_price: 37800, mileage_used: 3000 }));
    });
    await new Promise((r) => api.listen(0, "127.0.0.1", r));
    mf = await startWorker({
      PROMO_API_URL: `http://127.0.0.1:${api.address().port}`,
      PROMO_PRICE_CACHE_TTL_SECONDS: "2",
      PROMO_PRICE_CACHE_STALE_SECONDS: "30",
    });
    kv = await mf.getKVNamespace("PROMO_KV");
    await kv.put("product:p-1", JSON.stringify(product("p-1", "b-1")));
    await kv.put("product:p-2", JSON.stringify(product("p-2", "b-2")));
    await kv.put("product:p-4", JSON.stringify(product("p-4", "b-2")));
    await kv.put("price-book", JSON.stringify(priceBook(15)));
  });

  after(async () => {
    await mf?.dispose();
    api?.close();
  });

  it("answers a MISS, then a HIT with Age, then 304 for a matching ETag", async () => {
    const first = await mf.dispatchFetch(url("p-1"));
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("x-cache"), "MISS");
    const answer = await json(first);
    assert.equal(answer.final_price, 40500, JSON.stringify(answer)); // 52000 − 7000 − 4500
    assert.deepEqual(answer.to_download, ["nov:welcome"]);
    assert.match(first.headers.get("cache-control"), /^public, max-age=2, stale-while-revalidate=30$/);
    const etag = first.headers.get("etag");
    assert.ok(etag?.startsWith('"'), `strong ETag: ${etag}`);

    const second = await mf.dispatchFetch(url("p-1"));
    assert.equal(second.headers.get("x-cache"), "HIT");
    assert.ok(Number(second.headers.get("age")) >= 0);
    assert.deepEqual(await json(second), answer);

    const conditional = await mf.dispatchFetch(url("p-1"), { headers: { "if-none-match": etag } });
    assert.equal(conditional.status, 304);
    assert.equal(conditional.headers.get("etag"), etag);
    assert.equal((await conditional.text()).length, 0);
  });

  it("serves a stale answer while revalidating, then a fresh one", async () => {
    await mf.dispatchFetch(url("p-2")).then((r) => r.arrayBuffer());
    await sleep(2_200); // past the 2 s TTL, inside the 30 s stale window
    const stale = await mf.dispatchFetch(url("p-2"));
    assert.equal(stale.headers.get("x-cache"), "STALE");
    assert.equal((await json(stale)).final_price, 52000 - 5000);
    // The revalidation runs after the response (waitUntil): wait for its fresh entry, with a
    // deadline rather than a fixed pause, so a slow machine is not a failure. If it never
    // lands, every read stays STALE (the window is 30 s) and this fails at the deadline.
    let fresh;
    for (const deadline = Date.now() + 10_000; ; await sleep(50)) {
      fresh = await mf.dispatchFetch(url("p-2"));
      await fresh.arrayBuffer();
      if (fresh.headers.get("x-cache") === "HIT" || Date.now() > deadline) break;
    }
    assert.equal(fresh.headers.get("x-cache"), "HIT");
    assert.ok(Number(fresh.headers.get("age")) <= 1, `age ${fresh.headers.get("age")}`);
  });

  it("a deploy's new price book purges exactly the products whose offers changed", async () => {
    await mf.dispatchFetch(url("p-1")).then((r) => r.arrayBuffer());
    await mf.dispatchFetch(url("p-2")).then((r) => r.arrayBuffer());
    await kv.put("price-book", JSON.stringify(priceBook(10))); // b-1's coupon changed
    const changed = await mf.dispatchFetch(url("p-1"));
    assert.equal(changed.headers.get("x-cache"), "MISS");
    assert.equal((await json(changed)).final_price, 52000 - 5200 - 4680);
    const untouched = await mf.dispatchFetch(url("p-2"));
    assert.notEqual(untouched.headers.get("x-cache"), "MISS", "p-2's offers did not change");
  });

  it("passes a shopper's read to the API and never lets it be cached", async () => {
    // p-4 is read by nobody else: its first public read after the personal one must miss
    // and be the public answer, so nothing personal was stored where public reads look.
    const res = await mf.dispatchFetch(url("p-4"), { headers: { authorization: "Bearer shopper-token" } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("cache-control"), "private, no-store");
    assert.equal((await json(res)).final_price, 37800);
    assert.deepEqual(apiCalls.at(-1), { path: "/v1/products/p-4/max-benefit-price", auth: "Bearer shopper-token" });
    const publicRead = await mf.dispatchFetch(url("p-4"));
    assert.equal(publicRead.headers.get("x-cache"), "MISS");
    assert.equal((await json(publicRead)).final_price, 52000 - 5000, "the public answer, not the shopper's");
    const unknown = await mf.dispatchFetch(url("p-3"));
    assert.equal(unknown.status, 404);
    assertError(await json(unknown), "not_found");
  });

  it("refuses other methods", async () => {
    const res = await mf.dispatchFetch(url("p-1"), { method: "POST", body: "{}" });
    assert.equal(res.status, 405);
    assertError(await json(res), "method_not_allowed");
  });
});

describe("max-benefit price expiry without a stale window (Miniflare)", () => {
  let mf;

  before(async () => {
    // Times have one-second resolution: a TTL of 2 s keeps the immediate re-read a HIT.
    mf = await startWorker({ PROMO_PRICE_CACHE_TTL_SECONDS: "2", PROMO_PRICE_CACHE_STALE_SECONDS: "0" });
    const kv = await mf.getKVNamespace("PROMO_KV");
    await kv.put("product:p-1", JSON.stringify(product("p-1", "b-1")));
    await kv.put("price-book", JSON.stringify(priceBook(15)));
  });

  after(async () => {
    await mf?.dispose();
  });

  it("recomputes once the TTL has passed", async () => {
    const first = await mf.dispatchFetch(url("p-1"));
    assert.equal(first.headers.get("x-cache"), "MISS");
    assert.equal(first.headers.get("cache-control"), "public, max-age=2, stale-while-revalidate=0");
    await first.arrayBuffer();
    const hit = await mf.dispatchFetch(url("p-1"));
    assert.equal(hit.headers.get("x-cache"), "HIT");
    await hit.arrayBuffer();
    await sleep(2_200);
    const expired = await mf.dispatchFetch(url("p-1"));
    assert.equal(expired.headers.get("x-cache"), "MISS");
    assert.equal((await json(expired)).final_price, 40500);
  });
});
