//! Where tables live: one root (a local directory or an object store URL) and a fixed
//! layout below it, so any engine finds a product's table by its address.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use trib_spec::ProductName;
use url::Url;

/// The storage root of a project and the options to reach it.
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
    storage_options: HashMap<String, String>,
}

impl Lake {
    /// `root` as written in the settings: a path (relative to `project_dir`) or a URL
    /// such as `s3://bucket/prefix`. Credentials and endpoints for object stores come
    /// from the environment (`AWS_*`), as every S3 tool reads them.
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
        if url.scheme() == "s3" || url.scheme() == "s3a" {
            deltalake::aws::register_handlers(None);
        }
        Ok(Self {
            root: with_trailing_slash(url),
            storage_options: HashMap::new(),
        })
    }

    pub fn with_storage_options(mut self, options: HashMap<String, String>) -> Self {
        self.storage_options = options;
        self
    }

    pub fn storage_options(&self) -> &HashMap<String, String> {
        &self.storage_options
    }

    pub fn root(&self) -> &Url {
        &self.root
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

    fn join(&self, rel: &str) -> Url {
        // Every part is a validated lowercase identifier, so joining cannot fail.
        self.root.join(rel).unwrap_or_else(|_| self.root.clone())
    }
}

fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    url
}
