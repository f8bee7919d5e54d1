//! `trib docs`: a static HTML site of the catalog, browsable from disk (no server, no
//! scripts or styles from the network), as dbt's docs are: an index with search and the
//! lineage graph, one page per product version (contract, schema, column lineage,
//! owners, consumers, versions and lifecycle, certification, SQL), and `catalog.json`
//! with the same facts for machines.
//!
//! ```text
//!   contracts ─┐
//!   catalog ───┼──► site model (one JSON document per product version) ──► catalog.json
//!   certification, column lineage ─┘                                  └──► index.html, products/*.html
//! ```

use crate::Outcome;
use crate::cli::{DocsArgs, GlobalArgs};
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;
use trib_spec::{Contract, Project};

/// The index draws the whole graph up to this many product versions; beyond it, each
/// product page draws its own neighbourhood only.
const INDEX_GRAPH_LIMIT: usize = 400;

pub fn run(g: &GlobalArgs, args: &DocsArgs) -> Result<Outcome> {
    let project = super::project(&g.project).map_err(|d| super::fatal(*d))?;
    let out = project.dir.join(&args.out);
    let rt = super::runtime()?;
    let site = Site::gather_blocking(&project, &rt)?;
    let pages = write_site(&project, &site, &out)?;
    eprintln!(
        "wrote {pages} product page{} to `{}`; open `{}` in a browser",
        if pages == 1 { "" } else { "s" },
        out.display(),
        out.join("index.html").display()
    );
    Ok(Outcome::Ok)
}

/// Everything the site shows: one JSON document per product version, in address order.
pub(super) struct Site {
    project: String,
    generated_at: String,
    catalog: Option<String>,
    products: Vec<Value>,
}

impl Site {
    pub(super) fn gather_blocking(project: &Project, rt: &tokio::runtime::Runtime) -> Result<Self> {
        rt.block_on(gather(project))
    }
}

fn key(c: &Contract) -> String {
    format!("{}@v{}", c.product.value, c.major())
}

fn page(id: &str) -> String {
    format!("{}.html", id.replace('@', "."))
}

