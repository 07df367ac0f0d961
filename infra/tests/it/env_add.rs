//! Stages that agree, and a CLI that finds its stage: one list of stages (promoctl's `--env`,
//! template.yaml's `Stage`, wrangler.toml's environments); `promoctl env add <stage> --stack
//! <stack>` reads the stack's outputs (CloudFormation DescribeStacks, on the moto stand-in)
//! into the profile file, and `promoctl --env <stage>` then works on that stage's table with no
//! PROMO_TABLE_NAME or queue variables, which still override the profile when set.

use promoctl::stages::STAGES;

#[cfg(feature = "prod")]
fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(feature = "prod")]
fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn the_stages_are_one_list_in_promoctl_the_template_and_wrangler() {
    use clap::ValueEnum;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    // promoctl --env: local and the stages.
    let envs: Vec<String> = promoctl::target::Env::value_variants()
        .iter()
        .filter(|e| e.is_remote())
        .map(|e| e.to_possible_value().unwrap().get_name().to_string())
        .collect();
    assert_eq!(envs, STAGES);
    for e in promoctl::target::Env::value_variants() {
        assert_eq!(
            e.stage().map(str::to_string),
            e.is_remote().then(|| e.to_possible_value().unwrap().get_name().into())
        );
    }
    // template.yaml's Stage parameter.
    let template = std::fs::read_to_string(format!("{root}/template.yaml")).unwrap();
    let stage = template.split("\n  Stage:\n").nth(1).expect("template.yaml has a Stage parameter");
    let allowed = stage.lines().find_map(|l| l.trim().strip_prefix("AllowedValues:")).unwrap();
    let allowed: Vec<&str> =
        allowed.trim().trim_start_matches('[').trim_end_matches(']').split(',').map(str::trim).collect();
    assert_eq!(allowed, STAGES, "template.yaml's Stage");
    assert!(!stage.split("\n  ").next().unwrap().contains("Default:"), "a deploy names its stage: no default");
    // wrangler.toml's environments.
    let wrangler: toml::Table = std::fs::read_to_string(format!("{root}/wrangler.toml")).unwrap().parse().unwrap();
    let mut envs: Vec<&str> = wrangler["env"].as_table().unwrap().keys().map(String::as_str).collect();
    envs.sort_unstable();
    let mut want = STAGES.to_vec();
    want.sort_unstable();
    assert_eq!(envs, want, "wrangler.toml's [env.*]");
    // Every output a profile records is an output of the template.
    let outputs = format!("\n{}", template.split("\nOutputs:\n").nth(1).unwrap());
    for (key, _, _) in promoctl::stages::OUTPUTS {
        assert!(outputs.contains(&format!("\n  {key}:\n")), "template.yaml has no output {key}");
    }
}

/// A stack like the deployed one, as far as promoctl reads it: the table, the queues and
/// their dead-letter queues, and the outputs `env add` records.
#[cfg(feature = "prod")]
fn stack_template(stage: &str) -> String {
    let queue = |name: &str| serde_json::json!({"Type": "AWS::SQS::Queue", "Properties": {"QueueName": name}});
    let url = |id: &str| serde_json::json!({"Value": {"Ref": id}});
    serde_json::json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "PromoTable": {"Type": "AWS::DynamoDB::Table", "Properties": {
                "TableName": promoctl::stages::table_name(stage),
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
            }},
            "PaymentEventsQueue": queue(&format!("promo-{stage}-payment-events")),
            "PaymentEventsDeadLetterQueue": queue(&format!("promo-{stage}-payment-events-dlq")),
            "EmailQueue": queue(&format!("promo-{stage}-email")),
            "EmailDeadLetterQueue": queue(&format!("promo-{stage}-email-dlq")),
        },
        "Outputs": {
            "PromoTableName": url("PromoTable"),
            "PaymentEventsQueueUrl": url("PaymentEventsQueue"),
            "PaymentEventsDeadLetterQueueUrl": url("PaymentEventsDeadLetterQueue"),
            "EmailQueueUrl": url("EmailQueue"),
            "EmailDeadLetterQueueUrl": url("EmailDeadLetterQueue"),
            "PublicUrl": {"Value": "https://promo-staging.shop.example"},
            "CloudflareAccountId": {"Value": "acct-staging"},
            "CloudflareKvNamespaceId": {"Value": "ns-staging"},
        }
    })
    .to_string()
}

