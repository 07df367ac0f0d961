//! Limited events over HTTP, through the local runtime (the same handlers as the Worker and
//! the API Lambda): a campaign file's `[[events]]` deployed, the public event view, shoppers
//! reserving until the places run out and then waiting, cancelling (the next in line is
//! promoted at once), idempotent retries, a payment carrying the reservation, the tick's
//! expiry and promotion with its notice in the outbox; bad requests get clear 4xx answers and
//! write nothing.

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use promo_shared::campaigns;
use promo_shared::domain::audience::Member;
use promo_shared::domain::email::EmailAddress;
use promo_shared::domain::ids::{ReservationId, UserId};
use promo_shared::ports::clock::{Clock, ManualClock};
use promo_shared::testing::{at, paid_event};
use promoctl::campaign_file;
use promoctl::runtime::{Platform, Running};
use serde_json::Value;
use support::items;

const CAMPAIGN: &str = r#"
id = "drops"
name = "Drops"
currency = "KRW"
starts_at = "2026-11-01T00:00:00Z"
ends_at = "2026-12-01T00:00:00Z"

[[events]]
id = "signed-100"
name = "Signed edition"
starts_at = "2026-11-20T10:00:00Z"
ends_at = "2026-11-20T12:00:00Z"
stock = 2
hold = "60s"
price = 50000
"#;

async fn boot(dir: &Path, clock: Arc<ManualClock>) -> (Arc<Platform>, Running) {
    let platform = support::shoppers_platform(dir, clock);
    let running = support::serve(platform.clone(), Duration::from_secs(3600), 0).await;
    (platform, running)
}

fn token(user: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    support::shopper_token(user, now)
}

async fn call(
    method: &str,
    url: String,
    token: Option<&str>,
    key: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.json().await.unwrap_or(Value::Null), headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shoppers_reserve_wait_cancel_pay_and_are_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-20T09:00:00Z")));
    let (platform, running) = boot(dir.path(), clock.clone()).await;
    let campaign = campaign_file::check(CAMPAIGN, Path::new("drops.toml"), clock.now()).unwrap();
    campaigns::deploy(&*platform.store, &*clock, &campaign).await.unwrap();
    let carol_email = EmailAddress::parse("carol@example.com").unwrap();
    support::put_members(
        &*platform.store,
        [Member {
            user_id: UserId::parse("carol").unwrap(),
            email: carol_email,
            opted_in: false,
            attributes: [].into(),
        }],
    )
    .await;
    let base = format!("http://{}", running.addr);
    let event_url = format!("{base}/v1/events/signed-100");
    let reserve_url = format!("{event_url}/reservations");
    let who = |u: &str| token(u, clock.now());

    // Before the opening: the view says INACTIVE, a reservation is refused and writes nothing.
    let (status, view, headers) = call("GET", event_url.clone(), None, None).await;
    assert_eq!((status, view["status"].as_str()), (200, Some("INACTIVE")), "{view}");
    assert_eq!(headers["cache-control"], "public, max-age=1");
    let before = items(dir.path());
    let (status, err, _) = call("POST", reserve_url.clone(), Some(&who("alice")), None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("event_not_active")), "{err}");
    assert_eq!(items(dir.path()), before, "a refused reservation writes nothing");

    clock.set(at("2026-11-20T10:00:00Z"));
    let (status, alice, _) = call("POST", reserve_url.clone(), Some(&who("alice")), Some("k-1")).await;
    assert_eq!((status, alice["status"].as_str()), (201, Some("RESERVED")), "{alice}");
    assert_eq!(alice["hold_until"], "2026-11-20T10:01:00Z");
    // The client's retry with the same key: the same reservation, not a second one.
    let (status, again, headers) = call("POST", reserve_url.clone(), Some(&who("alice")), Some("k-1")).await;
    assert_eq!((status, &again), (201, &alice));
    assert_eq!(headers["idempotent-replayed"], "true");
    // Without the key, a second reservation by the same shopper is refused.
    let (status, err, _) = call("POST", reserve_url.clone(), Some(&who("alice")), None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("already_reserved")), "{err}");
    let (status, bob, _) = call("POST", reserve_url.clone(), Some(&who("bob")), None).await;
    assert_eq!(status, 201, "{bob}");
    let (status, carol, _) = call("POST", reserve_url.clone(), Some(&who("carol")), None).await;
    assert_eq!((status, carol["status"].as_str(), carol["position"].as_i64()), (202, Some("WAITING"), Some(1)));
    let (status, dave, _) = call("POST", reserve_url.clone(), Some(&who("dave")), None).await;
    assert_eq!((status, dave["position"].as_i64()), (202, Some(2)));

    // The public view counts them.
    let (_, view, _) = call("GET", event_url.clone(), None, None).await;
    assert_eq!(
        (view["status"].as_str(), view["reserved"].as_i64(), view["available"].as_i64(), view["waiting"].as_i64()),
        (Some("ACTIVE"), Some(2), Some(0), Some(2)),
        "{view}"
    );

    // Bad requests: clear 4xx answers, nothing written.
    let before = items(dir.path());
    let bob_rid = bob["reservation_id"].as_str().unwrap();
    let cases = [
        ("DELETE", format!("{reserve_url}/{bob_rid}"), Some(who("alice")), 404, "reservation_not_found"),
        ("DELETE", format!("{reserve_url}/nope"), Some(who("bob")), 404, "reservation_not_found"),
        ("DELETE", format!("{reserve_url}/bad%20id"), Some(who("bob")), 400, "invalid_id"),
        ("POST", format!("{base}/v1/events/no-such/reservations"), Some(who("erin")), 404, "event_not_found"),
        ("POST", format!("{base}/v1/events/bad%20id/reservations"), Some(who("erin")), 400, "invalid_id"),
        ("POST", reserve_url.clone(), None, 401, "unauthorized"),
        ("GET", format!("{base}/v1/users/bob/reservations"), Some(who("alice")), 403, "forbidden"),
        ("GET", format!("{base}/v1/events/no-such"), None, 404, "event_not_found"),
    ];
    for (method, url, token, want, code) in cases {
        let (status, err, _) = call(method, url.clone(), token.as_deref(), None).await;
        assert_eq!((status, err["error"]["code"].as_str()), (want, Some(code)), "{method} {url}: {err}");
    }
    assert_eq!(items(dir.path()), before, "the refused requests wrote nothing");

    // Bob cancels: carol, first in line, holds his place at once (no tick).
    let (status, cancelled, _) = call("DELETE", format!("{reserve_url}/{bob_rid}"), Some(&who("bob")), None).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("CANCELLED")), "{cancelled}");
    let (status, mine, _) = call("GET", format!("{base}/v1/users/carol/reservations"), Some(&who("carol")), None).await;
    assert_eq!(status, 200);
    assert_eq!(mine["reservations"][0]["status"], "RESERVED", "{mine}");
    assert_eq!(mine["reservations"][0]["hold_until"], "2026-11-20T10:01:00Z");

    // Alice pays in time: the payment carries her reservation.
    let mut paid = paid_event("pay-alice", 50_000, "2026-11-20T10:00:30Z");
    paid.user_id = UserId::parse("alice").unwrap();
    paid.reservation_id = Some(ReservationId::parse(alice["reservation_id"].as_str().unwrap()).unwrap());
    let outcome = platform.issuer.handle_payment(&paid).await.unwrap();
    assert_eq!(outcome.reservation.unwrap().outcome, "confirmed");

    // Carol does not pay: the tick after her deadline promotes dave and mails him nothing
    // (no address known); carol's promotion notice went out at the first tick.
    let report = platform.tick_events().await.unwrap();
    assert_eq!(report.notified, 1, "carol's promotion notice: {report:?}");
    let outbox = support::outbox_by_address(&dir.path().join("outbox"));
    assert_eq!(outbox.get("carol@example.com"), Some(&1), "{outbox:?}");
    clock.set(at("2026-11-20T10:01:00Z"));
    let report = platform.tick_events().await.unwrap();
    assert_eq!((report.expired, report.promoted), (1, 1), "{report:?}");
    let (_, mine, _) = call("GET", format!("{base}/v1/users/dave/reservations"), Some(&who("dave")), None).await;
    assert_eq!(mine["reservations"][0]["status"], "RESERVED", "{mine}");
    let (_, view, _) = call("GET", event_url.clone(), None, None).await;
    assert_eq!(
        (view["confirmed"].as_i64(), view["reserved"].as_i64(), view["waiting"].as_i64()),
        (Some(1), Some(1), Some(0))
    );
    running.shutdown().await.unwrap();
}

