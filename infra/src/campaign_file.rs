//! Campaign files: TOML (`.toml`) or JSON (`.json`), parsed and validated with every
//! problem reported at once.

use std::path::Path;

use anyhow::{Context, bail};
use promo_shared::domain::campaign::Campaign;
use promo_shared::domain::campaign::CampaignSpec;

pub fn load(path: &Path) -> anyhow::Result<Campaign> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text, path)
}

pub fn parse(text: &str, path: &Path) -> anyhow::Result<Campaign> {
    let spec: CampaignSpec = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => {
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{} is not a valid campaign: {e}", path.display()))?
        }
        Some("json") => {
            serde_json::from_str(text).with_context(|| format!("{} is not a valid campaign", path.display()))?
        }
        _ => bail!("{}: a campaign file ends in .toml or .json", path.display()),
    };
    Campaign::new(spec).map_err(|errs| {
        let lines: Vec<String> = errs.0.iter().map(|e| format!("  - {e}")).collect();
        anyhow::anyhow!("{} is not a valid campaign:\n{}", path.display(), lines.join("\n"))
    })
}
