// One-click unsubscribe in a real browser (Debian's chromium driven by playwright-core): the
// local platform (`promoctl dev`) sends a campaign email; its List-Unsubscribe link points
// at the Worker (Miniflare, on a port), which passes /v1/unsubscribe to the platform's API.
// Opening the link shows a page with a button and changes nothing (link scanners follow
// GETs); pressing the button unsubscribes; a tampered link says so and changes nothing.
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";

import { chromium } from "playwright-core";

import { freePort, startWorker, waitFor } from "./helpers.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TARGET = process.env.CARGO_TARGET_DIR ?? join(ROOT, "target");
const PROMOCTL = process.env.PROMOCTL_BIN ?? join(TARGET, "debug", "promoctl");
const CHROMIUM = process.env.PROMO_CHROMIUM ?? "/usr/bin/chromium";
const SECRET = "browser-test-unsubscribe-secret-0123456789";

describe("one-click unsubscribe through the Worker, in a browser", () => {
  let dir, dev, mf, browser, env, workerUrl;
  const promoctl = (...args) => execFileSync(PROMOCTL, args, { env, encoding: "utf8" });

  before(async () => {
    assert.ok(existsSync(PROMOCTL), `${PROMOCTL} is missing: build it with cargo build -p promoctl (or set PROMOCTL_BIN)`);
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (infra/tools.sh does)`);
    dir = mkdtempSync(join(tmpdir(), "promo-unsub-"));
    const [devPort, workerPort] = [await freePort(), await freePort()];
    workerUrl = `http://127.0.0.1:${workerPort}`;
    env = {
      ...process.env,
      PROMO_DATA_DIR: join(dir, "data"),
      PROMO_LISTEN: `127.0.0.1:${devPort}`,
      PROMO_PUBLIC_URL: workerUrl,
      PROMO_UNSUBSCRIBE_SECRETS: SECRET,
      PROMO_LOG: "warn",
    };
    // The example campaign, sendable at any hour.
    const example = readFileSync(join(ROOT, "examples/black-friday.toml"), "utf8");
    const campaign = example.replace(/^send_window = .*$/m, "");
    assert.notEqual(campaign, example, "the example's send window line was not found");
    writeFileSync(join(dir, "campaign.toml"), campaign);
    writeFileSync(
      join(dir, "audience.csv"),
      "email,user_id,opted_in,tier,first_name\njane@example.com,u-jane,true,gold,Jane\nbob@example.com,u-bob,true,silver,Bob\n",
    );
    dev = spawn(PROMOCTL, ["dev"], { env, stdio: ["ignore", "ignore", "inherit"] });
    await waitFor("promoctl dev", async () => {
      try {
        return (await fetch(`http://127.0.0.1:${devPort}/healthz`)).ok;
      } catch {
        return false;
      }
    });
    mf = await startWorker({ PROMO_API_URL: `http://127.0.0.1:${devPort}` }, {}, { host: "127.0.0.1", port: workerPort });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"],
    });
  });

  after(async () => {
    await browser?.close();
    await mf?.dispose();
    dev?.kill("SIGTERM");
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("opens the emailed link, presses the button, sees the confirmation: unsubscribed", async () => {
    promoctl("audience", "import", join(dir, "audience.csv"));
    promoctl("campaign", "deploy", join(dir, "campaign.toml"));
    promoctl("campaign", "trigger", "black-friday", "--detach", "--json");
    const outbox = join(env.PROMO_DATA_DIR, "outbox");
    const mail = await waitFor("Jane's email in the outbox", () => {
      if (!existsSync(outbox)) return null;
      for (const f of readdirSync(outbox).filter((f) => f.endsWith(".eml"))) {
        const text = readFileSync(join(outbox, f), "utf8");
        if (text.includes("To: jane@example.com")) return text;
      }
      return null;
    });
    assert.match(mail, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click$/m);
    const link = mail.match(/^List-Unsubscribe: <([^>]+)>$/m)?.[1];
    assert.ok(link?.startsWith(`${workerUrl}/v1/unsubscribe?t=`), `link: ${link}`);
    const optedIn = () => JSON.parse(promoctl("audience", "count", "--json")).opted_in;
    assert.equal(optedIn(), 2);

    const page = await browser.newPage();
    const shown = await page.goto(link);
    assert.equal(shown.status(), 200);
    assert.equal(await page.textContent("h1"), "Unsubscribe");
    assert.equal(optedIn(), 2, "opening the link (a GET) changes nothing");
    await Promise.all([page.waitForNavigation(), page.click("#unsubscribe")]);
    assert.equal(await page.textContent("h1"), "You are unsubscribed");
    assert.equal(optedIn(), 1, "the button unsubscribed Jane");

    // A tampered link: a clear page, nothing changed (Bob stays subscribed).
    const bobMail = readdirSync(outbox)
      .filter((f) => f.endsWith(".eml"))
      .map((f) => readFileSync(join(outbox, f), "utf8"))
      .find((t) => t.includes("To: bob@example.com"));
    const bobLink = bobMail.match(/^List-Unsubscribe: <([^>]+)>$/m)[1];
    const tampered = bobLink.replace(/t=(.)/, (_, c) => `t=${c === "A" ? "B" : "A"}`);
    const bad = await page.goto(tampered);
    assert.equal(bad.status(), 400);
    assert.equal(await page.textContent("h1"), "This link is not valid");
    assert.equal(await page.$("#unsubscribe"), null, "no button on a bad link");
    await page.close();
    assert.equal(optedIn(), 1);
  });

  it("answers a mail client's one-click POST without a browser", async () => {
    const outbox = join(env.PROMO_DATA_DIR, "outbox");
    const bobMail = readdirSync(outbox)
      .filter((f) => f.endsWith(".eml"))
      .map((f) => readFileSync(join(outbox, f), "utf8"))
      .find((t) => t.includes("To: bob@example.com"));
    const link = bobMail.match(/^List-Unsubscribe: <([^>]+)>$/m)[1];
    const res = await fetch(link, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "List-Unsubscribe=One-Click",
    });
    assert.equal(res.status, 200);
    assert.deepEqual((await res.json()).unsubscribed, true);
    assert.equal(JSON.parse(promoctl("audience", "count", "--json")).opted_in, 0);
  });
});
