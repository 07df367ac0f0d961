//! `promoctl campaign preview ID --to ADDRESS` and `campaign test-send ID --to A,B`: a
//! deployed campaign's email as one recipient gets it (the same entry, template and renderer
//! as the send: the message printed with its headers), and a send of it to a seed list that
//! leaves the campaign's delivery records and counts alone.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use clap::Args;
use promo_shared::campaigns;
use promo_shared::domain::audience::Member;
use promo_shared::domain::campaign::Campaign;
use promo_shared::domain::email::EmailAddress;
use promo_shared::domain::ids::{CampaignId, UserId};
use promo_shared::email::items::audience;
use promo_shared::email::send::{self as email_send, Recipient};
use promo_shared::email::sender::{Ctx, campaign_tag, recipient_entry};
use promo_shared::ports::clock::Clock;
use promo_shared::ports::mail::{BulkEntry, BulkMailer};
use promo_shared::ports::store::Store;
use promoctl::config;
use promoctl::embedded::{OutboxMailer, SystemClock};
use promoctl::target::{Env, Target};

use crate::commands::TargetArgs;

#[derive(Args)]
pub struct Preview {
    /// The campaign's id.
    id: String,
    /// The address the preview is addressed to.
    #[arg(long, value_name = "ADDRESS")]
    to: String,
    /// Take the attributes of this audience member (`promoctl audience import`).
    #[arg(long, value_name = "USER_ID")]
    user: Option<String>,
    /// An attribute's value (`--attr first_name=지수`), over the member's; may repeat.
    #[arg(long = "attr", value_name = "NAME=VALUE")]
    attrs: Vec<String>,
}

#[derive(Args)]
pub struct TestSend {
    /// The campaign's id.
    id: String,
    /// The seed list: comma-separated addresses.
    #[arg(long, value_name = "ADDRESSES", value_delimiter = ',', required = true)]
    to: Vec<String>,
    /// An attribute's value for every seed (`--attr first_name=Test`); may repeat.
    #[arg(long = "attr", value_name = "NAME=VALUE")]
    attrs: Vec<String>,
}

/// The deployed campaign `id`, which must have an `[email]` section.
async fn campaign_with_email(store: &dyn Store, id: &CampaignId, target: &Target) -> anyhow::Result<Campaign> {
    let c = campaigns::get(store, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("campaign `{id}` is not deployed on the {}", target.description))?;
    anyhow::ensure!(c.email.is_some(), "campaign `{id}` has no [email] section");
    Ok(c)
}

/// `NAME=VALUE` pairs.
fn attributes(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|p| {
            let (k, v) = p.split_once('=').with_context(|| format!("`{p}` is not NAME=VALUE"))?;
            anyhow::ensure!(!promo_shared::domain::address::has_control(v), "`{k}`: a value is one line");
            Ok((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// The entry of `member` for `campaign`, as the sender builds it.
fn entry(campaign: &Campaign, member: &Member, template: &str, env: Env) -> anyhow::Result<BulkEntry> {
    let spec = campaign.email.as_ref().context("no [email] section")?;
    let settings = config::email_settings(env == Env::Local)?;
    let ctx = Ctx { id: &campaign.id, email: spec, campaign_name: &campaign.name, template };
    let r =
        Recipient { user_id: member.user_id.clone(), email: member.email.clone(), data: spec.template_data(member) };
    Ok(recipient_entry(&settings.keys, &settings.unsubscribe_url, &ctx, &r, SystemClock.now()))
}

/// Puts the campaign's template as `name` and sends `entries` with it.
async fn send(
    mailer: &dyn BulkMailer,
    campaign: &Campaign,
    name: &str,
    entries: &[BulkEntry],
) -> anyhow::Result<Vec<Result<String, promo_shared::ports::mail::MailError>>> {
    let spec = campaign.email.as_ref().context("no [email] section")?;
    mailer.put_template(&email_send::template(name, spec)).await.context("storing the template")?;
    Ok(mailer.send_bulk(&spec.from, name, entries, &[campaign_tag(&campaign.id)]).await?)
}

impl Preview {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let id = CampaignId::parse(&self.id)?;
        let to = EmailAddress::parse(&self.to).map_err(|e| anyhow::anyhow!("--to: {}", e.message))?;
        let target = target.open().await?;
        let store = &*target.store;
        let campaign = campaign_with_email(store, &id, &target).await?;
        let mut member = match &self.user {
            Some(u) => {
                let user = UserId::parse(u)?;
                let item = store
                    .get(&audience::key(&user))
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("`{user}` is not in the audience (promoctl audience import)"))?;
                audience::from_item(&item)?
            }
            None => Member {
                user_id: UserId::parse("preview")?,
                email: to.clone(),
                opted_in: true,
                attributes: BTreeMap::new(),
            },
        };
        member.email = to;
        member.attributes.extend(attributes(&self.attrs)?);
        // The outbox renderer writes the message as the recipient's mail client gets it.
        let dir = tempfile::tempdir()?;
        let outbox = OutboxMailer::open(dir.path())?;
        let name = "preview";
        let entry = entry(&campaign, &member, name, target.env)?;
        let sent = send(&outbox, &campaign, name, &[entry]).await?;
        if let Some(Err(e)) = sent.first() {
            bail!("the email does not render: {e}");
        }
        for file in std::fs::read_dir(dir.path())? {
            let path = file?.path();
            if path.extension().is_some_and(|e| e == "eml") {
                print!("{}", std::fs::read_to_string(&path)?);
            }
        }
        Ok(())
    }
}

impl TestSend {
    pub async fn run(self, target: &TargetArgs) -> anyhow::Result<()> {
        let id = CampaignId::parse(&self.id)?;
        let target = target.open().await?;
        let campaign = campaign_with_email(&*target.store, &id, &target).await?;
        let attrs = attributes(&self.attrs)?;
        let name = format!("{}-test", email_send::template_name(&id, 0).trim_end_matches("-v0"));
        let mut entries = Vec::new();
        for (n, a) in self.to.iter().enumerate() {
            let email = EmailAddress::parse(a.trim()).map_err(|e| anyhow::anyhow!("--to: {}", e.message))?;
            let member = Member {
                user_id: UserId::parse(format!("test-send-{}", n + 1))?,
                email,
                opted_in: true,
                attributes: attrs.clone(),
            };
            entries.push(entry(&campaign, &member, &name, target.env)?);
        }
        let ports = target.email().await?;
        let results = send(&*ports.mailer, &campaign, &name, &entries).await?;
        let mut failed = 0;
        for (e, r) in entries.iter().zip(&results) {
            match r {
                Ok(message) => println!("sent to {} ({message})", e.to.expose()),
                Err(err) => {
                    failed += 1;
                    println!("NOT sent to {}: {err}", e.to.expose());
                }
            }
        }
        println!("test send of campaign `{id}`: its delivery records and counts are untouched");
        anyhow::ensure!(failed == 0, "{failed} of {} test messages were not sent", entries.len());
        Ok(())
    }
}
