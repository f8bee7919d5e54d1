//! Where tables live: one root (a local directory or an object store URL) and a fixed
//! layout below it, so any engine finds a product's table by its address.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use trib_core::settings::StorageSettings;
use trib_spec::ProductName;
use url::Url;

/// The storage root of a project and the options to reach it.
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
    storage_options: HashMap<String, String>,
    /// Bytes a merge may hold in memory before spilling; `None` for no limit.
    merge_memory: Option<usize>,
}

impl Lake {
    /// The lake of a project's `[storage]` settings: the root, and for an S3 root the
    /// endpoint, region and HTTP permission as storage options. Credentials still come
    /// from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, …).
    pub fn from_settings(settings: &StorageSettings, project_dir: &Path) -> Result<Self> {
        let mut lake = Self::new(&settings.root, project_dir)?;
        lake.merge_memory = settings
            .merge_memory_mb
            .map(|mb| usize::try_from(mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX));
        if !lake.is_s3() {
            return Ok(lake);
        }
        if let Some(endpoint) = &settings.endpoint {
            let bad = |message: String| Error::BadRoot {
                root: settings.root.clone(),
                message,
            };
            let url = Url::parse(endpoint).map_err(|e| bad(format!("endpoint `{endpoint}`: {e}")))?;
            // Caught here: the HTTP client would only say "builder error" on first use.
            if url.scheme() == "http" && !settings.allow_http {
                return Err(bad(format!(
                    "endpoint `{endpoint}` is plain HTTP\nhint: set `allow_http = true` under `[storage]` \
                     (or `TRIB_STORAGE_ALLOW_HTTP=true`) for a local or test store"
                )));
            }
        }
        Ok(lake.with_storage_options(storage_options(settings)))
    }

    /// `root` as written in the settings: a path (relative to `project_dir`) or a URL
    /// such as `s3://bucket/prefix`. Credentials and endpoints for object stores come
    /// from the environment (`AWS_*`), as every S3 tool reads them, and from
    /// [`Lake::with_storage_options`].
    pub fn new(root: &str, project_dir: &Path) -> Result<Self> {
        let bad = |message: String| Error::BadRoot {
            root: root.to_string(),
            message,
        };
        let url = if root.contains("://") {
            Url::parse(root).map_err(|e| bad(e.to_string()))?
        } else {
            let path = if Path::new(root).is_absolute() {
                Path::new(root).to_path_buf()
            } else {
                project_dir.join(root)
            };
            std::fs::create_dir_all(&path).map_err(|e| bad(format!("cannot create the directory: {e}")))?;
            let path = std::fs::canonicalize(&path).map_err(|e| bad(e.to_string()))?;
            Url::from_directory_path(&path).map_err(|()| bad("not an absolute path".into()))?
        };
        if is_s3(&url) {
            deltalake::aws::register_handlers(None);
        }
        Ok(Self {
            root: with_trailing_slash(url),
            storage_options: HashMap::new(),
            merge_memory: None,
        })
    }

    /// Replaces the options given to every table's object store (keys as delta-rs and
    /// `object_store` read them, e.g. `AWS_ENDPOINT_URL`). They win over the environment.
    pub fn with_storage_options(mut self, options: HashMap<String, String>) -> Self {
        self.storage_options = options;
        self
    }

    /// Limits the memory of merges into this lake's tables (bytes).
    pub fn with_merge_memory(mut self, bytes: Option<usize>) -> Self {
        self.merge_memory = bytes;
        self
    }

    pub fn merge_memory(&self) -> Option<usize> {
        self.merge_memory
    }

