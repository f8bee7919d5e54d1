use crate::Outcome;
use crate::cli::{GlobalArgs, OutputFormat, ShowArgs};
use anyhow::{Result, bail};
use std::fmt::Write;
use trib_spec::{Contract, Project};

pub fn run(g: &GlobalArgs, args: &ShowArgs) -> Result<Outcome> {
    let project = super::project(&g.project).map_err(|d| super::fatal(*d))?;
    let (name, major) = super::catalog::address(&project, &args.product)?;
    let Some(c) = project
        .contracts()
        .find(|c| c.product.value.to_string() == name && c.major() as i64 == major)
    else {
        bail!("no product `{name}` in this project; hint: `trib check` lists the products");
    };
    // Certification as last evaluated (by `trib serve` or `trib slo --evaluate`), and
    // what the catalog holds: applied versions and consumers.
    let lake = super::lake(&project)?;
    let rt = super::runtime()?;
    let board = rt.block_on(trib_quality::Board::load(&lake))?;
    let (applied, consumers, versions) =
        match rt.block_on(trib_catalog::Catalog::open(&project.settings.catalog.url, &project.dir)) {
            Ok(catalog) => (
                rt.block_on(catalog.history(&name))?,
                rt.block_on(catalog.consumers(Some(&name)))?,
                rt.block_on(catalog.summaries(Some(&name)))?,
            ),
            Err(e) => {
                eprintln!("warning: the catalog is not available: {e}");
                (Vec::new(), Vec::new(), Vec::new())
            }
        };
    let certification = board.get(&c.product.value.to_string(), c.major());
    let since = |ms: i64| {
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default()
    };
    match args.format {
        OutputFormat::Json => {
            let mut doc = trib_spec::json::contract_json(c);
            doc["downstream"] = downstream(&project, c).into();
            doc["certification"] = certification
                .map(|(s, at)| serde_json::json!({ "state": s.as_str(), "since": since(at) }))
                .into();
            doc["applied"] = applied
                .iter()
                .map(|(major, version, hash, commit, at)| {
                    serde_json::json!({ "major": major, "version": version, "contract_hash": hash, "git_commit": commit, "applied_at": at })
                })
                .collect::<Vec<_>>()
                .into();
            doc["versions"] = versions
                .iter()
                .map(|v| serde_json::json!({ "major": v.major, "version": v.version, "status": v.status, "deprecation_date": v.sunset, "superseded_by": v.superseded_by }))
                .collect::<Vec<_>>()
                .into();
            doc["consumers"] = consumers
                .iter()
                .map(|k| serde_json::json!({ "consumer": k.consumer, "major": k.major, "status": k.status, "contact": k.contact, "purpose": k.purpose }))
                .collect::<Vec<_>>()
                .into();
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        OutputFormat::Text => {
            print!("{}", describe(&project, c));
            match certification {
                Some((s, at)) => println!(
                    "certification: {s} since {} (`trib slo {}` for the SLOs)",
                    since(at),
                    c.product.value
                ),
                None => println!("certification: not evaluated yet (`trib slo --evaluate`, or `trib serve`)"),
            }
            match applied.last() {
                Some((major, version, _, commit, at)) => println!(
                    "applied: v{major} {version} at {at}{} ({} applies)",
                    commit
                        .as_deref()
                        .map(|c| format!(", commit {}", &c[..c.len().min(12)]))
                        .unwrap_or_default(),
                    applied.len()
                ),
                None => println!("applied: not yet (`trib apply`)"),
            }
            for v in &versions {
                let state = match (v.status.as_str(), &v.sunset) {
                    ("deprecated", Some(d)) => format!("deprecated, served until {d}"),
                    ("retired", Some(d)) => format!("retired (deprecation date {d})"),
                    (s, _) => s.to_string(),
                };
                let by = v
                    .superseded_by
                    .map(|m| format!(", superseded by v{m}"))
                    .unwrap_or_default();
                println!("version: v{} {} {state}{by}", v.major, v.version);
            }
            for k in &consumers {
                println!(
                    "consumer: {} of v{} ({}, {}): {}",
                    k.consumer, k.major, k.status, k.contact, k.purpose
                );
            }
        }
    }
    Ok(Outcome::Ok)
}

fn downstream(project: &Project, c: &Contract) -> Vec<String> {
    project
        .contracts()
        .filter(|d| d.inputs().iter().any(|i| i.product == c.product.value))
        .map(|d| d.product.value.to_string())
        .collect()
}

/// A readable page about one product.
pub fn describe(project: &Project, c: &Contract) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} v{} ({}, {})",
        c.product.value, c.version.value, c.layer, c.status
    );
    if let Some(d) = &c.description {
        let _ = writeln!(out, "  {d}");
    }
    let _ = writeln!(out, "owner:      {}", c.owner);
    let _ = writeln!(out, "address:    /v1/products/{}/v{}", c.product.value, c.major());
    match &c.source {
        trib_spec::Source::Stream(s) => {
            let topic = s.topic.as_ref().map(|t| format!(" topic {t}")).unwrap_or_default();
            let _ = writeln!(out, "source:     {} stream, {}{topic}", s.kind, s.format);
        }
        trib_spec::Source::Model(m) => {
            let inputs: Vec<String> = m.inputs.iter().map(|i| i.value.to_string()).collect();
            let _ = writeln!(
                out,
                "source:     {} ← {} ({})",
                m.materialized,
                inputs.join(", "),
                m.transform.value
            );
        }
    }
    let down = downstream(project, c);
    if !down.is_empty() {
        let _ = writeln!(out, "downstream: {}", down.join(", "));
    }
    if !c.key.is_empty() {
        let _ = writeln!(
            out,
            "key:        {}",
            c.key.iter().map(|k| k.value.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(e) = &c.event_time {
        let wm = c
            .watermark
            .as_ref()
            .map(|w| format!(", watermark {} late → {}", w.allowed_lateness, w.late))
            .unwrap_or_default();
        let _ = writeln!(out, "event time: {}{wm}", e.value);
    }
    let _ = writeln!(out, "schema:");
    for col in &c.schema {
        let mut flags = Vec::new();
        if col.required {
            flags.push("required".to_string());
        }
        if col.pii {
            flags.push("pii".to_string());
        }
        if let Some(cl) = col.classification {
            flags.push(cl.to_string());
        }
        let arrow = format!("{}", col.data_type.to_arrow());
        let _ = writeln!(
            out,
            "  {:<18} {:<28} {:<36} {}",
            col.name.value,
            col.data_type.value.to_string(),
            arrow,
            flags.join(" ")
        );
    }
    if c.sla != Default::default() {
        let mut parts = Vec::new();
        if let Some(f) = c.sla.freshness {
            parts.push(format!("freshness {f}"));
        }
        if let Some(a) = c.sla.availability {
            parts.push(format!("availability {a}%"));
        }
        if let Some(x) = &c.sla.completeness {
            parts.push(format!("completeness {}% within {}", x.target, x.within));
        }
        let _ = writeln!(out, "sla:        {}", parts.join(", "));
    }
    for a in &c.access {
        let filter = a
            .row_filter
            .as_ref()
            .map(|f| format!(" where {}", f.value))
            .unwrap_or_default();
        let _ = writeln!(out, "access:     {} {}{filter}", a.role.value, a.level);
    }
    let _ = writeln!(
        out,
        "quality:    {} checks ({})",
        c.quality.len(),
        c.quality.iter().map(|q| q.kind.name()).collect::<Vec<_>>().join(", ")
    );
    if let Some(r) = c.retention {
        let _ = writeln!(out, "retention:  {r}");
    }
    out
}
