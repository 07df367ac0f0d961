//! `promoctl event list|show|cancel`: the limited events of the deployed campaigns, on the
//! target chosen with `--env`.

use anyhow::Context;
use clap::{Args, Subcommand};
use promo_shared::campaigns;
use promo_shared::domain::ids::EventId;
use promo_shared::events::Events;
use promo_shared::events::items::{self as ev, EventState};
use promo_shared::ports::store::{ItemExt, Store, query_all};
use promoctl::config;
use promoctl::embedded::SystemClock;
use serde_json::{Value, json};

use crate::commands::{Confirm, TargetArgs, rfc3339};

#[derive(Subcommand)]
pub enum EventCommand {
    /// Every limited event: status now, places reserved, confirmed and available, waiting.
    List(List),
    /// One event: its definition, places, waitlist and the payments to refund.
    Show(Show),
    /// Every payment to refund: those that took no place (short, another currency, after the
    /// hold or the end, for a cancelled event) and those for a reservation nobody has.
    Refunds(List),
    /// Cancel an event (INACTIVE or ACTIVE): no more reservations; those waiting are told;
    /// paid places stay paid (refund them).
    Cancel(CancelEvent),
}

impl EventCommand {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        match self {
            EventCommand::List(c) => c.run(target).await,
            EventCommand::Show(c) => c.run(target).await,
            EventCommand::Refunds(c) => c.refunds(target).await,
            EventCommand::Cancel(c) => c.cancel(target).await,
        }
    }
}

#[derive(Args)]
pub struct List {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// An event as it stands now (its due transition applied, as every read does).
async fn current(store: &dyn Store, id: &EventId) -> anyhow::Result<EventState> {
    let ids = promoctl::embedded::OsIds;
    Events::new(store, &SystemClock, &ids).get(id).await.with_context(|| format!("event `{id}`"))
}

impl List {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let target = target.open().await?;
        let store: &dyn Store = &*target.store;
        let mut states = Vec::new();
        for c in campaigns::list(store).await? {
            for e in &c.events {
                states.push(current(store, &e.id).await?);
            }
        }
        if self.json {
            let out: Vec<Value> = states.iter().map(EventState::view).collect();
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(());
        }
        println!(
            "{:<24} {:<10} {:<26} {:<26} {:>6} {:>8} {:>9} {:>9} {:>7}  NAME",
            "ID", "STATUS", "STARTS", "ENDS", "STOCK", "RESERVED", "CONFIRMED", "AVAILABLE", "WAITING"
        );
        for e in &states {
            let v = e.view();
            println!(
                "{:<24} {:<10} {:<26} {:<26} {:>6} {:>8} {:>9} {:>9} {:>7}  {}",
                e.id().as_str(),
                e.status.as_str(),
                rfc3339(e.spec.starts_at),
                rfc3339(e.spec.ends_at),
                e.stock(),
                v["reserved"],
                e.confirmed,
                v["available"],
                e.waiting.max(0),
                e.spec.name
            );
        }
        Ok(())
    }
}

/// A refund report as printed: the payment, its reservation, why, and whether the provider
/// already refunded it (the place it paid for was freed) or it is still to refund.
fn refund_json(r: &promo_shared::ports::store::Item) -> Value {
    let refunded = r.get("refunded").and_then(Value::as_bool).unwrap_or(false);
    json!({
        "payment_id": r.str_attr("sk"),
        "reservation_id": r.str_attr("reservation_id"),
        "reason": r.str_attr("reason"),
        "state": if refunded { "refunded" } else { "to_refund" },
    })
}

fn print_refund(r: &Value) {
    let state = if r["state"] == "refunded" { "refunded" } else { "TO REFUND" };
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    println!(
        "    {state:<9}  {} (reservation {}): {}",
        text(&r["payment_id"]),
        text(&r["reservation_id"]),
        text(&r["reason"])
    );
}

