//! `trib lineage`: the graph of products around one, from the contracts' inputs:
//! upstream (what it is made from, to the sources), downstream (what is made from it,
//! to the last consumer product), as text, JSON, Mermaid or Graphviz dot.

use crate::Outcome;
use crate::cli::{GlobalArgs, LineageArgs, LineageFormat};
use anyhow::{Result, bail};
use std::collections::{BTreeSet, VecDeque};
use trib_spec::{Contract, Project};

/// A product version in the graph: `domain.name@vN`.
fn node(c: &Contract) -> String {
    format!("{}@v{}", c.product.value, c.major())
}

/// The contract an input names: its pinned major, or the newest.
pub(super) fn input_contract<'p>(project: &'p Project, i: &trib_spec::InputRef) -> Option<&'p Contract> {
    match i.major {
        Some(m) => project
            .contracts()
            .find(|c| c.product.value == i.product && c.major() == m),
        None => project.latest(&i.product),
    }
}

/// Edges `(from, to)` reachable from `start` one way.
fn walk(project: &Project, start: &Contract, upstream: bool) -> BTreeSet<(String, String)> {
    let mut edges = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([start]);
    while let Some(c) = queue.pop_front() {
        if !seen.insert(node(c)) {
            continue;
        }
        if upstream {
            for i in c.inputs() {
                if let Some(from) = input_contract(project, &i.value) {
                    edges.insert((node(from), node(c)));
                    queue.push_back(from);
                }
            }
        } else {
            for d in project.contracts() {
                if d.inputs()
                    .iter()
                    .any(|i| input_contract(project, &i.value).is_some_and(|x| node(x) == node(c)))
                {
                    edges.insert((node(c), node(d)));
                    queue.push_back(d);
                }
            }
        }
    }
    edges
}

pub fn run(g: &GlobalArgs, args: &LineageArgs) -> Result<Outcome> {
    let project = super::project(&g.project).map_err(|d| super::fatal(*d))?;
    let name: trib_spec::ProductName = args.product.parse().map_err(|e: trib_spec::ProductNameError| {
        anyhow::anyhow!("{e}; hint: {}", trib_spec::ProductNameError::HINT)
    })?;
    let Some(c) = project.latest(&name) else {
        bail!("no product `{name}` in this project; hint: `trib catalog search` finds products");
    };
    // Column lineage of a model, from the plan of its SQL.
    let columns = if c.inputs().is_empty() {
        None
    } else {
        let lake = super::lake(&project)?;
        let engine = trib_engine::Engine::new(lake, &project);
        let node = (c.product.value.to_string(), c.major());
        Some(super::runtime()?.block_on(trib_engine::lineage::columns(engine.dag(), &project.dir, &node))?)
    };
    if let Some(col) = &args.column {
        let Some(lineage) = &columns else {
            bail!("`{name}` is not a model: its columns come from its source; hint: ask for a model's column");
        };
        let Some(sources) = lineage.columns.get(col) else {
            bail!(
                "`{name}` has no column `{col}`; hint: its columns are {}",
                lineage
                    .columns
                    .keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        if args.format == LineageFormat::Json {
            let doc: Vec<serde_json::Value> = sources
                .iter()
                .map(|((p, c), u)| serde_json::json!({ "product": p, "column": c, "how": u.as_str() }))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "product": node(c), "column": col, "sources": doc })
                )?
            );
        } else {
            println!("{}.{col}:", node(c));
            for ((p, from), u) in sources {
                println!("  {:<12} {p}.{from}", u.as_str());
            }
        }
        return Ok(Outcome::Ok);
    }
    let up = if args.downstream {
        BTreeSet::new()
    } else {
        walk(&project, c, true)
    };
    let down = if args.upstream {
        BTreeSet::new()
    } else {
        walk(&project, c, false)
    };
    let edges: BTreeSet<&(String, String)> = up.iter().chain(down.iter()).collect();
    let me = node(c);
    match args.format {
        LineageFormat::Json => {
            let doc = serde_json::json!({
                "product": me,
                "upstream": up.iter().map(|(f, t)| serde_json::json!({ "from": f, "to": t })).collect::<Vec<_>>(),
                "downstream": down.iter().map(|(f, t)| serde_json::json!({ "from": f, "to": t })).collect::<Vec<_>>(),
                "columns": columns.as_ref().map(|l| l.columns.iter().map(|(out, sources)| serde_json::json!({
                    "column": out,
                    "sources": sources.iter().map(|((p, c), u)| serde_json::json!({ "product": p, "column": c, "how": u.as_str() })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>()),
                "filtered_on": columns.as_ref().map(|l| l.filtered_on.iter().map(|(p, c)| format!("{p}.{c}")).collect::<Vec<_>>()),
                "grouped_by": columns.as_ref().map(|l| l.grouped_by.iter().map(|(p, c)| format!("{p}.{c}")).collect::<Vec<_>>()),
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        LineageFormat::Mermaid => {
            println!("graph LR");
            let id = |n: &str| n.replace(['.', '@'], "_");
            println!("  {}[\"{me}\"]:::focus", id(&me));
            for (f, t) in &edges {
                println!("  {}[\"{f}\"] --> {}[\"{t}\"]", id(f), id(t));
            }
            println!("  classDef focus stroke-width:3px");
        }
        LineageFormat::Dot => {
            println!("digraph lineage {{\n  rankdir=LR;\n  \"{me}\" [style=bold];");
            for (f, t) in &edges {
                println!("  \"{f}\" -> \"{t}\";");
            }
            println!("}}");
        }
        LineageFormat::Text => {
            if !args.downstream {
                println!("upstream of {me}:");
                if up.is_empty() {
                    println!("  (a source: no inputs)");
                }
                for (f, t) in &up {
                    println!("  {t} ← {f}");
                }
            }
            if let Some(l) = &columns {
                println!("columns of {me}:");
                for (out, sources) in &l.columns {
                    let from: Vec<String> = sources
                        .iter()
                        .map(|((p, c), u)| format!("{p}.{c} ({})", u.as_str()))
                        .collect();
                    if from.is_empty() {
                        println!("  {out} ← (no input column: a constant or a count of rows)");
                    } else {
                        println!("  {out} ← {}", from.join(", "));
                    }
                }
                if !l.filtered_on.is_empty() {
                    let f: Vec<String> = l.filtered_on.iter().map(|(p, c)| format!("{p}.{c}")).collect();
                    println!("  filtered on: {}", f.join(", "));
                }
                if !l.grouped_by.is_empty() {
                    let g: Vec<String> = l.grouped_by.iter().map(|(p, c)| format!("{p}.{c}")).collect();
                    println!("  grouped by: {}", g.join(", "));
                }
            }
            if !args.upstream {
                println!("downstream of {me}:");
                if down.is_empty() {
                    println!("  (nothing is made from it)");
                }
                for (f, t) in &down {
                    println!("  {f} → {t}");
                }
            }
        }
    }
    Ok(Outcome::Ok)
}
