"""The SAM template as `sam deploy` would hand it to CloudFormation, checked, and split for a
CloudFormation stand-in (infra/rehearsal.sh; run with the SAM CLI's venv, which has
aws-sam-translator and the SAM CLI's YAML loader).

    python translate.py TEMPLATE OUT_DIR

1. Each function's CodeUri becomes an S3 URI, as `sam package` leaves it; the region is the
   environment's (AWS_DEFAULT_REGION). aws-sam-translator expands the serverless resources.
2. Checks of the whole translated template: every Ref, GetAtt and ${} names a resource, a
   parameter or a pseudo parameter; and the resources moto cannot create (alarms, function
   URLs, the SES configuration set and its event destination, SNS subscriptions and the topic
   policy, the scheduler) are checked here instead, each for what it must say.
3. OUT_DIR/translated.json: the whole template; OUT_DIR/rehearsal.json: the same with those
   resources set aside (references to them become placeholders) and the outputs naming them
   dropped; OUT_DIR/set-aside.json: what was set aside.

Exits non-zero with every failed check listed.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

# What moto's CloudFormation does not model (moto 5.2.5).
SET_ASIDE = {
    "AWS::CloudWatch::Alarm",
    "AWS::Lambda::Url",
    "AWS::SES::ConfigurationSet",
    "AWS::SES::ConfigurationSetEventDestination",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    "AWS::Scheduler::Schedule",
}

FUNCTIONS = ["IssuerFunction", "ApiFunction", "SenderFunction", "FeedbackFunction", "SchedulerFunction"]

PROBLEMS: list[str] = []


def check(ok: bool, what: str) -> None:
    if not ok:
        PROBLEMS.append(what)


class AwsManagedPolicies(dict):
    """The managed policies SAM attaches (AWSLambdaBasicExecutionRole...), by name, offline:
    the translator otherwise asks IAM for the account's list."""

    def __missing__(self, name: str) -> str:
        return f"arn:aws:iam::aws:policy/service-role/{name}"


class OfflineLoader:
    def load(self) -> dict:
        return AwsManagedPolicies()


def refs(x):
    """Every logical name `x` refers to (Ref, GetAtt, the ${} of a Sub)."""
    if isinstance(x, dict):
        for k, v in x.items():
            if k == "Ref" and isinstance(v, str):
                yield v
            elif k == "Fn::GetAtt":
                yield v[0] if isinstance(v, list) else v.split(".")[0]
            elif k == "Fn::Sub":
                s = v if isinstance(v, str) else v[0]
                for m in re.findall(r"\$\{([^}!]+)\}", s):
                    yield m.split(".")[0]
                if isinstance(v, list):
                    yield from refs(v[1])
            else:
                yield from refs(v)
    elif isinstance(x, list):
        for v in x:
            yield from refs(v)


def placeholders(x, aside: set[str]):
    """`x` with every reference to a set-aside resource replaced by a placeholder string."""
    if isinstance(x, dict):
        if set(x) == {"Ref"} and x["Ref"] in aside:
            return f"set-aside-{x['Ref']}"
        if "Fn::Sub" in x and isinstance(x["Fn::Sub"], str):
            s = x["Fn::Sub"]
            for a in aside:
                s = s.replace("${" + a + "}", f"set-aside-{a}")
            return {"Fn::Sub": s}
        return {k: placeholders(v, aside) for k, v in x.items()}
    if isinstance(x, list):
        return [placeholders(v, aside) for v in x]
    return x


def of_type(t: dict, type_: str) -> dict:
    return {k: r for k, r in t["Resources"].items() if r["Type"] == type_}


