//! SES's event publishing (a configuration set's event destination, through SNS): bounce and
//! complaint events parsed into the core's [`Feedback`]. The campaign comes back in the
//! message tag `campaign` the sender set on every bulk send.

use chrono::{DateTime, Utc};
use promo_shared::domain::email::EmailAddress;
use promo_shared::domain::ids::CampaignId;
use promo_shared::email::feedback::Feedback;
use promo_shared::email::items::suppression::Reason;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    event_type: Option<String>,
    /// SES notifications (not event publishing) name it `notificationType`.
    notification_type: Option<String>,
    bounce: Option<Bounce>,
    complaint: Option<Complaint>,
    mail: Option<Mail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: Option<String>,
    feedback_id: Option<String>,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    feedback_id: Option<String>,
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
}

#[derive(Deserialize)]
struct Mail {
    #[serde(default)]
    tags: std::collections::BTreeMap<String, Vec<String>>,
}

/// What an SES event means here, if anything: `Ok(None)` for event types other than bounces
/// and complaints (deliveries, opens), `Err` for a message that is not an SES event.
pub fn parse(message: &str, now: DateTime<Utc>) -> Result<Option<Feedback>, String> {
    let e: Event = serde_json::from_str(message).map_err(|e| format!("not an SES event: {e}"))?;
    let kind = e.event_type.or(e.notification_type).unwrap_or_default();
    let campaign = e
        .mail
        .as_ref()
        .and_then(|m| m.tags.get("campaign"))
        .and_then(|v| v.first())
        .and_then(|c| CampaignId::parse(c.as_str()).ok());
    let addresses = |rs: &[Recipient]| rs.iter().filter_map(|r| EmailAddress::parse(&r.email_address).ok()).collect();
    match kind.as_str() {
        "Bounce" => {
            let b = e.bounce.ok_or("a Bounce event without `bounce`")?;
            Ok(Some(Feedback {
                kind: Reason::Bounced,
                permanent: b.bounce_type.as_deref() == Some("Permanent"),
                recipients: addresses(&b.bounced_recipients),
                campaign,
                at: b.timestamp.unwrap_or(now),
                id: b.feedback_id,
            }))
        }
        "Complaint" => {
            let c = e.complaint.ok_or("a Complaint event without `complaint`")?;
            Ok(Some(Feedback {
                kind: Reason::Complained,
                permanent: true,
                recipients: addresses(&c.complained_recipients),
                campaign,
                at: c.timestamp.unwrap_or(now),
                id: c.feedback_id,
            }))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounces_and_complaints_name_their_recipients_and_campaign() {
        let now = Utc::now();
        let bounce = r#"{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","feedbackId":"fb-1",
            "bouncedRecipients":[{"emailAddress":"gone@example.com","status":"5.1.1"}],"timestamp":"2026-12-04T10:00:00Z"},
            "mail":{"timestamp":"2026-12-04T09:59:59Z","tags":{"campaign":["bf-2026"],"ses:configuration-set":["promo"]}}}"#;
        let f = parse(bounce, now).unwrap().unwrap();
        assert_eq!((f.kind, f.permanent), (Reason::Bounced, true));
        assert_eq!(f.recipients[0].expose(), "gone@example.com");
        assert_eq!(f.campaign.unwrap().as_str(), "bf-2026");
        assert_eq!(f.id.as_deref(), Some("fb-1"), "SES's feedback id names the event");
        let transient = bounce.replace("\"Permanent\"", "\"Transient\"");
        assert!(!parse(&transient, now).unwrap().unwrap().permanent);
        let complaint = r#"{"notificationType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"angry@example.com"}]},"mail":{}}"#;
        let f = parse(complaint, now).unwrap().unwrap();
        assert_eq!((f.kind, f.campaign, f.at), (Reason::Complained, None, now));
        assert_eq!(parse(r#"{"eventType":"Delivery","mail":{}}"#, now).unwrap(), None);
        assert!(parse("not json", now).is_err());
    }
}