/// A limited event's notices never go to an address on the suppression list (it unsubscribed,
/// bounced or complained); the others are mailed as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notices_skip_suppressed_addresses() {
    use promo_shared::email::items::suppression::{self, Reason, Suppression};
    use promo_shared::ports::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-20T10:00:00Z")));
    let (platform, running) = boot(dir.path(), clock.clone()).await;
    let campaign =
        campaign_file::check(&CAMPAIGN.replace("stock = 2", "stock = 1"), Path::new("drops.toml"), clock.now())
            .unwrap();
    campaigns::deploy(&*platform.store, &*clock, &campaign).await.unwrap();
    let member = |user: &str| Member {
        user_id: UserId::parse(user).unwrap(),
        email: EmailAddress::parse(&format!("{user}@example.com")).unwrap(),
        opted_in: true,
        attributes: [].into(),
    };
    support::put_members(&*platform.store, [member("carol"), member("erin")]).await;
    let gone = Suppression { reason: Reason::Unsubscribed, at: clock.now(), campaign_id: None, user_id: None };
    platform.store.put(suppression::to_item(&member("carol").email, &gone).unwrap(), None).await.unwrap();
    let reserve_url = format!("http://{}/v1/events/signed-100/reservations", running.addr);
    let who = |u: &str| token(u, clock.now());
    let (_, alice, _) = call("POST", reserve_url.clone(), Some(&who("alice")), None).await;
    let (_, carol, _) = call("POST", reserve_url.clone(), Some(&who("carol")), None).await;
    let (status, _, _) = call("POST", reserve_url.clone(), Some(&who("erin")), None).await;
    assert_eq!(status, 202);
    // Alice cancels: carol is promoted, but her address unsubscribed.
    let alice_url = format!("{reserve_url}/{}", alice["reservation_id"].as_str().unwrap());
    assert_eq!(call("DELETE", alice_url, Some(&who("alice")), None).await.0, 200);
    let report = platform.tick_events().await.unwrap();
    assert_eq!((report.notified, report.suppressed), (0, 1), "{report:?}");
    // Carol cancels: erin is promoted and mailed.
    let carol_url = format!("{reserve_url}/{}", carol["reservation_id"].as_str().unwrap());
    assert_eq!(call("DELETE", carol_url, Some(&who("carol")), None).await.0, 200);
    let report = platform.tick_events().await.unwrap();
    assert_eq!((report.notified, report.suppressed), (1, 0), "{report:?}");
    let outbox = support::outbox_by_address(&dir.path().join("outbox"));
    assert_eq!(outbox.get("carol@example.com"), None, "{outbox:?}");
    assert_eq!(outbox.get("erin@example.com"), Some(&1), "{outbox:?}");
    running.shutdown().await.unwrap();
}