def check_set_aside(t: dict) -> None:
    res = t["Resources"]
    types = Counter(r["Type"] for r in res.values())
    # Alarms: each mails the alarm topic and watches something of this stack.
    alarms = of_type(t, "AWS::CloudWatch::Alarm")
    check(len(alarms) == 9, f"9 alarms expected, found {len(alarms)}")
    for name, a in alarms.items():
        p = a["Properties"]
        check(p.get("AlarmActions") == [{"Ref": "AlarmTopic"}], f"{name}: AlarmActions is not [AlarmTopic]")
        dims = p.get("Dimensions", [])
        check(len(dims) == 1, f"{name}: one dimension expected")
        for d in dims:
            watched = set(refs(d["Value"]))
            check(bool(watched) and watched <= set(res), f"{name}: watches {d['Value']}, not a resource of the stack")
            check(
                (d["Name"] == "FunctionName" and all(res[w]["Type"] == "AWS::Lambda::Function" for w in watched))
                or (d["Name"] == "QueueName" and all(res[w]["Type"] == "AWS::SQS::Queue" for w in watched)),
                f"{name}: dimension {d['Name']} does not match what it names",
            )
        check(p.get("TreatMissingData") == "notBreaching", f"{name}: missing data should not alarm")
    # Function URLs: the issuer's and the API's, verified in code (no IAM auth), each with the
    # permission that lets anyone invoke the URL.
    urls = of_type(t, "AWS::Lambda::Url")
    check(set(urls) == {"IssuerFunctionUrl", "ApiFunctionUrl"}, f"function URLs: {sorted(urls)}")
    for name, u in urls.items():
        check(u["Properties"].get("AuthType") == "NONE", f"{name}: AuthType")
        fn = u["Properties"]["TargetFunctionArn"]["Ref"]
        perms = [
            r
            for r in of_type(t, "AWS::Lambda::Permission").values()
            if r["Properties"].get("FunctionUrlAuthType") == "NONE" and set(refs(r["Properties"]["FunctionName"])) == {fn}
        ]
        check(len(perms) == 1, f"{name}: no public invoke permission for {fn}")
    # SES: the configuration set every send names, its bounces and complaints to the feedback topic.
    sets = of_type(t, "AWS::SES::ConfigurationSet")
    check(list(sets) == ["EmailConfigurationSet"], f"configuration sets: {sorted(sets)}")
    dests = of_type(t, "AWS::SES::ConfigurationSetEventDestination")
    check(len(dests) == 1, "one SES event destination expected")
    for name, d in dests.items():
        p = d["Properties"]
        check(p["ConfigurationSetName"] == {"Ref": "EmailConfigurationSet"}, f"{name}: configuration set")
        ed = p["EventDestination"]
        check(ed.get("Enabled") is True, f"{name}: not enabled")
        check(sorted(ed.get("MatchingEventTypes", [])) == ["bounce", "complaint"], f"{name}: event types")
        check(ed.get("SnsDestination", {}).get("TopicARN") == {"Ref": "EmailFeedbackTopic"}, f"{name}: topic")
    for fn in ["SenderFunction", "SchedulerFunction"]:
        env = res[fn]["Properties"]["Environment"]["Variables"]
        check(env.get("PROMO_SES_CONFIGURATION_SET") == {"Ref": "EmailConfigurationSet"}, f"{fn}: configuration set")
    # SNS: the feedback Lambda subscribed to the feedback topic (and allowed to be invoked by
    # it); the alarm e-mail only under its condition; SES may publish to the feedback topic.
    subs = of_type(t, "AWS::SNS::Subscription")
    lambda_subs = [s for s in subs.values() if s["Properties"].get("Protocol") == "lambda"]
    check(len(lambda_subs) == 1, "one lambda subscription expected")
    for s in lambda_subs:
        check(s["Properties"]["TopicArn"] == {"Ref": "EmailFeedbackTopic"}, "feedback subscription: topic")
        check(set(refs(s["Properties"]["Endpoint"])) == {"FeedbackFunction"}, "feedback subscription: endpoint")
    check(
        subs.get("AlarmEmailSubscription", {}).get("Condition") == "MailsAlarms",
        "the alarm e-mail subscription must exist only with AlarmEmail",
    )
    check(
        any(
            r["Properties"].get("Principal") == "sns.amazonaws.com" and set(refs(r["Properties"]["FunctionName"])) == {"FeedbackFunction"}
            for r in of_type(t, "AWS::Lambda::Permission").values()
        ),
        "SNS may not invoke the feedback function",
    )
    policies = of_type(t, "AWS::SNS::TopicPolicy")
    check(len(policies) == 1, "one topic policy expected")
    for name, p in policies.items():
        check(p["Properties"]["Topics"] == [{"Ref": "EmailFeedbackTopic"}], f"{name}: topics")
        [st] = p["Properties"]["PolicyDocument"]["Statement"]
        check(st["Principal"] == {"Service": "ses.amazonaws.com"} and st["Action"] == "sns:Publish", f"{name}: SES publish")
        check("AWS:SourceAccount" in st.get("Condition", {}).get("StringEquals", {}), f"{name}: not limited to the account")
    # The scheduler: every minute, the scheduler function, no retries.
    schedules = of_type(t, "AWS::Scheduler::Schedule")
    check(len(schedules) == 1, "one schedule expected")
    for name, s in schedules.items():
        p = s["Properties"]
        check(p.get("ScheduleExpression") == "rate(1 minute)", f"{name}: expression")
        check(set(refs(p["Target"]["Arn"])) == {"SchedulerFunction"}, f"{name}: target")
        check(p["Target"].get("RetryPolicy", {}).get("MaximumRetryAttempts") == 0, f"{name}: retries")
        check(set(refs(p["Target"]["RoleArn"])) <= set(res), f"{name}: role")
    check(sum(types[x] for x in SET_ASIDE) == sum(1 for r in res.values() if r["Type"] in SET_ASIDE), "count")


