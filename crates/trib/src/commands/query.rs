//! `trib query`: one read-only SQL query through the same gateway as the HTTP API.

use crate::Outcome;
use crate::cli::{GlobalArgs, QueryArgs};
use anyhow::{Context, Result};
use std::io::{IsTerminal, Write};
use trib_access::{Format, Gateway, Principal, QueryPath, TokenStore};

pub fn run(g: &GlobalArgs, args: &QueryArgs) -> Result<Outcome> {
    let project = super::project(&g.project).map_err(|d| super::fatal(*d))?;
    if project.diagnostics.has_errors() {
        eprintln!(
            "warning: the project has errors (see `trib check`); products with broken contracts cannot be queried"
        );
    }
    let settings = &project.settings;
    let mut principal = match &args.token {
        Some(t) => TokenStore::open(&project.dir).authenticate(t, settings)?,
        None => Principal::local(settings),
    };
    if let Some(role) = &args.as_role {
        principal = principal.act_as(role, settings)?;
    }
    let mut stdout = std::io::stdout().lock();
    if !args.format.is_text() && stdout.is_terminal() {
        anyhow::bail!(
            "{} is a binary format and stdout is a terminal\nhint: redirect it to a file (`> out.{}`), or use --format table",
            args.format.name(),
            args.format.name()
        );
    }
    let lake = super::lake(&project)?;
    let result = super::runtime()?.block_on(async {
        let board = trib_quality::Board::load(&lake).await?;
        let gateway = Gateway::new(lake, &project)?.with_certification(std::sync::Arc::new(board));
        super::catalog::refresh(&gateway, &project).await;
        let result = gateway.query(&principal, &args.sql, QueryPath::Cli).await;
        // No audit, no answer: the read is recorded before its rows are shown.
        gateway
            .auditor()
            .flush()
            .await
            .context("cannot write the audit record of this query")?;
        anyhow::Ok(result?)
    })?;
    for w in &result.warnings {
        eprintln!("warning: {w}");
    }
    let bytes = trib_access::encode(&result.schema, &result.batches, args.format)?;
    stdout.write_all(&bytes)?;
    stdout.flush()?;
    if args.format == Format::Table {
        eprintln!("{} row{}", result.rows, if result.rows == 1 { "" } else { "s" });
    }
    Ok(Outcome::Ok)
}