    pub fn storage_options(&self) -> &HashMap<String, String> {
        &self.storage_options
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    /// Whether tables live in an S3-compatible object store.
    pub fn is_s3(&self) -> bool {
        is_s3(&self.root)
    }

    /// `<root>/<domain>/<name>/v<major>/`
    pub fn product_url(&self, product: &ProductName, major: u64) -> Url {
        self.join(&format!("{}/{}/v{major}/", product.domain(), product.name()))
    }

    /// `<root>/_dead_letters/<domain>/<name>/v<major>/`
    pub fn dead_letter_url(&self, product: &ProductName, major: u64) -> Url {
        self.join(&format!(
            "_dead_letters/{}/{}/v{major}/",
            product.domain(),
            product.name()
        ))
    }

    /// Where a merged product version keeps its deleted keys.
    pub fn tombstone_url(&self, product: &ProductName, major: u64) -> Url {
        self.join(&format!(
            "_tombstones/{}/{}/v{major}/",
            product.domain(),
            product.name()
        ))
    }

    /// `<root>/_trib/<name>/`: the project's own tables (audit, quality results).
    pub fn system_url(&self, name: &str) -> Url {
        self.join(&format!("_trib/{name}/"))
    }

    fn join(&self, rel: &str) -> Url {
        // Every part is a validated lowercase identifier, so joining cannot fail.
        self.root.join(rel).unwrap_or_else(|_| self.root.clone())
    }
}

/// Storage options for an S3 root from the `[storage]` settings, in the keys delta-rs
/// reads; a setting left out adds no key, so `AWS_*` variables still apply.
///
/// Nothing else is needed for safe concurrent commits: delta-rs writes each commit with
/// a conditional put (`If-None-Match: *`, object_store's default `etag` mode), which AWS
/// S3, MinIO, SeaweedFS and R2 honour, and object_store addresses buckets path-style
/// unless told otherwise, as S3-compatible servers expect.
fn storage_options(settings: &StorageSettings) -> HashMap<String, String> {
    let mut options = HashMap::new();
    if let Some(endpoint) = &settings.endpoint {
        options.insert("AWS_ENDPOINT_URL".to_string(), endpoint.clone());
    }
    if let Some(region) = &settings.region {
        options.insert("AWS_REGION".to_string(), region.clone());
    }
    if settings.allow_http {
        options.insert("AWS_ALLOW_HTTP".to_string(), "true".to_string());
    }
    options
}

fn is_s3(url: &Url) -> bool {
    matches!(url.scheme(), "s3" | "s3a")
}

fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(root: &str) -> StorageSettings {
        StorageSettings {
            root: root.to_string(),
            endpoint: Some("http://127.0.0.1:8333".to_string()),
            region: Some("eu-west-1".to_string()),
            allow_http: true,
            merge_memory_mb: None,
        }
    }

    #[test]
    fn s3_settings_become_storage_options() {
        let lake = Lake::from_settings(&settings("s3://lake/prod"), Path::new("/")).expect("lake");
        assert!(lake.is_s3());
        assert_eq!(lake.root().as_str(), "s3://lake/prod/");
        let options = lake.storage_options();
        assert_eq!(options["AWS_ENDPOINT_URL"], "http://127.0.0.1:8333");
        assert_eq!(options["AWS_REGION"], "eu-west-1");
        assert_eq!(options["AWS_ALLOW_HTTP"], "true");
        assert_eq!(options.len(), 3);
        // Unset settings leave the environment in charge.
        let plain = StorageSettings {
            root: "s3://lake".to_string(),
            ..StorageSettings::default()
        };
        assert!(storage_options(&plain).is_empty());
    }

    #[test]
    fn plain_http_endpoints_need_permission() {
        let mut s = settings("s3://lake");
        s.allow_http = false;
        let err = Lake::from_settings(&s, Path::new("/"))
            .expect_err("refused")
            .to_string();
        assert!(err.contains("allow_http = true"), "{err}");
        s.endpoint = Some("https://s3.example.com".into());
        assert!(Lake::from_settings(&s, Path::new("/")).is_ok());
        s.endpoint = Some("not a url".into());
        assert!(Lake::from_settings(&s, Path::new("/")).is_err());
    }

    #[test]
    fn local_roots_take_no_options() {
        let dir = tempfile::tempdir().expect("tmp");
        let lake = Lake::from_settings(&settings("lake"), dir.path()).expect("lake");
        assert!(!lake.is_s3());
        assert_eq!(lake.root().scheme(), "file");
        assert!(lake.storage_options().is_empty());
    }
}
