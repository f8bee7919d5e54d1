//! One module per subcommand.

mod apply;
mod catalog;
mod check;
mod contract;
mod demo;
mod diff;
mod docs;
mod ingest;
mod init;
mod lifecycle;
mod lineage;
mod maintain;
mod quality;
mod query;
mod run;
mod serve;
mod show;
mod token;

use crate::Outcome;
use crate::cli::{Cli, Command};
use anyhow::Result;

pub use check::run_checks;

pub fn run(cli: Cli) -> Result<Outcome> {
    let g = &cli.global;
    match cli.command {
        Command::Init(a) => init::run(g, &a),
        Command::Check(a) => check::run(g, &a),
        Command::Diff(a) => diff::run(g, &a),
        Command::Apply(a) => apply::run(g, &a),
        Command::Catalog(c) => catalog::run(g, c),
        Command::Consumers(c) => catalog::consumers(g, c),
        Command::Lineage(a) => lineage::run(g, &a),
        Command::Docs(a) => docs::run(g, &a),
        Command::Schema => {
            println!("{}", trib_spec::schema::json_schema_text().trim_end());
            Ok(Outcome::Ok)
        }
        Command::Ingest(a) => ingest::run(g, &a),
        Command::Run(a) => run::run(g, &a.select, a.format, false, usize::from(a.threads)),
        Command::Replay(a) => run::run(g, std::slice::from_ref(&a.product), a.format, true, 1),
        Command::Query(a) => query::run(g, &a),
        Command::Token(c) => token::run(g, c),
        Command::Show(a) => show::run(g, &a),
        Command::Quality(a) => quality::run(g, &a),
        Command::Slo(a) => quality::slo(g, &a),
        Command::Maintain(a) => maintain::run(g, &a),
        Command::Serve(a) => serve::run(g, &a),
        Command::Contract(c) => contract::run(g, c),
        Command::Demo(a) => demo::run(g, &a),
    }
}

/// The project's settings: `trib.toml`, then `TRIB_*` variables. Merged here, once.
pub fn settings(dir: &std::path::Path) -> Result<trib_core::Settings, Box<trib_core::Diagnostic>> {
    trib_core::Settings::load(dir)?.with_env(std::env::vars())
}

/// Loads and checks the project in `dir` with merged settings.
pub fn project(dir: &std::path::Path) -> Result<trib_spec::Project, Box<trib_core::Diagnostic>> {
    Ok(trib_spec::load_project_with(dir, settings(dir)?))
}

/// Stack of the runtimes' threads. delta-rs's and DataFusion's futures are large (more
/// so from crates built at opt-level 0) and planning recurses: a server under HTTP
/// ingest at full rate overflowed tokio's default 2 MiB and aborted. The reservation is
/// virtual; only the pages a thread touches count.
pub const THREAD_STACK: usize = 16 * 1024 * 1024;

/// The runtime for async work (tables, servers). Built per command: most commands
/// never need one.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(THREAD_STACK)
        .enable_all()
        .build()?)
}

/// The lake of a project, from its merged settings (root, and S3 endpoint and region).
pub fn lake(project: &trib_spec::Project) -> anyhow::Result<trib_lake::Lake> {
    Ok(trib_lake::Lake::from_settings(&project.settings.storage, &project.dir)?)
}

/// Turns a fatal diagnostic (e.g. a broken trib.toml) into an error with its rendering.
pub fn fatal(d: trib_core::Diagnostic) -> anyhow::Error {
    let mut diags = trib_core::Diagnostics::new();
    diags.push(d);
    anyhow::anyhow!("{}", crate::render::snippets(&diags, &Default::default()).trim_end())
}
