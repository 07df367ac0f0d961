"""The translated template (translate.py's rehearsal.json) created on moto's CloudFormation,
as the runbook deploys it: the secrets first, the functions' code in S3 (as `sam package`
leaves it), then the stack. Asserts the stack completes and its table, queues, topics,
functions, marketer policy and secrets exist as the template says; then, with PROMOCTL_BIN
set, `promoctl env add staging` reads the stack's outputs and `promoctl --env staging` works
on that stage with no other variable. Runs its own in-process moto server (fresh state, no
interference with the shared stand-in); the tools' venv (moto, boto3).

    python deploy_on_moto.py OUT_DIR
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import boto3
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

STAGE = "staging"
STACK = f"promo-{STAGE}"
SECRETS = ["promo/issuer-secret", "promo/shopper-jwt-secret", "promo/unsubscribe-secrets", "promo/cloudflare-api-token"]
FUNCTIONS = ["IssuerFunction", "ApiFunction", "SenderFunction", "FeedbackFunction", "SchedulerFunction"]


def fail(msg: str) -> None:
    print(f"rehearsal: {msg}", file=sys.stderr)
    sys.exit(1)


def main() -> int:
    out = Path(sys.argv[1])
    template = (out / "rehearsal.json").read_text()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    client = lambda name: boto3.client(  # noqa: E731
        name, endpoint_url=endpoint, region_name=region, aws_access_key_id="test", aws_secret_access_key="test"
    )
    t0 = time.monotonic()

    # The runbook's order: secrets before the stack resolves them.
    sm = client("secretsmanager")
    for name in SECRETS:
        sm.create_secret(Name=name, SecretString=os.urandom(32).hex())
    # `sam package`: each function's zip in the artifacts bucket.
    s3 = client("s3")
    where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket="promo-rehearsal-artifacts", **where)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    for fn in FUNCTIONS:
        s3.put_object(Bucket="promo-rehearsal-artifacts", Key=f"{fn}.zip", Body=buf.getvalue())

    cf = client("cloudformation")
    params = {
        "Stage": STAGE,
        "CloudflareAccountId": "rehearsal-account",
        "CloudflareKvNamespaceId": "rehearsal-namespace",
        "CloudflareApiTokenSecretName": "promo/cloudflare-api-token",
        "PublicUrl": "https://promo-staging.shop.example",
    }
    cf.create_stack(
        StackName=STACK,
        TemplateBody=template,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    while True:
        stack = cf.describe_stacks(StackName=STACK)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            break
        if time.monotonic() - t0 > 120:
            fail(f"stack {STACK} still {stack['StackStatus']} after 120 s")
        time.sleep(0.2)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        failed = [
            f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
            for e in cf.describe_stack_events(StackName=STACK)["StackEvents"]
            if "FAILED" in e["ResourceStatus"]
        ]
        fail(f"stack {STACK} is {stack['StackStatus']}: {'; '.join(failed)}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    problems: list[str] = []

    def check(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    table = client("dynamodb").describe_table(TableName=f"promo-{STAGE}")["Table"]
    check(outputs.get("PromoTableName") == table["TableName"], "PromoTableName output")
    check([k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"], "table key: pk, sk")
    sqs = client("sqs")
    for queue, dlq, receives in [("payment-events", "payment-events-dlq", 5), ("email", "email-dlq", 24)]:
        url = sqs.get_queue_url(QueueName=f"promo-{STAGE}-{queue}")["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attrs.get("RedrivePolicy", "{}"))
        check(str(redrive.get("maxReceiveCount")) == str(receives), f"{queue}: maxReceiveCount {receives}")
        check(redrive.get("deadLetterTargetArn", "").endswith(f":promo-{STAGE}-{dlq}"), f"{queue}: dead letters")
        sqs.get_queue_url(QueueName=f"promo-{STAGE}-{dlq}")
    topics = {t["TopicArn"].rsplit(":", 1)[1] for t in client("sns").list_topics()["Topics"]}
    check({f"promo-{STAGE}-alarms", f"promo-{STAGE}-email-feedback"} <= topics, f"topics: {sorted(topics)}")
    lam = client("lambda")
    for fn in ["issuer", "api", "sender", "feedback", "scheduler"]:
        conf = lam.get_function(FunctionName=f"promo-{STAGE}-{fn}")["Configuration"]
        check(conf.get("Runtime") == "provided.al2023", f"{fn}: runtime {conf.get('Runtime')}")
        check(conf["Environment"]["Variables"].get("PROMO_TABLE_NAME") == f"promo-{STAGE}", f"{fn}: PROMO_TABLE_NAME")
    iam = client("iam")
    if "MarketerPolicyArn" not in outputs:
        fail(f"the stack has no MarketerPolicyArn output (the marketers' least-privilege policy): {sorted(outputs)}")
    policy = iam.get_policy(PolicyArn=outputs["MarketerPolicyArn"])["Policy"]
    version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
    doc = version["PolicyVersion"]["Document"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    actions = sorted({a for st in doc["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])})
    check("dynamodb:Scan" not in actions and not any(a.endswith("*") for a in actions), f"marketer policy: {actions}")
    check(table["TableArn"] in json.dumps(doc), "marketer policy names the table")
    for name in SECRETS:
        sm.describe_secret(SecretId=name)
    if problems:
        fail("; ".join(problems))
    print(f"rehearsal: stack {STACK} CREATE_COMPLETE on moto in {time.monotonic() - t0:.1f}s; {len(outputs)} outputs")

    # The CLI finds its stage from the stack's outputs.
    promoctl = os.environ.get("PROMOCTL_BIN")
    if not promoctl:
        print("rehearsal: PROMOCTL_BIN unset: promoctl env add not rehearsed")
        return 0
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PROMO_") and k not in ("AWS_PROFILE", "AWS_ENDPOINT_URL")
    }
    env.update(
        PROMO_STAGES_FILE=str(out / "stages.toml"),
        PROMO_CLOUDFORMATION_ENDPOINT=endpoint,
        PROMO_DYNAMODB_ENDPOINT=endpoint,
        PROMO_SQS_ENDPOINT=endpoint,
        PROMO_CF_API_TOKEN="rehearsal-token",
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_REGION=region,
        PROMO_DATA_DIR=str(out / "no-local-store"),
    )
    for args in (["env", "add", STAGE], ["--env", STAGE, "campaign", "list"], ["--env", STAGE, "dlq", "list", "email"]):
        run = subprocess.run([promoctl, *args], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if run.returncode != 0:
            fail(f"promoctl {' '.join(args)} failed ({run.returncode}): {run.stderr.strip()}")
        print(f"rehearsal: promoctl {' '.join(args)}: ok")
    profile = (out / "stages.toml").read_text()
    for want in (f'PROMO_TABLE_NAME = "promo-{STAGE}"', 'PROMO_CF_KV_NAMESPACE_ID = "rehearsal-namespace"', "PROMO_EMAIL_DLQ_URL"):
        if want not in profile:
            fail(f"promoctl env add recorded no {want}: {profile}")
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
