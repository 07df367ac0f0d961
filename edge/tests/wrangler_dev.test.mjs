// The deployment as written: `wrangler dev` builds the worker with wrangler.toml's [build]
// command and serves it in workerd with wrangler.toml's bindings; it answers.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";

import { STANDARD_SECRET, assertError, json } from "./helpers.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const WRANGLER = fileURLToPath(new URL("../node_modules/.bin/wrangler", import.meta.url));

async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

describe("wrangler dev with wrangler.toml", () => {
  let child, base, state, output = "";

  before(async () => {
    const port = await freePort();
    state = mkdtempSync(join(tmpdir(), "promo-wrangler-"));
    child = spawn(
      WRANGLER,
      ["dev", "--local", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", state,
        "--var", `PROMO_WEBHOOK_SECRET_STANDARD:${STANDARD_SECRET}`],
      { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    base = `http://127.0.0.1:${port}`;
    // The build runs first (incremental after infra/test.sh's worker build).
    const deadline = Date.now() + 300_000;
    for (;;) {
      try {
        const res = await fetch(`${base}/healthz`);
        if (res.status === 200) break;
      } catch {
        // not listening yet
      }
      assert.ok(child.exitCode === null, `wrangler dev exited:\n${output}`);
      assert.ok(Date.now() < deadline, `wrangler dev did not answer in 5 minutes:\n${output}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  });

  after(() => {
    child?.kill("SIGTERM");
    if (state) rmSync(state, { recursive: true, force: true });
  });

  it("answers /healthz and verifies webhooks with its configuration", async () => {
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    assert.equal((await json(health)).status, "ok");
    const body = JSON.stringify({ type: "paid" });
    const forged = await fetch(`${base}/v1/webhooks/standard`, {
      method: "POST",
      headers: { "content-type": "application/json", "webhook-id": "msg_1",
        "webhook-timestamp": String(Math.floor(Date.now() / 1000)), "webhook-signature": "v1,Zm9yZ2Vk" },
      body,
    });
    assert.equal(forged.status, 401);
    assertError(await json(forged), "invalid_signature");
    const stripe = await fetch(`${base}/v1/webhooks/stripe`, { method: "POST", body });
    assert.equal(stripe.status, 503, "no Stripe secret in this environment");
    assertError(await json(stripe), "provider_not_configured");
  });
});