impl List {
    async fn refunds(self, target: &TargetArgs) -> anyhow::Result<()> {
        let target = target.open().await?;
        let store: &dyn Store = &*target.store;
        let mut by_event = serde_json::Map::new();
        for c in campaigns::list(store).await? {
            for e in &c.events {
                let rs: Vec<Value> = query_all(store, ev::refunds(&e.id)).await?.iter().map(refund_json).collect();
                if !rs.is_empty() {
                    by_event.insert(e.id.to_string(), json!(rs));
                }
            }
        }
        let unmatched: Vec<Value> = query_all(store, ev::unmatched_refunds()).await?.iter().map(refund_json).collect();
        if self.json {
            println!("{}", serde_json::to_string_pretty(&json!({"events": by_event, "unmatched": unmatched}))?);
            return Ok(());
        }
        if by_event.is_empty() && unmatched.is_empty() {
            println!("no payments to refund");
        }
        for (event, rs) in &by_event {
            println!("event `{event}`:");
            rs.as_array().into_iter().flatten().for_each(print_refund);
        }
        if !unmatched.is_empty() {
            println!("payments for reservations nobody has:");
            unmatched.iter().for_each(print_refund);
        }
        Ok(())
    }
}

#[derive(Args)]
pub struct CancelEvent {
    #[command(flatten)]
    event: Show,
    #[command(flatten)]
    confirm: Confirm,
}

#[derive(Args)]
pub struct Show {
    /// The event's id.
    id: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl Show {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let id = EventId::parse(&self.id)?;
        let target = target.open().await?;
        let store: &dyn Store = &*target.store;
        let e = current(store, &id).await?;
        let refunds: Vec<Value> = query_all(store, ev::refunds(&id)).await?.iter().map(refund_json).collect();
        let mut view = e.view();
        view["hold"] = json!(e.spec.hold.to_string());
        view["waitlist"] = match e.lines {
            ..=1 => json!({"next_position": e.head, "last_position": e.tail, "closed": e.waitlist_closed}),
            lines => json!({"lines": lines, "closed": e.waitlist_closed}),
        };
        view["refunds_due"] = json!(refunds);
        if self.json {
            println!("{}", serde_json::to_string_pretty(&view)?);
            return Ok(());
        }
        println!("event `{id}`: {} ({}), campaign `{}`", e.spec.name, e.status.as_str(), e.campaign);
        println!("  window     {} .. {}", rfc3339(e.spec.starts_at), rfc3339(e.spec.ends_at));
        println!(
            "  price      {} {}   hold {}   per shopper {}",
            e.spec.price.minor(),
            e.currency,
            e.spec.hold,
            e.spec.per_user_limit
        );
        println!(
            "  places     stock {}   reserved {}   confirmed {}   available {}{}",
            e.stock(),
            view["reserved"],
            e.confirmed,
            view["available"],
            if e.sold_out() { "   SOLD OUT" } else { "" }
        );
        let closed = if e.waitlist_closed { "   closed" } else { "" };
        match e.lines {
            ..=1 => {
                println!("  waitlist   {} waiting   next position {} of {}{closed}", e.waiting.max(0), e.head, e.tail)
            }
            lines => println!("  waitlist   {} waiting in {lines} lines{closed}", e.waiting.max(0)),
        }
        if refunds.is_empty() {
            println!("  refunds    none due");
        } else {
            println!("  refunds    {} payment(s):", refunds.len());
            for r in &refunds {
                print_refund(r);
            }
        }
        Ok(())
    }
}

impl CancelEvent {
    async fn cancel(self, target: &TargetArgs) -> anyhow::Result<()> {
        let id = EventId::parse(&self.event.id)?;
        let target = target.open().await?;
        self.confirm.check(target.env, &target.description, &format!("cancel event `{id}`"))?;
        let store: &dyn Store = &*target.store;
        let by = config::operator();
        let ids = promoctl::embedded::OsIds;
        let e = Events::new(store, &SystemClock, &ids)
            .cancel_event(&id, &by)
            .await
            .with_context(|| format!("event `{id}`"))?;
        if self.event.json {
            println!("{}", serde_json::to_string_pretty(&e.view())?);
        } else {
            println!(
                "event `{id}` cancelled by {by}: {} waiting are told by the next tick; {} paid place(s) to refund",
                e.waiting.max(0),
                e.confirmed
            );
        }
        Ok(())
    }
}
