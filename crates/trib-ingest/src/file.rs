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

/// The SHA-256 of a file, being computed on a blocking thread: start it as early as
/// possible, since a file's first commit waits for it.
pub struct ContentId(tokio::task::JoinHandle<Result<String>>);

impl ContentId {
    pub fn of(path: &std::path::Path) -> Self {
        let owned = path.to_path_buf();
        Self(tokio::task::spawn_blocking(move || {
            content_id(&owned).map(|h| format!("file:{h}"))
        }))
    }
}

/// Ingests a file: its chunks commit exactly once under `file:<SHA-256 of the
/// content>` (`content`, see [`ContentId::of`]) and their index. The hash is computed
/// while the first chunks are read and prepared.
pub async fn ingest_path(
    ingestor: &mut Ingestor,
    path: &std::path::Path,
    content: ContentId,
    opts: FileIngest<'_>,
) -> Result<FileReport> {
    let file = std::fs::File::open(path).map_err(|e| Error::Io {
        what: path.display().to_string(),
        source: e,
    })?;
    let input = std::io::BufReader::with_capacity(1 << 20, file);
    ingest_chunks(ingestor, input, AppId::Hashing(content.0), opts).await
}

/// Ingests a stream of NDJSON, CSV or a JSON array. With `app_id`, each chunk commits
/// exactly once under `(app_id, chunk index)`.
pub async fn ingest_reader(
    ingestor: &mut Ingestor,
    input: impl BufRead + Send + 'static,
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
    mut input: impl BufRead + Send + 'static,
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
    let mut header = None;
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
    // Chunks are read on a thread of their own and queued ahead of the one committing,
    // and prepared one at a time in their order (each on every core), so that the next
    // one is ready as soon as the commit before it is done, and reading, validation and
    // Parquet encoding overlap.
    let mut chunks = read_ahead(input, header, opts.batch_records.max(1));
    let preparer = ingestor.preparer();
    let one_at_a_time = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
    let mut ahead: std::collections::VecDeque<(tokio::task::JoinHandle<Result<Prepared>>, i64, u64)> =
        std::collections::VecDeque::new();
    let mut at_end = false;
    loop {
        // Takes the next chunk as soon as it is read while the oldest prepares, and
        // commits the oldest when it is ready.
        let wants_chunk = !at_end && ahead.len() <= AHEAD;
        let chunk = match ahead.front_mut() {
            None if !wants_chunk => break,
            None => chunks.recv().await,
            Some((task, _, _)) => {
                tokio::select! {
                    biased;
                    c = chunks.recv(), if wants_chunk => c,
                    prepared = task => {
                        let prepared = prepared.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
                        let Some((_, chunk, upto)) = ahead.pop_front() else {
                            continue;
                        };
                        let app_id = app.get().await?;
                        report.app_id = app_id.clone();
                        let batch = Batch {
                            app_id: &app_id,
                            chunk,
                            received_at_micros,
                        };
                        commit_prepared(ingestor, &opts, prepared, batch, &mut report).await?;
                        (opts.progress)(upto);
                        continue;
                    }
                }
            }
        };
        let Some(chunk) = chunk else {
            at_end = true;
            continue;
        };
        let (body, bytes) = chunk.map_err(io)?;
        consumed += bytes;
        // While the file is still being hashed, chunks are prepared unchecked; the
        // commit checks them.
        let id = app.ready().flatten().map(|a| BatchId::new(a.clone(), chunk_index));
        let held = match &id {
            Some(id) => ingestor.holds(id).await?,
            None => false,
        };
        if held {
            report.batches += 1;
            report.skipped_batches += 1;
        } else {
            let (p, format, turn) = (preparer.clone(), opts.format, one_at_a_time.clone());
            let task = tokio::spawn(async move {
                let _turn = turn.acquire_owned().await;
                p.prepare(format, bytes::Bytes::from(body)).await
            });
            ahead.push_back((task, chunk_index, consumed));
        }
        chunk_index += 1;
    }
    report.app_id = app.get().await?;
    Ok(report)
}

/// Chunks read ahead of the one committing.
const AHEAD: usize = 2;