def main() -> int:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    sam = yaml_parse(src.read_text())
    for name in FUNCTIONS:
        fn = sam["Resources"][name]
        check(fn["Type"] == "AWS::Serverless::Function", f"{name} is not a function")
        fn["Properties"]["CodeUri"] = f"s3://promo-rehearsal-artifacts/{name}.zip"
    stage = "staging"
    t = transform(sam, {"Stage": stage}, OfflineLoader())
    known = set(t["Resources"]) | set(t.get("Parameters", {}))
    for name, r in t["Resources"].items():
        for ref in refs(r):
            check(ref in known or ref.startswith("AWS::"), f"{name} refers to {ref}, which the template lacks")
        for dep in [r["DependsOn"]] if isinstance(r.get("DependsOn"), str) else r.get("DependsOn", []):
            check(dep in t["Resources"], f"{name} depends on {dep}, which the template lacks")
    for name, o in t.get("Outputs", {}).items():
        for ref in refs(o):
            check(ref in known or ref.startswith("AWS::"), f"output {name} refers to {ref}, which the template lacks")
    for name in FUNCTIONS:
        p = t["Resources"][name]["Properties"]
        check(p.get("Architectures") == ["arm64"], f"{name}: not arm64 (cargo lambda build --arm64 builds it)")
        check(p.get("Code") == {"S3Bucket": "promo-rehearsal-artifacts", "S3Key": f"{name}.zip"}, f"{name}: code")
    check_set_aside(t)
    (out / "translated.json").write_text(json.dumps(t, indent=1))

    aside = {k for k, r in t["Resources"].items() if r["Type"] in SET_ASIDE}
    rehearsal = json.loads(json.dumps(t))
    for k in aside:
        del rehearsal["Resources"][k]
    rehearsal["Resources"] = placeholders(rehearsal["Resources"], aside)
    dropped = [k for k, o in rehearsal.get("Outputs", {}).items() if set(refs(o)) & aside]
    for k in dropped:
        del rehearsal["Outputs"][k]
    for name, r in rehearsal["Resources"].items():
        left = set(refs(r)) & aside
        check(not left, f"{name} still refers to set-aside {sorted(left)}")
        if "DependsOn" in r:
            deps = [r["DependsOn"]] if isinstance(r["DependsOn"], str) else r["DependsOn"]
            r["DependsOn"] = [d for d in deps if d not in aside]
    (out / "rehearsal.json").write_text(json.dumps(rehearsal, indent=1))
    kept = Counter(r["Type"] for r in rehearsal["Resources"].values())
    (out / "set-aside.json").write_text(
        json.dumps({"resources": sorted(aside), "outputs": sorted(dropped), "kept": dict(kept)}, indent=1)
    )
    if PROBLEMS:
        for p in PROBLEMS:
            print(f"translate: {p}", file=sys.stderr)
        return 1
    print(
        f"translated: {len(t['Resources'])} resources; {len(aside)} set aside and checked here "
        f"({', '.join(sorted({t['Resources'][a]['Type'] for a in aside}))}); outputs dropped: {', '.join(dropped)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