async fn gather(project: &Project) -> Result<Site> {
    let lake = super::lake(project)?;
    let board = trib_quality::Board::load(&lake).await?;
    // The catalog is optional: a project never applied still has docs.
    let (catalog_url, summaries, consumers, history) =
        match trib_catalog::Catalog::open(&project.settings.catalog.url, &project.dir).await {
            Ok(catalog) => {
                let summaries = catalog.summaries(None).await?;
                let consumers = catalog.consumers(None).await?;
                // Applies per product version.
                let history: HashMap<(String, i64), i64> = catalog
                    .apply_counts()
                    .await?
                    .into_iter()
                    .map(|(p, major, n)| ((p, major), n))
                    .collect();
                (Some(catalog.url().to_string()), summaries, consumers, history)
            }
            Err(e) => {
                eprintln!("warning: the catalog is not available, the site shows contracts only: {e}");
                (None, Vec::new(), Vec::new(), HashMap::new())
            }
        };
    let engine = trib_engine::Engine::new(lake, project);
    // Contracts with their text, in address order; edges both ways; the catalog's rows
    // by version: looked up, not searched, for projects of thousands of products.
    let mut contracts: Vec<(&Contract, &str)> = project
        .files
        .iter()
        .filter_map(|f| f.contract.as_ref().map(|c| (c, f.source.text.as_str())))
        .collect();
    contracts.sort_by_key(|(c, _)| (c.product.value.to_string(), c.major()));
    let mut downstream: HashMap<String, Vec<String>> = HashMap::new();
    for (c, _) in &contracts {
        for i in c.inputs() {
            if let Some(from) = super::lineage::input_contract(project, &i.value) {
                downstream.entry(key(from)).or_default().push(key(c));
            }
        }
    }
    let mut held: HashMap<(&str, i64), &trib_catalog::Summary> = HashMap::new();
    let mut versions: HashMap<&str, Vec<&trib_catalog::Summary>> = HashMap::new();
    for s in &summaries {
        held.insert((s.product.as_str(), s.major), s);
        versions.entry(s.product.as_str()).or_default().push(s);
    }
    let mut consumers_of: HashMap<(&str, i64), Vec<&trib_catalog::Consumer>> = HashMap::new();
    for k in &consumers {
        consumers_of.entry((k.product.as_str(), k.major)).or_default().push(k);
    }
    let bar = progress(contracts.len(), "reading");
    let mut products = Vec::with_capacity(contracts.len());
    for (c, text) in &contracts {
        let product = c.product.value.to_string();
        let major = c.major() as i64;
        let mut doc = trib_spec::json::contract_json(c);
        doc["id"] = key(c).into();
        doc["page"] = page(&key(c)).into();
        doc["certification"] = board
            .get(&product, c.major())
            .map(|(s, at)| json!({ "state": s.as_str(), "since": time(at) }))
            .into();
        // Inputs as the SQL names them (`orders.orders`, `orders.orders@v1`) → versions.
        let mut inputs = Vec::new();
        let mut resolved: HashMap<String, String> = HashMap::new();
        for i in c.inputs() {
            if let Some(from) = super::lineage::input_contract(project, &i.value) {
                inputs.push(key(from));
                resolved.insert(i.value.to_string(), key(from));
                // The SQL may name a pinned input without its version.
                resolved.entry(i.value.product.to_string()).or_insert_with(|| key(from));
            }
        }
        let version_of = |address: &str| resolved.get(address).cloned().unwrap_or_else(|| address.to_string());
        doc["inputs"] = inputs.into();
        doc["downstream"] = downstream.get(&key(c)).cloned().unwrap_or_default().into();
        if let trib_spec::Source::Model(m) = &c.source {
            doc["sql"] = m.read_sql(&project.dir).ok().into();
            let node = (product.clone(), c.major());
            doc["column_lineage"] = match trib_engine::lineage::columns(engine.dag(), &project.dir, &node).await {
                Ok(l) => json!({
                    "columns": l.columns.iter().map(|(out, sources)| json!({
                        "column": out,
                        "sources": sources.iter().map(|((p, col), u)| json!({ "product": version_of(p), "column": col, "how": u.as_str() })).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                    "filtered_on": l.filtered_on.iter().map(|(p, col)| format!("{}.{col}", version_of(p))).collect::<Vec<_>>(),
                    "grouped_by": l.grouped_by.iter().map(|(p, col)| format!("{}.{col}", version_of(p))).collect::<Vec<_>>(),
                }),
                Err(e) => json!({ "error": e.to_string() }),
            };
        }
        doc["catalog"] = match held.get(&(product.as_str(), major)) {
            Some(s) => json!({
                "applied_version": s.version,
                "status": s.status,
                "deprecation_date": s.sunset,
                "superseded_by": s.superseded_by,
                "applies": history.get(&(product.clone(), major)).copied().unwrap_or_default(),
                "up_to_date": s.contract_hash == trib_catalog::contract_hash(text),
            }),
            None => Value::Null,
        };
        doc["versions"] = versions
            .get(product.as_str())
            .into_iter()
            .flatten()
            .map(
                |s| json!({ "major": s.major, "version": s.version, "status": s.status, "deprecation_date": s.sunset }),
            )
            .collect::<Vec<_>>()
            .into();
        doc["consumers"] = consumers_of
            .get(&(product.as_str(), major))
            .into_iter()
            .flatten()
            .map(|k| json!({ "consumer": k.consumer, "contact": k.contact, "purpose": k.purpose, "status": k.status, "since": k.decided_at.as_ref().unwrap_or(&k.requested_at) }))
            .collect::<Vec<_>>()
            .into();
        doc["contract_yaml"] = (*text).into();
        products.push(doc);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Site {
        project: project.settings.project.name.clone(),
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        catalog: catalog_url,
        products,
    })
}

fn time(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn progress(len: usize, what: &'static str) -> indicatif::ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(len as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} products")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what);
    bar
}

/// Writes the site; returns the number of product pages.
pub(super) fn write_site(project: &Project, site: &Site, out: &Path) -> Result<usize> {
    let products_dir = out.join("products");
    std::fs::create_dir_all(&products_dir).with_context(|| format!("cannot create `{}`", products_dir.display()))?;
    let put = |path: &Path, text: &str| {
        std::fs::write(path, text).with_context(|| format!("cannot write `{}`", path.display()))
    };
    put(&out.join("style.css"), STYLE)?;
    let doc = json!({
        "project": site.project,
        "generated_at": site.generated_at,
        "catalog": site.catalog,
        "products": site.products,
    });
    put(&out.join("catalog.json"), &serde_json::to_string_pretty(&doc)?)?;
    let graph = Graph::of(&site.products);
    put(&out.join("index.html"), &index(project, site, &graph))?;
    let bar = progress(site.products.len(), "writing");
    for p in &site.products {
        let id = p["id"].as_str().unwrap_or_default();
        put(&products_dir.join(page(id)), &product_page(site, &graph, p))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(site.products.len())
}

/// HTML-escapes text.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn head(title: &str, css: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title><link rel=\"stylesheet\" href=\"{css}\"></head><body>\n",
        esc(title)
    )
}

fn status_badges(p: &Value) -> String {
    let mut out = format!("<span class=\"badge layer-{0}\">{0}</span>", esc(&text(&p["layer"])));
    let status = p["catalog"]["status"]
        .as_str()
        .unwrap_or(p["status"].as_str().unwrap_or_default());
    let _ = write!(out, " <span class=\"badge status-{0}\">{0}</span>", esc(status));
    let cert = p["certification"]["state"].as_str().unwrap_or("not evaluated");
    let _ = write!(
        out,
        " <span class=\"badge cert-{}\">{}</span>",
        esc(&cert.replace(' ', "-")),
        esc(cert)
    );
    out
}

fn index(project: &Project, site: &Site, graph: &Graph) -> String {
    let mut h = head(&format!("{} — data products", site.project), "style.css");
    let domains: BTreeSet<&str> = site.products.iter().filter_map(|p| p["domain"].as_str()).collect();
    let owners: BTreeSet<&str> = site.products.iter().filter_map(|p| p["owner"].as_str()).collect();
    let _ = write!(
        h,
        "<header><h1>{}</h1><p>{} product versions in {} domains, owned by {} teams. Generated {}{}.</p></header>\n<main>\n",
        esc(&site.project),
        site.products.len(),
        domains.len(),
        owners.len(),
        esc(&site.generated_at),
        site.catalog
            .as_ref()
            .map(|c| format!(" from the catalog at <code>{}</code>", esc(c)))
            .unwrap_or_else(|| ", without a catalog (run <code>trib apply</code>)".into())
    );
    h.push_str(
        "<input id=\"q\" type=\"search\" placeholder=\"Search products, columns, owners, tags…\" autofocus>\n<table id=\"products\"><thead><tr><th>product</th><th>version</th><th>status</th><th>domain</th><th>owner</th><th>description</th></tr></thead><tbody>\n",
    );
    for p in &site.products {
        let columns: Vec<String> = p["schema"]
            .as_array()
            .map(|s| s.iter().map(|c| text(&c["name"])).collect())
            .unwrap_or_default();
        let tags: Vec<String> = p["tags"]
            .as_array()
            .map(|s| s.iter().map(text).collect())
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr data-search=\"{}\"><td><a href=\"products/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&format!(
                "{} {} {} {} {} {}",
                text(&p["id"]),
                text(&p["owner"]),
                text(&p["description"]),
                columns.join(" "),
                tags.join(" "),
                text(&p["layer"])
            )
            .to_lowercase()),
            esc(&text(&p["page"])),
            esc(&text(&p["id"])),
            esc(&text(&p["version"])),
            status_badges(p),
            esc(&text(&p["domain"])),
            esc(&text(&p["owner"])),
            esc(&text(&p["description"]))
        );
    }
    h.push_str("</tbody></table>\n<h2>Lineage</h2>\n");
    if site.products.len() <= INDEX_GRAPH_LIMIT {
        h.push_str(&graph.svg(None, "products/"));
    } else {
        let _ = writeln!(
            h,
            "<p>{} product versions are too many to draw at once: each product's page draws its neighbourhood.</p>",
            site.products.len()
        );
    }
    let _ = write!(
        h,
        "</main>\n<footer>Tributary docs of <code>{}</code>.</footer>\n<script>{SEARCH}</script>\n</body></html>\n",
        esc(&project.dir.display().to_string())
    );
    h
}

