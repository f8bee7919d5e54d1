//! Files and stdin: read in chunks of whole records, each chunk one exactly-once batch.
//!
//! A file's batches are identified by the SHA-256 of its content and the chunk index,
//! so ingesting the same file again (or resuming after a crash) writes only the
//! chunks not yet committed.

use crate::dead_letter::Provenance;
use crate::format::Format;
use crate::pipeline::{BatchId, BatchReport, Ingestor, Prepared};
use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::{BufRead, Read};

/// Options for one file.
pub struct FileIngest<'a> {
    pub format: Format,
    /// Records per commit.
    pub batch_records: usize,
    /// `file:<path>` or `stdin`.
    pub source: String,
    /// Called with the number of bytes consumed so far.
    pub progress: &'a mut dyn FnMut(u64),
}

/// Summary of a whole file.
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    pub total: BatchReport,
    pub batches: u64,
    /// Batches skipped because an earlier run had committed them.
    pub skipped_batches: u64,
    pub app_id: Option<String>,
}

/// SHA-256 of a file, hex, for the application id of its batches.
pub fn content_id(path: &std::path::Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::Io {
        what: path.display().to_string(),
        source: e,
    })?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::Io {
            what: path.display().to_string(),
            source: e,
        })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect())
}

/// Ingests a file: its chunks commit exactly once under `file:<SHA-256 of the
/// content>` and their index. The hash is computed while the first chunk is prepared.
pub async fn ingest_path(ingestor: &mut Ingestor, path: &std::path::Path, opts: FileIngest<'_>) -> Result<FileReport> {
    let file = std::fs::File::open(path).map_err(|e| Error::Io {
        what: path.display().to_string(),
        source: e,
    })?;
    let owned = path.to_path_buf();
    let hashing = tokio::task::spawn_blocking(move || content_id(&owned).map(|h| format!("file:{h}")));
    let input = std::io::BufReader::with_capacity(1 << 20, file);
    ingest_chunks(ingestor, input, AppId::Hashing(hashing), opts).await
}

/// Ingests a stream of NDJSON, CSV or a JSON array. With `app_id`, each chunk commits
/// exactly once under `(app_id, chunk index)`.
pub async fn ingest_reader(
    ingestor: &mut Ingestor,
    input: impl BufRead,
    app_id: Option<String>,
    opts: FileIngest<'_>,
) -> Result<FileReport> {
    ingest_chunks(ingestor, input, AppId::Known(app_id), opts).await
}

/// The application id of a file's batches: known, or still being computed.
enum AppId {
    Known(Option<String>),
    Hashing(tokio::task::JoinHandle<Result<String>>),
}

impl AppId {
    async fn get(&mut self) -> Result<Option<String>> {
        if let AppId::Hashing(task) = self {
            let id = task
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
            *self = AppId::Known(Some(id));
        }
        match self {
            AppId::Known(id) => Ok(id.clone()),
            AppId::Hashing(_) => Ok(None),
        }
    }

    /// The id, once it is known.
    fn ready(&self) -> Option<Option<&String>> {
        match self {
            AppId::Known(id) => Some(id.as_ref()),
            AppId::Hashing(_) => None,
        }
    }
}

async fn ingest_chunks(
    ingestor: &mut Ingestor,
    mut input: impl BufRead,
    mut app: AppId,
    opts: FileIngest<'_>,
) -> Result<FileReport> {
    let received_at_micros = chrono::Utc::now().timestamp_micros();
    let mut report = FileReport::default();
    let mut consumed: u64 = 0;
    let mut chunk_index: i64 = 0;
    let io = |e| Error::Io {
        what: opts.source.clone(),
        source: e,
    };
    let mut header: Option<Vec<u8>> = None;
    if matches!(opts.format, Format::JsonArray | Format::Parquet) {
        // An array or a Parquet file is one document: read it whole.
        let mut body = Vec::new();
        input.read_to_end(&mut body).map_err(io)?;
        consumed += body.len() as u64;
        let prepared = ingestor
            .preparer()
            .prepare(opts.format, bytes::Bytes::from(body))
            .await?;
        let app_id = app.get().await?;
        report.app_id = app_id.clone();
        let batch = Batch {
            app_id: &app_id,
            chunk: chunk_index,
            received_at_micros,
        };
        commit_prepared(ingestor, &opts, prepared, batch, &mut report).await?;
        (opts.progress)(consumed);
        return Ok(report);
    }
    if opts.format == Format::Csv {
        let mut h = Vec::new();
        consumed += input.read_until(b'\n', &mut h).map_err(io)? as u64;
        header = Some(h);
    }
    // One chunk is read and prepared while the one before it commits.
    let preparer = ingestor.preparer();
    let mut in_flight: Option<(tokio::task::JoinHandle<Result<Prepared>>, i64, u64)> = None;
    loop {
        let mut body: Vec<u8> = header.clone().unwrap_or_default();
        let mut records = 0usize;
        while records < opts.batch_records.max(1) {
            let n = input.read_until(b'\n', &mut body).map_err(io)?;
            if n == 0 {
                break;
            }
            consumed += n as u64;
            records += 1;
        }
        let mut next = None;
        if records > 0 {
            // While the file is still being hashed, chunks are prepared unchecked; the
            // commit checks them.
            let id = app.ready().flatten().map(|a| BatchId::new(a.clone(), chunk_index));
            next = match &id {
                Some(id) if ingestor.holds(id).await? => {
                    report.batches += 1;
                    report.skipped_batches += 1;
                    None
                }
                _ => {
                    let (p, format) = (preparer.clone(), opts.format);
                    let task = tokio::spawn(async move { p.prepare(format, bytes::Bytes::from(body)).await });
                    Some((task, chunk_index, consumed))
                }
            };
            chunk_index += 1;
        }
        if let Some((task, chunk, upto)) = in_flight.take() {
            let prepared = task
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
            let app_id = app.get().await?;
            report.app_id = app_id.clone();
            let batch = Batch {
                app_id: &app_id,
                chunk,
                received_at_micros,
            };
            commit_prepared(ingestor, &opts, prepared, batch, &mut report).await?;
            (opts.progress)(upto);
        }
        in_flight = next;
        if records == 0 {
            break;
        }
    }
    report.app_id = app.get().await?;
    Ok(report)
}

/// Which chunk of which input a batch is.
struct Batch<'a> {
    app_id: &'a Option<String>,
    chunk: i64,
    received_at_micros: i64,
}

impl Batch<'_> {
    /// The chunk's exactly-once id, when the input has one, and its provenance.
    fn id(&self, opts: &FileIngest<'_>) -> (Option<BatchId>, Provenance) {
        let id = self.app_id.as_ref().map(|a| BatchId::new(a.clone(), self.chunk));
        let provenance = Provenance {
            received_at_micros: self.received_at_micros,
            source: opts.source.clone(),
            batch_id: match &id {
                Some(b) => format!("{}#{}", b.app_id, b.version),
                None => format!("{}#{}", opts.source, self.chunk),
            },
        };
        (id, provenance)
    }
}

async fn commit_prepared(
    ingestor: &mut Ingestor,
    opts: &FileIngest<'_>,
    prepared: Prepared,
    batch: Batch<'_>,
    report: &mut FileReport,
) -> Result<()> {
    let (id, provenance) = batch.id(opts);
    let r = ingestor.commit_prepared(prepared, &provenance, id.as_ref()).await?;
    report.batches += 1;
    if r.duplicate {
        report.skipped_batches += 1;
    } else {
        report.total.add(&r);
    }
    Ok(())
}
