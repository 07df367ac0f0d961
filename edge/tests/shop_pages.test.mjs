// The shoppers' pages in a real browser (Debian's chromium driven by playwright-core): the
// embed script (`/v1/embed.js`, `<promo-price>`, `<promo-drop>`) served by `promoctl dev`
// (its demo shop, same origin) AND by the built Worker (Miniflare, on its own origin, called
// cross-origin from a shop page under a strict CSP; shoppers' routes passed to the local
// platform as the API). What a shopper sees: the price equals the JSON answer's final_price
// in several locales; a coupon claimed from its button lands in the wallet and the price
// re-renders; a drop's hold with its countdown, a second shopper's waitlist position, the
// cancel that promotes them; an expired answer refreshing itself; an API error in words;
// keyboard-only operation; no layout shift (CLS 0); no axe-core violations. Screenshots are
// kept under $PROMO_ARTIFACTS (default /tmp/promo-artifacts)/shop-pages.
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";

import { chromium } from "playwright-core";

import { freePort, startWorker, waitFor } from "./helpers.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TARGET = process.env.CARGO_TARGET_DIR ?? join(ROOT, "target");
const PROMOCTL = process.env.PROMOCTL_BIN ?? join(TARGET, "debug", "promoctl");
const CHROMIUM = process.env.PROMO_CHROMIUM ?? "/usr/bin/chromium";
const AXE = readFileSync(fileURLToPath(new URL("../node_modules/axe-core/axe.min.js", import.meta.url)), "utf8");
const ARTIFACTS = join(process.env.PROMO_ARTIFACTS ?? join(tmpdir(), "promo-artifacts"), "shop-pages");
const FLASH_SECONDS = 25;

const PRODUCTS = [
  { id: "p-1", brand: "b-1", category: "c-1", currency: "KRW", list_price: 59000, sale_price: 52000 },
  { id: "p-2", brand: "b-2", category: "gift-cards", currency: "KRW", list_price: 50000, sale_price: 50000 },
  { id: "p-3", brand: "b-3", category: "c-3", currency: "KRW", list_price: 30000, sale_price: 30000 },
  { id: "p-usd", brand: "b-9", category: "c-9", currency: "USD", list_price: 2599, sale_price: 1999 },
];

const FLASH = `id = "flash"
name = "Flash sale"
currency = "KRW"
starts_at = "now"
ends_at = "+${FLASH_SECONDS}s"

[[coupons]]
id = "flash-3000"
kind = "product"
discount = { fixed = 3000 }
applies_to = { products = ["p-3"] }
stackable = true

[claim]
coupon = "flash-3000"
stock = 100
per_user_limit = 1

[[events]]
id = "drop-short"
name = "Short drop"
starts_at = "now"
ends_at = "+${FLASH_SECONDS}s"
stock = 1
hold = "10m"
per_user_limit = 1
price = 50000
`;

const drop = (id, startsAt = "now") => `
[[events]]
id = "${id}"
name = "Signed edition"
starts_at = "${startsAt}"
ends_at = "+7d"
stock = 1
hold = "10m"
per_user_limit = 1
price = 50000
`;
const DROPS = `id = "drops-test"
name = "Drops"
currency = "KRW"
starts_at = "now"
ends_at = "+30d"
${drop("drop-dev")}${drop("drop-worker")}${drop("drop-later", "+2h")}`;

/** What a shopper is shown as `amount` of `currency` in `locale` (ko-KR KRW: "37,800원"). */
function shown(amount, currency, locale) {
  const digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  const value = amount / 10 ** digits;
  if (currency === "KRW" && locale.startsWith("ko")) return `${new Intl.NumberFormat(locale).format(value)}원`;
  return new Intl.NumberFormat(locale, { style: "currency", currency }).format(value);
}

/** The text of the first element matching `selector` in the shadow root of `host`. */
const shadowText = (page, host, selector) =>
  page.evaluate(
    ([h, s]) => document.querySelector(h)?.shadowRoot?.querySelector(s)?.textContent ?? null,
    [host, selector],
  );