fn product_page(site: &Site, graph: &Graph, p: &Value) -> String {
    let id = text(&p["id"]);
    let mut h = head(&format!("{id} — {}", site.project), "../style.css");
    let _ = write!(
        h,
        "<header><a href=\"../index.html\">← {}</a><h1>{}</h1><p>{}</p><p>{}</p></header>\n<main>\n",
        esc(&site.project),
        esc(&id),
        status_badges(p),
        esc(&text(&p["description"]))
    );
    // The facts, as a definition list.
    let mut facts: Vec<(&str, String)> = vec![
        ("version", esc(&text(&p["version"]))),
        ("owner", esc(&text(&p["owner"]))),
        ("domain", esc(&text(&p["domain"]))),
        (
            "address",
            format!(
                "<code>/v1/products/{}/v{}</code>",
                esc(&text(&p["product"])),
                text(&p["major"])
            ),
        ),
    ];
    let contact: Vec<String> = ["email", "slack", "webhook"]
        .iter()
        .filter_map(|k| p["contact"][*k].as_str().map(|v| format!("{k}: {}", esc(v))))
        .collect();
    if !contact.is_empty() {
        facts.push(("contact", contact.join(", ")));
    }
    let list = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().map(|x| esc(&text(x))).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    for (label, field) in [
        ("tags", "tags"),
        ("key", "key"),
        ("partitioned by", "partition_by"),
        ("clustered by", "cluster_by"),
    ] {
        let l = list(&p[field]);
        if !l.is_empty() {
            facts.push((label, l));
        }
    }
    if let Some(e) = p["event_time"].as_str() {
        let wm = p["watermark"]["allowed_lateness"]
            .as_str()
            .map(|w| {
                format!(
                    ", {} allowed lateness, late events: {}",
                    esc(w),
                    esc(&text(&p["watermark"]["late"]))
                )
            })
            .unwrap_or_default();
        facts.push(("event time", format!("{}{wm}", esc(e))));
    }
    let source = &p["source"];
    facts.push((
        "source",
        if source["kind"] == "model" {
            format!(
                "{} model over {}",
                esc(&text(&source["materialized"])),
                links(&p["inputs"])
            )
        } else {
            format!(
                "{} stream ({}){}",
                esc(&text(&source["kind"])),
                esc(&text(&source["format"])),
                source["topic"]
                    .as_str()
                    .map(|t| format!(", topic <code>{}</code>", esc(t)))
                    .unwrap_or_default()
            )
        },
    ));
    let down = links(&p["downstream"]);
    if !down.is_empty() {
        facts.push(("downstream", down));
    }
    if let Some(r) = p["retention"]["text"].as_str() {
        facts.push(("retention", esc(r)));
    }
    if let Some(cert) = p["certification"].as_object() {
        facts.push((
            "certification",
            format!("{} since {}", esc(&text(&cert["state"])), esc(&text(&cert["since"]))),
        ));
    }
    match p["catalog"].as_object() {
        Some(c) => {
            let mut s = format!(
                "{} applied ({} applies){}",
                esc(&text(&c["applied_version"])),
                text(&c["applies"]),
                if c["up_to_date"] == true {
                    ""
                } else {
                    "; the contract has changed since: run <code>trib apply</code>"
                }
            );
            if let Some(d) = c["deprecation_date"].as_str() {
                let by = c["superseded_by"]
                    .as_i64()
                    .map(|m| {
                        let next = format!("{}@v{m}", text(&p["product"]));
                        format!(", superseded by {}", graph.link(&next))
                    })
                    .unwrap_or_default();
                let _ = write!(s, "; {} with deprecation date {}{by}", esc(&text(&c["status"])), esc(d));
            }
            facts.push(("catalog", s));
        }
        None => facts.push(("catalog", "not applied (<code>trib apply</code>)".into())),
    }
    h.push_str("<dl>");
    for (k, v) in facts {
        let _ = write!(h, "<dt>{k}</dt><dd>{v}</dd>");
    }
    h.push_str("</dl>\n");

    // Schema.
    h.push_str("<h2>Schema</h2>\n<table><thead><tr><th>column</th><th>type</th><th>required</th><th>PII</th><th>classification</th><th>description</th></tr></thead><tbody>\n");
    for c in p["schema"].as_array().into_iter().flatten() {
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&text(&c["name"])),
            esc(&text(&c["type"])),
            if c["required"] == true { "yes" } else { "" },
            if c["pii"] == true {
                "<span class=\"badge pii\">PII</span>"
            } else {
                ""
            },
            esc(&text(&c["classification"])),
            esc(&text(&c["description"]))
        );
    }
    h.push_str("</tbody></table>\n");

    // Column lineage of models.
    if let Some(l) = p["column_lineage"].as_object() {
        h.push_str("<h2>Column lineage</h2>\n");
        if let Some(e) = l.get("error").and_then(Value::as_str) {
            let _ = writeln!(h, "<p class=\"error\">not derived: {}</p>", esc(e));
        } else {
            h.push_str("<table><thead><tr><th>column</th><th>comes from</th></tr></thead><tbody>\n");
            for c in l["columns"].as_array().into_iter().flatten() {
                let sources: Vec<String> = c["sources"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        let product = text(&s["product"]);
                        format!(
                            "{}.<code>{}</code> ({})",
                            graph.link(&product),
                            esc(&text(&s["column"])),
                            esc(&text(&s["how"]))
                        )
                    })
                    .collect();
                let _ = writeln!(
                    h,
                    "<tr><td><code>{}</code></td><td>{}</td></tr>",
                    esc(&text(&c["column"])),
                    if sources.is_empty() {
                        "a constant or a count of rows".into()
                    } else {
                        sources.join("<br>")
                    }
                );
            }
            h.push_str("</tbody></table>\n");
            for (label, field) in [("filtered on", "filtered_on"), ("grouped by", "grouped_by")] {
                let l = list(&l[field]);
                if !l.is_empty() {
                    let _ = writeln!(h, "<p>{label}: {l}</p>");
                }
            }
        }
    }

    // Lineage graph: what it is made from and what is made from it.
    h.push_str("<h2>Lineage</h2>\n");
    h.push_str(&graph.svg(Some(&id), ""));

    // Service levels and checks.
    let sla = &p["sla"];
    let mut slos = Vec::new();
    if let Some(f) = sla["freshness"]["text"].as_str() {
        slos.push(format!("freshness {}", esc(f)));
    }
    if let Some(a) = sla["availability"].as_f64() {
        slos.push(format!("availability {a}%"));
    }
    if let Some(v) = sla["validity"].as_f64() {
        slos.push(format!("validity {v}%"));
    }
    if sla["completeness"].is_object() {
        slos.push(format!(
            "completeness {}% within {}",
            text(&sla["completeness"]["target"]),
            esc(&text(&sla["completeness"]["within"]))
        ));
    }
    if !slos.is_empty() {
        let _ = writeln!(h, "<h2>Service levels</h2>\n<p>{}</p>", slos.join(" · "));
    }
    let checks = p["quality"].as_array().map(Vec::as_slice).unwrap_or_default();
    if !checks.is_empty() {
        h.push_str("<h2>Quality checks</h2>\n<table><thead><tr><th>check</th><th>severity</th><th>columns</th><th>definition</th></tr></thead><tbody>\n");
        for q in checks {
            let mut rest = q.clone();
            if let Some(m) = rest.as_object_mut() {
                for k in ["kind", "severity", "columns"] {
                    m.remove(k);
                }
            }
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                esc(&text(&q["kind"])),
                esc(&text(&q["severity"])),
                list(&q["columns"]),
                esc(&rest.to_string())
            );
        }
        h.push_str("</tbody></table>\n");
    }

    // Who may read it, and who does.
    let access = p["access"].as_array().map(Vec::as_slice).unwrap_or_default();
    if !access.is_empty() {
        h.push_str(
            "<h2>Access</h2>\n<table><thead><tr><th>role</th><th>level</th><th>row filter</th></tr></thead><tbody>\n",
        );
        for a in access {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                esc(&text(&a["role"])),
                esc(&text(&a["level"])),
                esc(&text(&a["row_filter"]))
            );
        }
        h.push_str("</tbody></table>\n");
    }
    let consumers = p["consumers"].as_array().map(Vec::as_slice).unwrap_or_default();
    h.push_str("<h2>Consumers</h2>\n");
    if consumers.is_empty() {
        h.push_str("<p>None registered (<code>trib consumers request</code>).</p>\n");
    } else {
        h.push_str("<table><thead><tr><th>consumer</th><th>status</th><th>purpose</th><th>contact</th><th>since</th></tr></thead><tbody>\n");
        for k in consumers {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&text(&k["consumer"])),
                esc(&text(&k["status"])),
                esc(&text(&k["purpose"])),
                esc(&text(&k["contact"])),
                esc(&text(&k["since"]))
            );
        }
        h.push_str("</tbody></table>\n");
    }
    let versions = p["versions"].as_array().map(Vec::as_slice).unwrap_or_default();
    if versions.len() > 1 {
        h.push_str("<h2>Versions</h2>\n<ul>\n");
        for v in versions {
            let vid = format!("{}@v{}", text(&p["product"]), text(&v["major"]));
            let _ = writeln!(
                h,
                "<li>{} {} — {}{}</li>",
                graph.link(&vid),
                esc(&text(&v["version"])),
                esc(&text(&v["status"])),
                v["deprecation_date"]
                    .as_str()
                    .map(|d| format!(", deprecation date {}", esc(d)))
                    .unwrap_or_default()
            );
        }
        h.push_str("</ul>\n");
    }
    if let Some(sql) = p["sql"].as_str() {
        let _ = writeln!(
            h,
            "<h2>Transform</h2>\n<p><code>{}</code></p>\n<pre>{}</pre>",
            esc(&text(&p["source"]["transform"])),
            esc(sql)
        );
    }
    if let Some(yaml) = p["contract_yaml"].as_str() {
        let _ = writeln!(
            h,
            "<details><summary>Contract</summary>\n<pre>{}</pre></details>",
            esc(yaml)
        );
    }
    h.push_str("</main>\n</body></html>\n");
    h
}

