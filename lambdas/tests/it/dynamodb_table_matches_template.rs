//! The table the tests create (`create_table`) is the table `template.yaml` deploys: keys,
//! attribute types, the (absent) secondary indexes, billing mode and the TTL attribute, read back from a
//! DynamoDB-compatible server and compared with the template as CloudFormation reads it
//! (cfn-lint's decoder, from the tools venv `infra/test.sh` puts first on PATH).

use crate::support;

use promo_lambdas::dynamodb::DynamoStore;

use promo_lambdas::dynamodb::create_table;
use serde_json::{Value, json};

/// `template.yaml`'s `PromoTable` properties, as JSON.
fn template_table() -> Value {
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let script = "import json, sys\nfrom cfnlint.decode import decode\nt, errors = decode(sys.argv[1])\n\
                  assert not errors, errors\nprint(json.dumps(t['Resources']['PromoTable']['Properties'], default=str))";
    let out = std::process::Command::new("python3").args(["-c", script, template]).output().unwrap_or_else(|e| {
        panic!("python3 with cfn-lint (infra/test.sh installs it in its tools venv) could not run: {e}")
    });
    assert!(out.status.success(), "decoding template.yaml: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|x| x.to_string());
    v
}

#[tokio::test]
#[ignore = "needs services: run infra/test.sh"]
async fn the_tests_table_is_the_templates_table() {
    let expected = template_table();
    let endpoint = support::endpoint();
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let name = format!("promo-template-{}-{nanos}", std::process::id());
    let store = DynamoStore::from_env(name.clone(), Some(&endpoint)).await;
    create_table(store.client(), &name).await.unwrap();
    let client = store.client();
    let table = client.describe_table().table_name(&name).send().await.unwrap().table.unwrap();

    let keys = |k: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Vec<Value> {
        k.iter().map(|e| json!({"AttributeName": e.attribute_name(), "KeyType": e.key_type().as_str()})).collect()
    };
    assert_eq!(keys(table.key_schema()), expected["KeySchema"].as_array().unwrap().clone(), "key schema");
    let attributes: Vec<Value> = table
        .attribute_definitions()
        .iter()
        .map(|a| json!({"AttributeName": a.attribute_name(), "AttributeType": a.attribute_type().as_str()}))
        .collect();
    assert_eq!(sorted(attributes), sorted(expected["AttributeDefinitions"].as_array().unwrap().clone()));
    let indexes: Vec<Value> = table
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            json!({
                "IndexName": g.index_name(),
                "KeySchema": keys(g.key_schema()),
                "Projection": {"ProjectionType": g.projection().and_then(|p| p.projection_type()).map(|t| t.as_str())},
            })
        })
        .collect();
    let declared = expected.get("GlobalSecondaryIndexes").and_then(Value::as_array).cloned().unwrap_or_default();
    assert_eq!(sorted(indexes), sorted(declared), "GSIs (none: every access is by key or partition)");
    let billing = table.billing_mode_summary().and_then(|b| b.billing_mode()).map(|b| b.as_str());
    assert_eq!(billing, expected["BillingMode"].as_str(), "billing mode");

    let ttl = client.describe_time_to_live().table_name(&name).send().await.unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), expected["TimeToLiveSpecification"]["AttributeName"].as_str(), "TTL attribute");
    assert_eq!(expected["TimeToLiveSpecification"]["Enabled"], json!(true));
    let _ = client.delete_table().table_name(&name).send().await;
}
