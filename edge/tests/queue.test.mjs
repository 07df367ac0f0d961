// The durable hand-off in workerd: an accepted webhook is enqueued to SQS (here moto's SQS,
// the same stand-in server as the DynamoDB one, driven over the AWS JSON protocol), signed
// with SigV4; the provider gets 2xx only once the queue has the message, a replay enqueues
// nothing more, and a queue that cannot be reached is a 503 the provider retries.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";

import { BASE, STANDARD_SECRET, assertError, json, standardHeaders, startWorker } from "./helpers.mjs";

const MOTO = process.env.PROMO_TEST_DYNAMODB_ENDPOINT;

/** One SQS JSON-protocol call to the stand-in (it does not check signatures). */
async function sqs(action, body) {
  const res = await fetch(`${MOTO}/`, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": `AmazonSQS.${action}`,
      authorization: "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `${action}: ${text}`);
  return text ? JSON.parse(text) : {};
}

function paid(paymentId) {
  return JSON.stringify({
    type: "paid", payment_id: paymentId, order_id: `o-${paymentId}`, user_id: "u-queue", amount: 52000,
    currency: "KRW", items: [], occurred_at: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  });
}

describe("the hand-off to the payment events queue (SQS)", () => {
  let mf, queueUrl;

  before(async () => {
    assert.ok(MOTO, "PROMO_TEST_DYNAMODB_ENDPOINT (moto, which serves SQS too) is not set: run infra/test.sh");
    queueUrl = (await sqs("CreateQueue", { QueueName: `promo-payments-${randomUUID()}` })).QueueUrl;
    mf = await startWorker({
      PROMO_PAYMENT_QUEUE_URL: queueUrl,
      PROMO_AWS_ACCESS_KEY_ID: "test",
      PROMO_AWS_SECRET_ACCESS_KEY: "test",
    });
  });

  after(async () => {
    await mf?.dispose();
    if (queueUrl) await sqs("DeleteQueue", { QueueUrl: queueUrl });
  });

  const post = (worker, body, headers) =>
    worker.dispatchFetch(`${BASE}/v1/webhooks/standard`, { method: "POST", headers, body });

  it("enqueues an accepted delivery once, and a replay enqueues nothing more", async () => {
    const payment = `pay_${randomUUID()}`;
    const body = paid(payment);
    const headers = { ...standardHeaders(STANDARD_SECRET, body), "x-request-id": "req-queue-1" };
    const first = await post(mf, body, headers);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("x-request-id"), "req-queue-1", "the request id is echoed");
    assert.equal((await json(first)).status, "accepted");
    const replay = await post(mf, body, headers);
    assert.equal(replay.headers.get("idempotent-replayed"), "true");
    const got = await sqs("ReceiveMessage", { QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
      MessageAttributeNames: ["All"] });
    assert.equal(got.Messages?.length, 1, JSON.stringify(got));
    assert.equal(got.Messages[0].MessageAttributes?.request_id?.StringValue, "req-queue-1",
      "the request id travels to the issuer with the event");
    const event = JSON.parse(got.Messages[0].Body);
    assert.equal(event.payment_id, payment);
    assert.equal(event.type, "paid");
    assert.equal(event.amount, 52000);
    await sqs("DeleteMessage", { QueueUrl: queueUrl, ReceiptHandle: got.Messages[0].ReceiptHandle });
    const more = await sqs("ReceiveMessage", { QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 });
    assert.equal(more.Messages?.length ?? 0, 0, "one message per delivery, replays included");
  });

  it("answers 503 when the queue cannot take the message, so the provider retries", async () => {
    const down = await startWorker({
      PROMO_PAYMENT_QUEUE_URL: `${MOTO}/123456789012/no-such-queue-${randomUUID()}`,
      PROMO_AWS_ACCESS_KEY_ID: "test",
      PROMO_AWS_SECRET_ACCESS_KEY: "test",
    });
    try {
      const body = paid(`pay_${randomUUID()}`);
      const res = await post(down, body, standardHeaders(STANDARD_SECRET, body));
      assert.equal(res.status, 503);
      assertError(await json(res), "unavailable");
    } finally {
      await down.dispose();
    }
  });

  it("refuses to start half-configured: a queue without its key is a 500, the variable named in the log", async () => {
    // The answer says what failed in words for the shop and carries the request id; the
    // detail (which variable) is for the operator's log only (issue 25, item 12).
    const logs = [];
    const half = await startWorker({ PROMO_PAYMENT_QUEUE_URL: queueUrl }, {}, {}, { logs });
    try {
      const res = await half.dispatchFetch(`${BASE}/healthz`, { headers: { "x-request-id": "mf-half-1" } });
      assert.equal(res.status, 500);
      const body = await json(res);
      assertError(body, "internal");
      assert.doesNotMatch(body.error.message, /PROMO_AWS_ACCESS_KEY_ID/);
      assert.equal(body.error.request_id, "mf-half-1");
      await new Promise((r) => setTimeout(r, 200));
      const line = logs.find((l) => l.message.includes("mf-half-1"));
      assert.ok(line, `no log line names the request: ${JSON.stringify(logs)}`);
      assert.match(line.message, /PROMO_AWS_ACCESS_KEY_ID/);
    } finally {
      await half.dispose();
    }
  });
});
