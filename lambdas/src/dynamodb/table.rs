//! The table as `template.yaml` declares it, for tests and local setups.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
    TimeToLiveStatus,
};
use promo_shared::ports::store::{StoreError, TTL_ATTRIBUTE};

use super::errors::{classify, invalid};

/// Creates the table as `template.yaml` declares it — `pk`/`sk` string keys, on-demand
/// billing — waits until it is active and
/// enables TTL on `expires_at`. An existing table is left as it is (TTL is still enabled).
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let attr = |n: &str| {
        AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build().map_err(invalid)
    };
    let key = |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build().map_err(invalid);
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => {}
        Err(e) => return Err(classify(e)),
    }
    use aws_sdk_dynamodb::client::Waiters;
    client.wait_until_table_exists().table_name(name).wait(Duration::from_secs(300)).await.map_err(|e| {
        StoreError::Unavailable(format!("table {name} did not become active: {}", DisplayErrorContext(e)))
    })?;
    let ttl = client.describe_time_to_live().table_name(name).send().await.map_err(classify)?;
    let enabled = ttl.time_to_live_description().is_some_and(|d| {
        d.attribute_name() == Some(TTL_ATTRIBUTE)
            && matches!(d.time_to_live_status(), Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling))
    });
    if !enabled {
        let spec =
            TimeToLiveSpecification::builder().attribute_name(TTL_ATTRIBUTE).enabled(true).build().map_err(invalid)?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(classify)?;
    }
    Ok(())
}
