//! Reading the change data feed of tables whose file paths need escaping.
//!
//! The Delta log stores each file's `path` URI-encoded (an hour partition value
//! `2026-03-15 14:00:00` is the folder `…=2026-03-15%2014%3A00%3A00…`, written in the
//! log as `%2520…`). delta-rs 1.1 decodes it for snapshot scans but hands the raw log
//! path to the change-data-feed scan, which then asks the store for a file that does
//! not exist. The feed is read through this store, which decodes such paths once, as
//! the snapshot scan does.

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, Result,
};
use std::ops::Range;
use std::sync::Arc;

/// The same table, opened over a store that decodes the log's paths once, so that its
/// change data feed finds its files.
pub(crate) async fn readable(table: &deltalake::DeltaTable) -> deltalake::DeltaResult<deltalake::DeltaTable> {
    let log_store = table.log_store();
    let url = log_store.root_url().clone();
    let store: Arc<dyn ObjectStore> = Arc::new(DecodedPaths(log_store.root_object_store(None)));
    let mut reopened = deltalake::DeltaTableBuilder::from_url(url.clone())?
        .with_storage_backend(store, url)
        .build()?;
    match table.version() {
        Some(v) => reopened.load_version(v).await?,
        None => reopened.load().await?,
    }
    Ok(reopened)
}

#[derive(Debug)]
pub(crate) struct DecodedPaths(pub Arc<dyn ObjectStore>);

impl std::fmt::Display for DecodedPaths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DecodedPaths({})", self.0)
    }
}

/// The path as stored: the log's path decoded once.
fn stored(location: &Path) -> Path {
    let raw = location.as_ref();
    if !raw.contains("%25") {
        return location.clone();
    }
    match percent_encoding::percent_decode_str(raw).decode_utf8() {
        Ok(decoded) => Path::parse(decoded.as_ref()).unwrap_or_else(|_| location.clone()),
        Err(_) => location.clone(),
    }
}

#[async_trait::async_trait]
impl ObjectStore for DecodedPaths {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.0.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.0.get_opts(&stored(location), options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.0.get_ranges(&stored(location), ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.0.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.0.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.0.copy_opts(from, to, options).await
    }
}