/// Links to product pages (in the same folder) for a JSON list of ids.
fn links(ids: &Value) -> String {
    ids.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|id| format!("<a href=\"{}\">{}</a>", esc(&page(id)), esc(id)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The product graph, laid out in layers: sources on the left, each product one layer
/// right of its furthest input.
struct Graph {
    ids: Vec<String>,
    layer: Vec<String>,
    index: HashMap<String, usize>,
    parents: Vec<Vec<usize>>,
    children: Vec<Vec<usize>>,
}

const NODE_H: usize = 34;
const ROW: usize = 50;
const GAP: usize = 70;

impl Graph {
    fn of(products: &[Value]) -> Self {
        let ids: Vec<String> = products.iter().map(|p| text(&p["id"])).collect();
        let index: HashMap<String, usize> = ids.iter().enumerate().map(|(i, id)| (id.clone(), i)).collect();
        let mut parents = vec![Vec::new(); ids.len()];
        let mut children = vec![Vec::new(); ids.len()];
        for (i, p) in products.iter().enumerate() {
            for input in p["inputs"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if let Some(&from) = index.get(input) {
                    parents[i].push(from);
                    children[from].push(i);
                }
            }
        }
        Self {
            layer: products.iter().map(|p| text(&p["layer"])).collect(),
            ids,
            index,
            parents,
            children,
        }
    }

    /// A link to a product version's page (beside this one) when the site has it;
    /// its name otherwise (a version no longer in the project).
    fn link(&self, id: &str) -> String {
        if self.index.contains_key(id) {
            format!("<a href=\"{}\">{}</a>", esc(&page(id)), esc(id))
        } else {
            esc(id)
        }
    }

    /// The nodes connected to `start` one way.
    fn reach(&self, start: usize, up: bool) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start];
        while let Some(n) = stack.pop() {
            for &m in if up { &self.parents[n] } else { &self.children[n] } {
                if seen.insert(m) {
                    stack.push(m);
                }
            }
        }
        seen
    }

    /// An SVG of the whole graph, or of one product's ancestors and descendants with
    /// it highlighted. Links point to `prefix` + the product's page.
    fn svg(&self, focus: Option<&str>, prefix: &str) -> String {
        let nodes: BTreeSet<usize> = match focus.and_then(|f| self.index.get(f)) {
            Some(&f) => {
                let mut s = self.reach(f, true);
                s.extend(self.reach(f, false));
                s.insert(f);
                s
            }
            None => (0..self.ids.len()).collect(),
        };
        if nodes.is_empty() {
            return "<p>No products.</p>\n".into();
        }
        // Depth: one more than the deepest input among the drawn nodes (the project
        // check guarantees there are no cycles).
        let mut depth: BTreeMap<usize, usize> = BTreeMap::new();
        fn depth_of(g: &Graph, n: usize, nodes: &BTreeSet<usize>, memo: &mut BTreeMap<usize, usize>) -> usize {
            if let Some(&d) = memo.get(&n) {
                return d;
            }
            memo.insert(n, 0);
            let d = g.parents[n]
                .iter()
                .filter(|p| nodes.contains(p))
                .map(|&p| depth_of(g, p, nodes, memo) + 1)
                .max()
                .unwrap_or(0);
            memo.insert(n, d);
            d
        }
        for &n in &nodes {
            depth_of(self, n, &nodes, &mut depth);
        }
        let layers = depth.values().copied().max().unwrap_or(0) + 1;
        let mut columns: Vec<Vec<usize>> = vec![Vec::new(); layers];
        for (&n, &d) in &depth {
            columns[d].push(n);
        }
        // Order each layer by the mean position of its inputs, to keep edges short.
        let mut row: HashMap<usize, f64> = HashMap::new();
        for col in &mut columns {
            col.sort_by(|a, b| {
                let mean = |n: &usize| {
                    let ps: Vec<f64> = self.parents[*n].iter().filter_map(|p| row.get(p)).copied().collect();
                    if ps.is_empty() {
                        f64::MAX
                    } else {
                        ps.iter().sum::<f64>() / ps.len() as f64
                    }
                };
                mean(a)
                    .total_cmp(&mean(b))
                    .then_with(|| self.ids[*a].cmp(&self.ids[*b]))
            });
            for (i, n) in col.iter().enumerate() {
                row.insert(*n, i as f64);
            }
        }
        let width = nodes
            .iter()
            .map(|&n| self.ids[n].chars().count())
            .max()
            .unwrap_or(10)
            .clamp(12, 60)
            * 7
            + 24;
        let rows = columns.iter().map(Vec::len).max().unwrap_or(1);
        let (w, h) = (layers * (width + GAP) - GAP + 20, rows * ROW + 10);
        let pos = |n: usize| {
            let d = depth[&n];
            (10 + d * (width + GAP), 10 + row[&n] as usize * ROW)
        };
        let mut s = format!(
            "<svg class=\"lineage\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"lineage graph\">\n<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\"/></marker></defs>\n"
        );
        for &n in &nodes {
            for &p in self.parents[n].iter().filter(|p| nodes.contains(p)) {
                let ((x1, y1), (x2, y2)) = (pos(p), pos(n));
                let (x1, y1, x2, y2) = (x1 + width, y1 + NODE_H / 2, x2, y2 + NODE_H / 2);
                let mid = (x1 + x2) / 2;
                let _ = writeln!(
                    s,
                    "<path class=\"edge\" data-from=\"{}\" data-to=\"{}\" d=\"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}\" marker-end=\"url(#arrow)\"/>",
                    esc(&self.ids[p]),
                    esc(&self.ids[n])
                );
            }
        }
        for &n in &nodes {
            let (x, y) = pos(n);
            let id = &self.ids[n];
            let class = if focus == Some(id.as_str()) { " focus" } else { "" };
            let _ = writeln!(
                s,
                "<a href=\"{prefix}{}\"><g class=\"node layer-{}{class}\"><rect x=\"{x}\" y=\"{y}\" width=\"{width}\" height=\"{NODE_H}\" rx=\"6\"/><text x=\"{}\" y=\"{}\">{}</text></g></a>",
                esc(&page(id)),
                esc(&self.layer[n]),
                x + 12,
                y + 22,
                esc(id)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

const SEARCH: &str = r#"
const q = document.getElementById('q');
q.addEventListener('input', () => {
  const words = q.value.toLowerCase().split(/\s+/).filter(w => w);
  for (const tr of document.querySelectorAll('#products tbody tr')) {
    const text = tr.dataset.search;
    tr.hidden = !words.every(w => text.includes(w));
  }
});
"#;

const STYLE: &str = r#"
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2330; background: #fafbfc; }
header { background: #14365d; color: #fff; padding: 1em 2em; }
header a { color: #bcd6f5; }
header h1 { margin: .2em 0; font-size: 1.6em; }
main { padding: 1em 2em; max-width: 1200px; }
footer { padding: 1em 2em; color: #667; font-size: .85em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #dde3ea; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid #e6eaef; vertical-align: top; }
th { background: #f1f4f8; font-weight: 600; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .9em; }
pre { background: #f1f4f8; padding: 1em; overflow: auto; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1.2em; }
dt { color: #556; } dd { margin: 0; }
#q { width: 100%; padding: .5em; font-size: 1em; margin: .5em 0 1em; box-sizing: border-box; }
.badge { display: inline-block; padding: 0 .5em; border-radius: .7em; font-size: .8em; background: #e6eaef; color: #1d2330; }
.layer-bronze { background: #f3dfc8; } .layer-silver { background: #e3e7ec; } .layer-gold { background: #f7e7a1; } .layer-view { background: #dcefe0; }
.status-deprecated { background: #ffe1b3; } .status-retired { background: #f5c2c2; } .status-draft { background: #e0e0f7; }
.cert-certified { background: #bfe8c8; } .cert-degraded { background: #ffe1b3; } .cert-decertified { background: #f5c2c2; }
.pii { background: #f5c2c2; }
.error { color: #a4262c; }
svg.lineage { background: #fff; border: 1px solid #e6eaef; max-width: 100%; height: auto; }
svg.lineage .edge { fill: none; stroke: #8a97a8; stroke-width: 1.5; }
svg.lineage marker path { fill: #8a97a8; }
svg.lineage .node rect { stroke: #5b6b80; stroke-width: 1; }
svg.lineage .node.focus rect { stroke: #14365d; stroke-width: 3; }
svg.lineage .node text { font: 12px ui-monospace, monospace; fill: #1d2330; }
svg.lineage .layer-bronze rect { fill: #f3dfc8; } svg.lineage .layer-silver rect { fill: #e3e7ec; }
svg.lineage .layer-gold rect { fill: #f7e7a1; } svg.lineage .layer-view rect { fill: #dcefe0; }
"#;