/// Reads chunks of `per_chunk` lines (each after `header`, when there is one) on a
/// blocking thread, one ahead of the receiver: each with its body and the bytes of
/// input it took. The thread stops at the end of the input, at an error, or when the
/// receiver is dropped.
fn read_ahead(
    mut input: impl BufRead + Send + 'static,
    header: Option<Vec<u8>>,
    per_chunk: usize,
) -> tokio::sync::mpsc::Receiver<std::io::Result<(Vec<u8>, u64)>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::task::spawn_blocking(move || {
        let mut body_hint = 0usize;
        loop {
            let mut body: Vec<u8> = Vec::with_capacity(body_hint);
            body.extend_from_slice(header.as_deref().unwrap_or_default());
            let started = std::time::Instant::now();
            let chunk = match read_lines(&mut input, &mut body, per_chunk) {
                Ok((0, _)) => return,
                Ok((records, bytes)) => {
                    tracing::debug!(
                        records,
                        bytes,
                        read_ms = started.elapsed().as_secs_f64() * 1e3,
                        "chunk read"
                    );
                    body_hint = body_hint.max(body.len() + body.len() / 8);
                    Ok((body, bytes))
                }
                Err(e) => Err(e),
            };
            let failed = chunk.is_err();
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// Appends up to `want` lines (each with its line end; the last of the input may have
/// none) to `body`, in whole runs of the reader's buffer. Returns the lines and bytes
/// taken: the same chunks as reading line by line.
fn read_lines(input: &mut impl BufRead, body: &mut Vec<u8>, want: usize) -> std::io::Result<(usize, u64)> {
    let (mut lines, mut bytes) = (0usize, 0u64);
    // Whether the bytes taken so far end inside a line.
    let mut open = false;
    while lines < want {
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        let mut take = buf.len();
        let mut ends = 0;
        for p in memchr::memchr_iter(b'\n', buf) {
            ends += 1;
            if lines + ends == want {
                take = p + 1;
                break;
            }
        }
        body.extend_from_slice(&buf[..take]);
        lines += ends;
        open = buf[take - 1] != b'\n';
        bytes += take as u64;
        input.consume(take);
    }
    // A last line without a line end is a line too.
    if open {
        lines += 1;
    }
    Ok((lines, bytes))
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

#[cfg(test)]
mod tests {
    use super::read_lines;
    use std::io::BufRead;

    /// Chunks as reading line by line makes them: `want` lines each, the last line
    /// counted with or without its line end.
    fn by_lines(input: &[u8], want: usize) -> Vec<(Vec<u8>, usize)> {
        let mut r = std::io::BufReader::new(input);
        let mut out = Vec::new();
        loop {
            let (mut body, mut n) = (Vec::new(), 0);
            while n < want && r.read_until(b'\n', &mut body).expect("read") > 0 {
                n += 1;
            }
            if n == 0 {
                return out;
            }
            out.push((body, n));
        }
    }

    #[test]
    fn chunks_are_those_of_reading_line_by_line() {
        let inputs: [&[u8]; 6] = [
            b"",
            b"a\n",
            b"a\nbb\nccc\ndddd\n",
            b"a\nbb\nccc\ndddd",
            b"\n\n\nx\r\n\n",
            b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n{\"a\":4}\n{\"a\":5}",
        ];
        for input in inputs {
            for want in 1..=6 {
                // Buffers smaller than a line, and larger than the input.
                for capacity in [1, 2, 3, 5, 64] {
                    let mut r = std::io::BufReader::with_capacity(capacity, input);
                    let mut got = Vec::new();
                    let mut total = 0;
                    loop {
                        let mut body = Vec::new();
                        let (n, bytes) = read_lines(&mut r, &mut body, want).expect("read");
                        if n == 0 {
                            break;
                        }
                        assert_eq!(bytes as usize, body.len());
                        total += bytes;
                        got.push((body, n));
                    }
                    assert_eq!(got, by_lines(input, want), "{input:?} by {want}, buffer {capacity}");
                    assert_eq!(total as usize, input.len());
                }
            }
        }
    }
}
