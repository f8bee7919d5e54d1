use crate::Outcome;
use crate::cli::{GlobalArgs, IngestArgs, OutputFormat};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;
use trib_ingest::Format;
use trib_ingest::file::{FileIngest, FileReport, ingest_path, ingest_reader};
use trib_spec::{Contract, Layer, Project};

pub fn run(g: &GlobalArgs, args: &IngestArgs) -> Result<Outcome> {
    let project = super::project(&g.project).map_err(|d| super::fatal(*d))?;
    let contract = bronze_contract(&project, &args.product)?;
    let format = match (&args.input_format, &args.file) {
        (Some(f), _) => Format::parse(f).context("unknown format")?,
        (None, Some(p)) if p.as_os_str() != "-" => Format::from_path(p).with_context(|| {
            format!(
                "cannot tell the format of `{}` from its extension; hint: pass `--input-format ndjson|json|csv`",
                p.display()
            )
        })?,
        (None, _) => Format::Ndjson,
    };
    let lake = super::lake(&project)?;
    let started = Instant::now();
    let rt = super::runtime()?;
    let (report, committed) = rt.block_on(async {
        // The file's content id first: the first commit waits for it.
        let file = args.file.as_deref().filter(|p| p.as_os_str() != "-");
        let content = file.map(trib_ingest::file::ContentId::of);
        let mut ing = trib_ingest::Ingestor::open(&lake, &contract).await?;
        // Rows are kept only for the checks that run after the last commit.
        if !contract.quality.is_empty() {
            ing = ing.keep_committed(KEEP_FOR_CHECKS);
        }
        let report = match file.zip(content) {
            Some((path, content)) => ingest_file(&mut ing, &contract, path, content, format, args.batch_size).await?,
            None => {
                let stdin = std::io::BufReader::with_capacity(1 << 20, std::io::stdin());
                let mut progress = |_: u64| {};
                let opts = FileIngest {
                    format,
                    batch_records: args.batch_size,
                    source: "stdin".into(),
                    progress: &mut progress,
                };
                ingest_reader(&mut ing, stdin, None, opts).await?
            }
        };
        anyhow::Ok((report, ing.take_committed()))
    })?;
    print_report(&contract, &report, started.elapsed(), args.format);
    // The new rows against the contract's checks; the records are in either way.
    if !contract.quality.is_empty() {
        let project = std::sync::Arc::new(project);
        let run = rt.block_on(async {
            let checker =
                trib_quality::Checker::open(lake.clone(), project, std::sync::Arc::new(trib_core::SystemClock)).await?;
            match &committed {
                Some(c) => checker.check_committed(&contract, c).await,
                None => checker.check_new(&contract).await,
            }
        });
        match run {
            Ok(Some(run)) if run.failed().next().is_some() => {
                eprint!("{}", super::quality::render_run(&run, true));
            }
            Ok(_) => {}
            Err(e) => eprintln!("warning: the checks of the new rows could not run: {e}"),
        }
    }
    Ok(Outcome::Ok)
}

/// Arrow memory of the ingested rows kept to check them without reading them back;
/// larger ingests read them back.
const KEEP_FOR_CHECKS: usize = 256 << 20;

/// The newest version of a product that takes ingested records.
pub fn bronze_contract(project: &Project, product: &str) -> Result<Contract> {
    let name: trib_spec::ProductName = product.parse().map_err(|e: trib_spec::ProductNameError| {
        anyhow::anyhow!("{e}; hint: {}", trib_spec::ProductNameError::HINT)
    })?;
    let Some(c) = project.latest(&name) else {
        if project
            .files
            .iter()
            .any(|f| f.root.as_ref().and_then(|r| r.get("product")).and_then(|n| n.as_str()) == Some(product))
        {
            bail!("the contract of `{name}` has errors; hint: run `trib check`");
        }
        bail!("no product `{name}` in this project; hint: `trib check` lists the products");
    };
    if c.layer != Layer::Bronze {
        bail!(
            "`{name}` is a {} product computed from its inputs; records are ingested into bronze products",
            c.layer
        );
    }
    Ok(c.clone())
}

/// Ingests one file with a progress bar on a terminal.
pub async fn ingest_file(
    ing: &mut trib_ingest::Ingestor,
    contract: &Contract,
    path: &Path,
    content: trib_ingest::file::ContentId,
    format: Format,
    batch_size: usize,
) -> Result<FileReport> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?
        .len();
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(size)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(contract.product.value.to_string());
    let mut progress = |b: u64| bar.set_position(b);
    let opts = FileIngest {
        format,
        batch_records: batch_size,
        source: format!("file:{}", path.display()),
        progress: &mut progress,
    };
    let report = ingest_path(ing, path, content, opts).await;
    bar.finish_and_clear();
    Ok(report?)
}

fn print_report(contract: &Contract, r: &FileReport, elapsed: std::time::Duration, format: OutputFormat) {
    let t = &r.total;
    let by_reason: serde_json::Map<String, serde_json::Value> = t
        .by_reason
        .iter()
        .map(|(k, v)| (k.code().to_string(), (*v).into()))
        .collect();
    match format {
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "product": contract.product.value.to_string(),
                "received": t.received,
                "accepted": t.accepted,
                "dead_lettered": t.dead_lettered,
                "dead_letters_by_reason": by_reason,
                "skipped_tombstones": t.skipped_tombstones,
                "expectation_warnings": t.expectation_warnings,
                "batches": r.batches,
                "skipped_batches": r.skipped_batches,
                "bronze_version": t.bronze_version,
                "seconds": elapsed.as_secs_f64(),
            });
            println!("{doc}");
        }
        OutputFormat::Text => {
            let rate = t.received as f64 / elapsed.as_secs_f64().max(1e-9);
            eprintln!(
                "{}: {} received, {} into bronze, {} dead-lettered in {:.2}s ({:.0} records/s)",
                contract.product.value,
                t.received,
                t.accepted,
                t.dead_lettered,
                elapsed.as_secs_f64(),
                rate
            );
            if !t.by_reason.is_empty() {
                let reasons: Vec<String> = t.by_reason.iter().map(|(k, v)| format!("{k} {v}")).collect();
                eprintln!("  dead letters by reason: {}", reasons.join(", "));
            }
            if !t.expectation_warnings.is_empty() {
                let w: Vec<String> = t.expectation_warnings.iter().map(|(k, v)| format!("{k} {v}")).collect();
                eprintln!("  kept despite `warn` expectations: {}", w.join(", "));
            }
            if t.skipped_tombstones > 0 {
                eprintln!(
                    "  {} Debezium tombstones skipped (delete markers, not records)",
                    t.skipped_tombstones
                );
            }
            if r.skipped_batches > 0 {
                eprintln!(
                    "  {} of {} batches were already ingested earlier and were skipped",
                    r.skipped_batches, r.batches
                );
            }
        }
    }
}