#[cfg(feature = "prod")]
async fn create_stack(endpoint: &str, stack: &str, body: String) {
    let config = promo_lambdas::dynamodb::sdk_config(Some(endpoint)).await;
    let cfn = aws_sdk_cloudformation::Client::new(&config);
    cfn.create_stack().stack_name(stack).template_body(body).send().await.unwrap();
    for _ in 0..100 {
        let got = cfn.describe_stacks().stack_name(stack).send().await.unwrap();
        let status = got.stacks()[0].stack_status().unwrap().as_str().to_string();
        if status == "CREATE_COMPLETE" {
            return;
        }
        assert!(status.ends_with("IN_PROGRESS"), "stack {stack}: {status}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("stack {stack} did not complete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto stand-in (CloudFormation, DynamoDB, SQS): infra/test.sh runs it with --include-ignored"]
async fn env_add_records_a_stacks_outputs_and_env_stage_then_works_on_its_table() {
    #[cfg(not(feature = "prod"))]
    panic!("this test runs promoctl env add: run it with `--features prod` (infra/test.sh does)");
    #[cfg(feature = "prod")]
    {
        let endpoint = std::env::var("PROMO_TEST_DYNAMODB_ENDPOINT")
            .expect("PROMO_TEST_DYNAMODB_ENDPOINT is not set: run infra/test.sh (or source its env file)");
        // A stage of its own on the shared stand-in: the stack's resources are named by it.
        let stage = "staging";
        let suffix = uuid::Uuid::now_v7().simple().to_string();
        let stack = format!("promo-env-add-{suffix}");
        let body = stack_template(stage).replace("promo-staging", &format!("promo-staging-{suffix}"));
        create_stack(&endpoint, &stack, body).await;
        let table = format!("promo-staging-{suffix}");

        let dir = tempfile::tempdir().unwrap();
        let stages_file = dir.path().join("config/promoctl/stages.toml");
        let (kv, seen) = promo_conformance::cloudflare_kv::serve().await;
        let promoctl = |args: &[&str]| {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_promoctl"));
            cmd.args(args)
                .env("PROMO_STAGES_FILE", &stages_file)
                .env("PROMO_CLOUDFORMATION_ENDPOINT", &endpoint)
                .env("PROMO_DYNAMODB_ENDPOINT", &endpoint)
                .env("PROMO_SQS_ENDPOINT", &endpoint)
                .env("PROMO_CF_API_BASE", &kv)
                .env("PROMO_CF_API_TOKEN", "cf-token")
                .env("PROMO_OPERATOR", "mina")
                .env("PROMO_DATA_DIR", dir.path().join("no-local-store"))
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("AWS_REGION", "us-east-1")
                .stdin(std::process::Stdio::null());
            for var in [
                "PROMO_ENV",
                "PROMO_TABLE_NAME",
                "PROMO_PAYMENT_QUEUE_URL",
                "PROMO_PAYMENT_DLQ_URL",
                "PROMO_EMAIL_QUEUE_URL",
                "PROMO_EMAIL_DLQ_URL",
                "PROMO_PUBLIC_URL",
                "PROMO_CF_ACCOUNT_ID",
                "PROMO_CF_KV_NAMESPACE_ID",
            ] {
                cmd.env_remove(var);
            }
            cmd
        };

        // Before `env add`, the stage names the command that finds it.
        let before = promoctl(&["--env", "staging", "campaign", "list"]).output().unwrap();
        assert!(!before.status.success());
        assert!(
            text(&before.stderr).contains("promoctl env add staging --stack promo-staging"),
            "{}",
            text(&before.stderr)
        );

        // A stack that is not this project's is refused, naming what it lacks.
        let bare = format!("promo-bare-{suffix}");
        let lone =
            serde_json::json!({"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": bare}}}});
        create_stack(&endpoint, &bare, lone.to_string()).await;
        let refused = promoctl(&["env", "add", "staging", "--stack", &bare]).output().unwrap();
        assert!(!refused.status.success());
        assert!(text(&refused.stderr).contains("PromoTableName"), "{}", text(&refused.stderr));
        assert!(!stages_file.exists(), "a refused stack records nothing");

        let added = ok(promoctl(&["env", "add", "staging", "--stack", &stack]).output().unwrap());
        assert!(added.contains("PROMO_TABLE_NAME") && added.contains(&stack), "{added}");
        let recorded = std::fs::read_to_string(&stages_file).unwrap();
        assert!(recorded.contains(&format!("PROMO_TABLE_NAME = \"{table}\"")), "{recorded}");
        assert!(recorded.contains("region = \"us-east-1\""), "{recorded}");
        assert!(!recorded.contains("cf-token"), "the API token is a secret, never recorded");

        // --env staging: the stage's table, from the profile alone.
        let drop = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/drop.toml");
        let deployed = promoctl(&["--env", "staging", "campaign", "deploy", drop]).output().unwrap();
        assert!(deployed.status.success(), "{}", text(&deployed.stderr));
        assert!(
            text(&deployed.stderr).contains(&format!("promoctl → STAGING: DynamoDB table {table}")),
            "{}",
            text(&deployed.stderr)
        );
        // The KV namespace the stack names (the profile) is the one published to.
        assert!(seen.lock().unwrap().iter().any(|(ns, _, _)| ns == "acct-staging/ns-staging"));
        let listed = ok(promoctl(&["--env", "staging", "campaign", "list"]).output().unwrap());
        assert!(listed.contains("drops"), "{listed}");
        let store = promo_lambdas::dynamodb::DynamoStore::from_env(table.clone(), Some(&endpoint)).await;
        let id = promo_shared::domain::ids::CampaignId::parse("drops").unwrap();
        assert!(promo_shared::campaigns::history(&store, &id).await.unwrap().len() == 1);

        // The stage's dead-letter queues, from the profile too.
        let dlq = ok(promoctl(&["--env", "staging", "dlq", "list", "email"]).output().unwrap());
        assert!(dlq.contains("0 dead letters"), "{dlq}");

        // A variable still overrides the profile.
        let other = promoctl(&["--env", "staging", "campaign", "list"])
            .env("PROMO_TABLE_NAME", format!("no-such-table-{suffix}"))
            .output()
            .unwrap();
        assert!(text(&other.stderr).contains(&format!("no-such-table-{suffix}")), "{}", text(&other.stderr));

        // Another region than the stack's is named, not silently another table.
        let elsewhere =
            promoctl(&["--env", "staging", "campaign", "list"]).env("AWS_REGION", "eu-west-1").output().unwrap();
        assert!(!elsewhere.status.success());
        assert!(text(&elsewhere.stderr).contains("AWS_REGION=us-east-1"), "{}", text(&elsewhere.stderr));

        // Destructive changes on staging ask too.
        let end = promoctl(&["--env", "staging", "campaign", "end", "drops"]).output().unwrap();
        assert!(!end.status.success());
        assert!(
            text(&end.stderr).contains("on staging") && text(&end.stderr).contains("--yes"),
            "{}",
            text(&end.stderr)
        );

        let shown = ok(promoctl(&["env", "show"]).output().unwrap());
        assert!(shown.contains(&format!("staging: stack {stack}")), "{shown}");
    }
}