describe("shoppers' pages in a browser: promoctl dev and the Worker", () => {
  let dir, dev, mf, kv, browser, env, devUrl, workerUrl, shopUrl, shop;
  // What `promoctl products export-kv` prints, put in the Worker's KV (as `wrangler kv bulk put`).
  const publishToWorker = async () => {
    for (const { key, value } of JSON.parse(promoctl("products", "export-kv"))) await kv.put(key, value);
  };
  const csp = [];
  const promoctl = (...args) => execFileSync(PROMOCTL, args, { env, encoding: "utf8" });
  const token = (user) => promoctl("token", "--user", user).trim();

  // Each runtime as a shop page sees it: where its pages are, where its API is, and its
  // own event and shoppers (claims are once per shopper, the drops' stock is one).
  const runtimes = () => [
    { name: "dev", pages: devUrl, api: devUrl, drop: "drop-dev", users: ["u-jane", "u-bob", "u-amy"] },
    { name: "worker", pages: shopUrl, api: workerUrl, drop: "drop-worker", users: ["u-kim", "u-lee", "u-park"] },
  ];

  async function open(url, { bypassCSP = false, route } = {}) {
    const context = await browser.newContext({ bypassCSP, viewport: { width: 800, height: 700 } });
    const page = await context.newPage();
    if (route) await page.route(...route);
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) csp.push(`${url}: ${m.text()}`);
    });
    page.on("pageerror", (e) => csp.push(`${url}: page error ${e.message}`));
    // Layout shifts from the first paint on, as Core Web Vitals count them.
    await page.addInitScript(() => {
      window.__cls = 0;
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) if (!e.hadRecentInput) window.__cls += e.value;
      }).observe({ type: "layout-shift", buffered: true });
      window.__events = [];
      for (const n of ["promo:ready", "promo:claimed", "promo:error", "promo:reserved", "promo:cancelled"]) {
        document.addEventListener(n, (e) => window.__events.push({ type: n, detail: e.detail }));
      }
    });
    const res = await page.goto(url);
    assert.equal(res.status(), 200, url);
    return page;
  }
  const events = (page, type) => page.evaluate((t) => window.__events.filter((e) => e.type === t), type);
  const shot = async (page, name) => {
    const path = join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    return path;
  };

  before(async () => {
    assert.ok(existsSync(PROMOCTL), `${PROMOCTL} is missing: build it with cargo build -p promoctl (or set PROMOCTL_BIN)`);
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (infra/tools.sh does)`);
    mkdirSync(ARTIFACTS, { recursive: true });
    console.log(`# screenshots: ${ARTIFACTS}`);
    dir = mkdtempSync(join(tmpdir(), "promo-shop-"));
    const [devPort, workerPort, shopPort] = [await freePort(), await freePort(), await freePort()];
    devUrl = `http://127.0.0.1:${devPort}`;
    workerUrl = `http://127.0.0.1:${workerPort}`;
    shopUrl = `http://localhost:${shopPort}`;
    env = { ...process.env, PROMO_DATA_DIR: join(dir, "data"), PROMO_LISTEN: `127.0.0.1:${devPort}`, PROMO_LOG: "warn" };
    writeFileSync(join(dir, "flash.toml"), FLASH);
    writeFileSync(join(dir, "drops.toml"), DROPS);
    writeFileSync(join(dir, "products.json"), JSON.stringify(PRODUCTS));
    promoctl("campaign", "deploy", join(ROOT, "examples/black-friday.toml"));
    promoctl("campaign", "deploy", join(dir, "drops.toml"));
    promoctl("products", "publish", join(dir, "products.json"));
    dev = spawn(PROMOCTL, ["dev"], { env, stdio: ["ignore", "ignore", "inherit"] });
    await waitFor("promoctl dev", async () => {
      try {
        return (await fetch(`${devUrl}/healthz`)).ok;
      } catch {
        return false;
      }
    });
    // The Worker: the same catalog in its KV, the local platform as its API, the shop's
    // origin allowed to call it.
    console.log("# starting the Worker (Miniflare)");
    mf = await startWorker(
      { PROMO_API_URL: devUrl, PROMO_CORS_ORIGINS: shopUrl },
      {},
      { host: "127.0.0.1", port: workerPort },
    );
    kv = await mf.getKVNamespace("PROMO_KV");
    await publishToWorker();
    // The shop (another origin): the demo shop's pages with the Worker's script, under a
    // CSP that allows the Worker's origin for scripts and calls, and nothing inline.
    shop = createHttpServer(async (req, res) => {
      // The shop's own backend: its signed-in shopper's token, for `token-url`.
      if (req.url === "/shop/token") {
        res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
        return res.end(JSON.stringify({ token: token("u-token-url") }));
      }
      if (req.url === "/shop/token-url") {
        res.writeHead(200, {
          "content-type": "text/html; charset=utf-8",
          "content-security-policy": `default-src 'none'; script-src ${workerUrl}; connect-src 'self' ${workerUrl}`,
        });
        return res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>token-url</title>
<script type="module" src="${workerUrl}/v1/embed.js"></script></head><body><main><h1>Product p-1</h1>
<promo-price product="p-1" locale="en-US" token-url="/shop/token"></promo-price></main></body></html>`);
      }
      const upstream = await fetch(devUrl + req.url);
      let body = Buffer.from(await upstream.arrayBuffer());
      const type = upstream.headers.get("content-type") ?? "text/plain";
      const headers = { "content-type": type, "cache-control": "no-store" };
      if (type.startsWith("text/html")) {
        body = Buffer.from(body.toString("utf8").replace('src="/v1/embed.js"', `src="${workerUrl}/v1/embed.js"`));
        headers["content-security-policy"] = upstream.headers
          .get("content-security-policy")
          .replace("script-src 'self'", `script-src 'self' ${workerUrl}`)
          .replace("connect-src 'self'", `connect-src 'self' ${workerUrl}`);
      }
      res.writeHead(upstream.status, headers);
      res.end(body);
    });
    await new Promise((r) => shop.listen(shopPort, "127.0.0.1", r));
    console.log("# launching chromium");
    browser = await chromium.launch({
      timeout: 60_000,
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"],
    });
  }, { timeout: 180_000 });

  after(async () => {
    await browser?.close();
    await mf?.dispose();
    shop?.close();
    dev?.kill("SIGTERM");
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("serves one embed script from both runtimes: same bytes, cached, versioned, under 10 KB gzipped", async () => {
    const source = readFileSync(join(ROOT, "shared/assets/embed.js"));
    const gz = gzipSync(source, { level: 9 }).length;
    console.log(`# embed.js: ${source.length} bytes, ${gz} bytes gzipped`);
    assert.ok(gz <= 10 * 1024, `embed.js is ${gz} bytes gzipped (limit 10240)`);
    const bodies = [];
    for (const base of [devUrl, workerUrl]) {
      const res = await fetch(`${base}/v1/embed.js`, { headers: { origin: shopUrl } });
      assert.equal(res.status, 200, base);
      assert.equal(res.headers.get("content-type"), "text/javascript; charset=utf-8");
      assert.equal(res.headers.get("cache-control"), "public, max-age=300, stale-while-revalidate=86400");
      const etag = res.headers.get("etag");
      const pinned = res.headers.get("link").match(/^<([^>]+)>/)[1];
      assert.match(pinned, /^\/v1\/embed\/[0-9a-f]{16}\.js$/);
      bodies.push(Buffer.from(await res.arrayBuffer()));
      const again = await fetch(`${base}/v1/embed.js`, { headers: { "if-none-match": etag } });
      assert.equal(again.status, 304, `${base}: a matching ETag`);
      const versioned = await fetch(base + pinned);
      assert.equal(versioned.headers.get("cache-control"), "public, max-age=31536000, immutable");
      assert.deepEqual(Buffer.from(await versioned.arrayBuffer()), source);
    }
    assert.deepEqual(bodies[0], source, "promoctl dev serves the source file's bytes");
    assert.deepEqual(bodies[1], source, "the Worker serves the same bytes");
    const cors = await fetch(`${workerUrl}/v1/embed.js`, { headers: { origin: shopUrl } });
    assert.equal(cors.headers.get("access-control-allow-origin"), shopUrl, "a module script from the shop's page");
    // The demo shop and its token switcher are promoctl dev's only.
    assert.equal((await fetch(`${devUrl}/demo/token?user=u-x`)).status, 200);
    for (const path of ["/demo/token?user=u-x", "/demo/products/p-1"]) {
      assert.equal((await fetch(workerUrl + path)).status, 404, `the Worker has no ${path}`);
    }
  });

  it("serves the HTML fragment from the JSON's cache entry: a HIT on the second read in both runtimes", async () => {
    for (const base of [devUrl, workerUrl]) {
      const url = `${base}/v1/products/p-2/max-benefit-price.html`;
      const first = await fetch(url);
      assert.equal(first.status, 200, base);
      assert.equal(first.headers.get("content-type"), "text/html; charset=utf-8");
      const html = await first.text();
      const answer = await (await fetch(`${base}/v1/products/p-2/max-benefit-price`)).json();
      assert.ok(html.startsWith(`<promo-price product="p-2" data-final-price="${answer.final_price}"`), html);
      const second = await fetch(url);
      assert.equal(second.headers.get("x-cache"), "HIT", `${base}: the second read`);
      assert.match(second.headers.get("cache-control"), /^public, max-age=\d+, stale-while-revalidate=\d+$/);
      const etag = second.headers.get("etag");
      assert.ok(etag.endsWith('-html"'), etag);
      assert.equal((await fetch(url, { headers: { "if-none-match": etag } })).status, 304);
    }
  });

  it("refreshes an answer when it expires (valid_until), and a drop's panel when it ends", async () => {
    // A flash sale of FLASH_SECONDS from now (and a drop as short), in both runtimes.
    promoctl("campaign", "deploy", join(dir, "flash.toml"));
    await publishToWorker();
    // Each runtime keeps the catalog it read for a moment (promoctl dev: a second).
    for (const rt of runtimes()) {
      await waitFor(`${rt.name} prices the flash sale`, async () =>
        (await (await fetch(`${rt.api}/v1/products/p-3/max-benefit-price`)).json()).final_price === 27000, 10_000);
    }
    const pages = [];
    for (const rt of runtimes()) {
      const page = await open(`${rt.pages}/demo/products/p-3?locale=ko-KR`);
      await waitFor("rendered", () => shadowText(page, "promo-price", ".final"));
      const [ready] = await events(page, "promo:ready");
      assert.ok(ready.detail.answer.valid_until, "the flash sale's end is the answer's valid_until");
      assert.equal((await shadowText(page, "promo-price", ".final")).replace("Best price ", ""), "27,000원", "during the sale");
      pages.push(page);
    }
    const ended = await open(`${devUrl}/demo/events/drop-short?user=u-amy`);
    await waitFor("the short drop open", async () => (await shadowText(ended, "promo-drop", "#reserve")) === "Reserve");
    for (const page of pages) {
      await waitFor("the price after the flash sale", async () =>
        (await shadowText(page, "promo-price", ".final"))?.includes("30,000원"), (FLASH_SECONDS + 15) * 1000);
      assert.ok((await events(page, "promo:ready")).length >= 2, "a second answer was read");
      await page.context().close();
    }
    await waitFor("the drop ended", async () =>
      (await shadowText(ended, "promo-drop", ".box"))?.includes("This drop has ended."), 10_000);
    assert.equal(await shadowText(ended, "promo-drop", "#reserve"), null, "no reserve button once it ended");
    await ended.context().close();
  });

  it("shows the JSON answer's final_price for several products and locales, with no layout shift", async () => {
    for (const rt of runtimes()) {
      for (const product of ["p-1", "p-2", "p-usd"]) {
        const answer = await (await fetch(`${rt.api}/v1/products/${product}/max-benefit-price`)).json();
        for (const locale of ["ko-KR", "en-US"]) {
          const page = await open(`${rt.pages}/demo/products/${product}?locale=${locale}`);
          await waitFor(`${rt.name} ${product} ${locale} rendered`, () => shadowText(page, "promo-price", ".final"));
          const final = (await shadowText(page, "promo-price", ".final")).replace("Best price ", "");
          assert.equal(final, shown(answer.final_price, answer.currency, locale), `${rt.name} ${product} ${locale}`);
          if (answer.list_total > answer.final_price) {
            const list = (await shadowText(page, "promo-price", ".list")).replace("List price ", "");
            assert.equal(list, shown(answer.list_total, answer.currency, locale), "the list price, struck");
          }
          assert.equal((await events(page, "promo:ready")).length, 1);
          await page.waitForTimeout(300);
          assert.equal(await page.evaluate(() => window.__cls), 0, `${rt.name} ${product} ${locale}: CLS`);
          if (product === "p-1") await shot(page, `price-${rt.name}-${locale}`);
          if (product === "p-1" && locale === "en-US") {
            await page.evaluate(() => {
              document.querySelector("promo-price").shadowRoot.querySelector("details").open = true;
            });
            await page.locator("section.product").screenshot({ path: join(ARTIFACTS, `embed-price-${rt.name}.png`) });
          }
          await page.context().close();
        }
      }
      // Attribute changes re-render: a quantity (priced as one line), then a variant.
      const page = await open(`${rt.pages}/demo/products/p-1?locale=ko-KR`);
      await waitFor("rendered", () => shadowText(page, "promo-price", ".final"));
      const three = await (await fetch(`${rt.api}/v1/products/p-1/max-benefit-price?quantity=3`)).json();
      assert.equal(three.lines[0].quantity, 3);
      await page.evaluate(() => document.querySelector("promo-price").setAttribute("quantity", "3"));
      await waitFor(`${rt.name}: three units`, async () =>
        (await shadowText(page, "promo-price", ".final")) === `Best price ${shown(three.final_price, "KRW", "ko-KR")}`);
      assert.equal(await shadowText(page, "promo-price", ".row .muted"), "for 3");
      await page.evaluate(() => document.querySelector("promo-price").setAttribute("product", "p-usd"));
      await waitFor("the variant re-rendered", async () =>
        (await shadowText(page, "promo-price", ".final"))?.includes("US$"));
      await page.context().close();
    }
    assert.deepEqual(csp, [], "no CSP violation, no page error");
  });

  it("claims a coupon with the keyboard only: it lands in the wallet and the price re-renders", async () => {
    for (const rt of runtimes()) {
      const user = rt.users[0];
      const page = await open(`${rt.pages}/demo/products/p-1?locale=ko-KR&user=${user}`);
      await waitFor("the download button", () => shadowText(page, "promo-price", "button[data-coupon]"));
      // Keyboard only: the disclosure, then its button.
      await page.focus("#shopper");
      await page.keyboard.press("Tab");
      const focused = () =>
        page.evaluate(() => document.querySelector("promo-price").shadowRoot.activeElement?.tagName ?? null);
      assert.equal(await focused(), "SUMMARY", `${rt.name}: Tab reaches the benefits`);
      await page.keyboard.press("Enter");
      await page.keyboard.press("Tab");
      assert.equal(await focused(), "BUTTON", `${rt.name}: then the download button`);
      await shot(page, `claim-before-${rt.name}`);
      await page.keyboard.press("Enter");
      await waitFor(`${rt.name}: promo:claimed`, async () => (await events(page, "promo:claimed")).length === 1);
      const [claimed] = await events(page, "promo:claimed");
      assert.equal(claimed.detail.campaign, "black-friday");
      await waitFor("the re-render", async () =>
        (await shadowText(page, ".product promo-price", "#msg")) === "Coupon downloaded.");
      assert.equal(await shadowText(page, "promo-price", "button[data-coupon]"), null, "nothing left to download");
      const wallet = await (await fetch(`${rt.api}/v1/users/${user}/coupons`, {
        headers: { authorization: `Bearer ${token(user)}` },
      })).json();
      assert.equal(wallet.coupons.length, 1, `${rt.name}: ${JSON.stringify(wallet)}`);
      assert.equal(wallet.coupons[0].campaign_id, "black-friday");
      const mine = await (await fetch(`${rt.api}/v1/products/p-1/max-benefit-price`, {
        headers: { authorization: `Bearer ${token(user)}` },
      })).json();
      assert.equal(
        (await shadowText(page, "promo-price", ".final")).replace("Best price ", ""),
        shown(mine.final_price, "KRW", "ko-KR"),
        "the shopper's own price",
      );
      await shot(page, `claim-after-${rt.name}`);
      await page.context().close();
    }
  });

  it("runs a drop: reserve → hold countdown → another shopper waits with a position → cancel promotes them", async () => {
    for (const rt of runtimes()) {
      const [a, b] = rt.users.slice(1);
      const pageA = await open(`${rt.pages}/demo/events/${rt.drop}?user=${a}&locale=en-US`);
      await waitFor(`${rt.name}: the reserve button`, () => shadowText(pageA, "promo-drop", "#reserve"));
      assert.match(await shadowText(pageA, "promo-drop", ".box"), /1 of 1 available · 0 waiting/);
      assert.equal(await pageA.evaluate(() => window.__cls), 0, `${rt.name}: the drop's CLS`);
      // Keyboard only: Tab from the page's last control reaches the button, Enter presses it.
      await pageA.focus("#shopper");
      await pageA.keyboard.press("Tab");
      const focusedA = () =>
        pageA.evaluate(() => document.querySelector("promo-drop").shadowRoot.activeElement?.id ?? null);
      assert.equal(await focusedA(), "reserve", `${rt.name}: Tab reaches Reserve`);
      await pageA.keyboard.press("Enter");
      await waitFor("the hold", async () => (await shadowText(pageA, "promo-drop", ".box"))?.includes("held for you"));
      const [reserved] = await events(pageA, "promo:reserved");
      assert.match(reserved.detail.reservation_id, /\S/, "promo:reserved carries the reservation_id");
      assert.equal(reserved.detail.status, "RESERVED");
      const count1 = await shadowText(pageA, "promo-drop", "[data-until]");
      assert.match(count1, /^00:(09|10):\d\d$/);
      await waitFor("the countdown ticks", async () => (await shadowText(pageA, "promo-drop", "[data-until]")) !== count1, 5000);
      await shot(pageA, `drop-held-${rt.name}`);
      await pageA.locator("section.drop").screenshot({ path: join(ARTIFACTS, `embed-drop-${rt.name}.png`) });

      const pageB = await open(`${rt.pages}/demo/events/${rt.drop}?user=${b}`);
      await waitFor("the waitlist button", async () =>
        (await shadowText(pageB, "promo-drop", "#reserve")) === "Join the waitlist", 10_000);
      await pageB.evaluate(() => document.querySelector("promo-drop").shadowRoot.getElementById("reserve").click());
      await waitFor("the position", async () =>
        (await shadowText(pageB, "promo-drop", ".box"))?.includes("waitlist: position 1"));
      const [waiting] = await events(pageB, "promo:reserved");
      assert.equal(waiting.detail.status, "WAITING");
      await shot(pageB, `drop-waiting-${rt.name}`);

      // Focus moved to the cancel button with the hold; Enter cancels.
      assert.equal(await focusedA(), "cancel", `${rt.name}: focus on Cancel after reserving`);
      await pageA.keyboard.press("Enter");
      await waitFor("A's cancel", async () => (await events(pageA, "promo:cancelled")).length === 1);
      await waitFor(`${rt.name}: B promoted`, async () =>
        (await shadowText(pageB, "promo-drop", ".box"))?.includes("held for you"), 10_000);
      const promoted = (await events(pageB, "promo:reserved")).at(-1);
      assert.equal(promoted.detail.status, "RESERVED");
      assert.equal(promoted.detail.reservation_id, waiting.detail.reservation_id, "the waiting reservation got the place");
      await shot(pageB, `drop-promoted-${rt.name}`);
      await pageA.context().close();
      await pageB.context().close();
    }
    assert.deepEqual(csp, [], "no CSP violation, no page error");
    const later = await open(`${devUrl}/demo/events/drop-later`);
    await waitFor("the countdown to the start", async () =>
      /Starts in 0[12]:\d\d:\d\d/.test((await shadowText(later, "promo-drop", ".box")) ?? ""));
    await later.context().close();
  });

  it("takes the shopper's token from token-url (the shop's backend), in memory only", async () => {
    const page = await open(`${shopUrl}/shop/token-url`);
    await waitFor("the personal answer", async () => {
      const ready = await events(page, "promo:ready");
      return ready.some((e) => e.detail.personal);
    });
    assert.equal(await shadowText(page, "promo-price", "button[data-coupon]"), "Download coupon welcome-10pct");
    assert.deepEqual(await page.context().cookies(), [], "no cookie");
    assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0, "nothing stored");
    await page.context().close();
    assert.deepEqual(csp, [], "no CSP violation, no page error");
  });

  it("shows API and network errors in words, with their code in promo:error; a sold-out drop says so", async () => {
    for (const rt of runtimes()) {
      const page = await open(`${rt.pages}/demo/products/no-such-product`);
      await waitFor("the error", () => shadowText(page, "promo-price", ".err"));
      assert.match(await shadowText(page, "promo-price", ".err"), /not in the catalog/);
      const [error] = await events(page, "promo:error");
      assert.equal(error.detail.code, "not_found");
      assert.equal(await page.evaluate(() => window.__cls), 0);
      await page.context().close();
    }
    // A token the platform refuses: reported, and the public price shown rather than none.
    for (const rt of runtimes()) {
      const page = await open(`${rt.pages}/demo/products/p-1?locale=en-US`);
      await waitFor("rendered", () => shadowText(page, "promo-price", ".final"));
      const before = await shadowText(page, "promo-price", ".final");
      await page.evaluate(() => window.PromoEmbed.setToken(async () => "not-a-token"));
      await waitFor(`${rt.name}: the refused token reported`, async () =>
        (await events(page, "promo:error")).some((e) => e.detail.where === "token"));
      const [refused] = await events(page, "promo:error");
      assert.equal(refused.detail.status, 401, JSON.stringify(refused.detail));
      await waitFor("the public price again", async () => (await events(page, "promo:ready")).length === 2);
      assert.equal(await shadowText(page, "promo-price", ".final"), before);
      await page.context().close();
    }
    // The platform unreachable: words, and the code `network`.
    const down = await open(`${devUrl}/demo/products/p-1`, {
      route: ["**/v1/products/p-1/max-benefit-price", (r) => r.abort("connectionrefused")],
    });
    await waitFor("the network error", () => shadowText(down, "promo-price", ".err"));
    assert.equal(await shadowText(down, "promo-price", ".err"), "The price service cannot be reached. Please try again.");
    assert.equal((await events(down, "promo:error"))[0].detail.code, "network");
    await down.context().close();
    // A sold-out drop (every place paid for): the view says so, and nothing is offered.
    const view = await (await fetch(`${devUrl}/v1/events/drop-later`)).json();
    const soldOut = { ...view, starts_at: new Date(Date.now() - 60_000).toISOString(), status: "ACTIVE",
      available: 0, confirmed: view.stock, sold_out: true, waitlist_open: false };
    const sold = await open(`${devUrl}/demo/events/drop-later?user=u-amy&locale=en-US`, {
      route: ["**/v1/events/drop-later", (r) => r.fulfill({ json: soldOut, headers: { "cache-control": "no-store" } })],
    });
    await waitFor("sold out", async () => (await shadowText(sold, "promo-drop", ".box"))?.includes("Sold out."));
    assert.equal(await shadowText(sold, "promo-drop", "button"), null, "no reserve or waitlist button");
    await sold.context().close();
  });

  it("has no accessibility violations (axe-core), shadow roots included", async () => {
    for (const path of ["/demo/products/p-1?user=u-amy", "/demo/events/drop-dev?user=u-amy", "/demo/products/nope"]) {
      // axe is injected inline, so this page's CSP is bypassed (the others keep it).
      const page = await open(devUrl + path, { bypassCSP: true });
      await waitFor("rendered", () =>
        page.evaluate(() => document.querySelector("promo-price, promo-drop")?.shadowRoot?.querySelector(".box, .err")));
      await page.evaluate(() => {
        const d = document.querySelector("promo-price")?.shadowRoot?.querySelector("details");
        if (d) d.open = true;
      });
      await page.addScriptTag({ content: AXE });
      const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
      const violations = result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
      assert.deepEqual(violations, [], path);
      await page.context().close();
    }
  });
});
