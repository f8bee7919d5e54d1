//! The example project written by `trib init`: an e-commerce domain (orders and
//! clickstream, bronze → silver → gold), an IoT domain (sensor readings with minute and
//! hour aggregates) and a finance product, with the case study's three policies.

use anyhow::{Context, Result, bail};
use std::path::Path;

macro_rules! files {
    ($($path:literal),+ $(,)?) => {
        &[$(($path, include_str!(concat!("../template/", $path)))),+]
    };
}

/// Every file of the example project, by relative path.
pub const FILES: &[(&str, &str)] = files!(
    "trib.toml",
    "README.md",
    ".gitignore",
    "products/orders/orders_raw.yaml",
    "products/orders/orders.yaml",
    "products/orders/daily_revenue.yaml",
    "products/web/clicks_raw.yaml",
    "products/web/clicks.yaml",
    "products/web/page_views_hourly.yaml",
    "products/iot/sensor_readings.yaml",
    "products/iot/readings_1m.yaml",
    "products/iot/readings_1h.yaml",
    "products/finance/monthly_revenue.yaml",
    "models/orders.sql",
    "models/daily_revenue.sql",
    "models/clicks.sql",
    "models/page_views_hourly.sql",
    "models/readings_1m.sql",
    "models/readings_1h.sql",
    "models/monthly_revenue.sql",
    "policies/pii_access.rego",
    "policies/finance_retention.rego",
    "policies/quality_required.rego",
);

/// Writes the example project into `dir`, which must not hold a project already.
pub fn write(dir: &Path, name: &str) -> Result<usize> {
    if dir.join(trib_core::settings::SETTINGS_FILE).exists() {
        bail!(
            "`{}` already holds a project (trib.toml exists); hint: choose another directory",
            dir.display()
        );
    }
    for (rel, text) in FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        let text = text.replace("{{name}}", name);
        std::fs::write(&path, text).with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    let schema = dir.join("contract.schema.json");
    std::fs::write(&schema, trib_spec::schema::json_schema_text())
        .with_context(|| format!("cannot write `{}`", schema.display()))?;
    Ok(FILES.len() + 1)
}
