//! `promoctl token --user U`: a shopper bearer token.

use clap::Args;
use promo_shared::domain::ids::UserId;
use promo_shared::ports::clock::Clock;
use promoctl::config;
use promoctl::embedded::SystemClock;

#[derive(Args)]
pub struct Token {
    /// The shopper's user id (the token's `sub`).
    #[arg(long)]
    user: String,
    /// How long the token is valid.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u32).range(1..=31_536_000))]
    ttl_seconds: u32,
}

impl Token {
    pub fn run(self) -> anyhow::Result<()> {
        let user = UserId::parse(self.user)?;
        let (auth, dev) = config::shopper_auth(true)?;
        if dev {
            eprintln!("note: PROMO_SHOPPER_JWT_SECRET is unset; signing with the development secret");
        }
        let ttl = chrono::Duration::seconds(i64::from(self.ttl_seconds));
        println!("{}", auth.mint(&user, SystemClock.now(), ttl));
        Ok(())
    }
}
