//! API tokens: `trib_<id>_<secret>`, shown once at creation and stored only as a
//! SHA-256 hash in `.trib/tokens.json`, with the roles they carry.
//!
//! The file is re-read when it changes, so `trib token revoke` takes effect on a
//! running server at its next request.

use crate::principal::Principal;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;
use trib_core::settings::Settings;

const PREFIX: &str = "trib_";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public part of the token, shown in lists and the audit.
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    /// SHA-256 of the whole token, in hex.
    pub hash: String,
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    tokens: Vec<TokenRecord>,
}

pub struct TokenStore {
    path: PathBuf,
    /// The file as last read, with the modification time it had.
    cache: Mutex<Option<(Option<SystemTime>, Vec<TokenRecord>)>>,
}

impl TokenStore {
    pub fn open(project_dir: &Path) -> Self {
        Self {
            path: project_dir.join(".trib").join("tokens.json"),
            cache: Mutex::new(None),
        }
    }

    pub fn list(&self) -> Result<Vec<TokenRecord>> {
        self.read()
    }

    /// Creates a token for `roles`; returns its record and the token itself, which is
    /// not stored anywhere.
    pub fn create(&self, name: &str, roles: Vec<String>) -> Result<(TokenRecord, String)> {
        if roles.is_empty() {
            return Err(Error::Token {
                message: "a token needs at least one role".into(),
                hint: "pass `--role ROLE` (roles are declared in trib.toml under [[roles]])",
            });
        }
        let mut tokens = self.read()?;
        if tokens.iter().any(|t| t.name == name && t.revoked.is_none()) {
            return Err(Error::Token {
                message: format!("a token named `{name}` exists"),
                hint: "pick another name, or revoke the old token first",
            });
        }
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let token = format!("{PREFIX}{id}_{secret}");
        let record = TokenRecord {
            id,
            name: name.to_string(),
            roles,
            hash: hash(&token),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            revoked: None,
        };
        tokens.push(record.clone());
        self.write(tokens)?;
        Ok((record, token))
    }

    /// Revokes the token with this id or name.
    pub fn revoke(&self, id_or_name: &str) -> Result<TokenRecord> {
        let mut tokens = self.read()?;
        let Some(t) = tokens
            .iter_mut()
            .find(|t| t.revoked.is_none() && (t.id == id_or_name || t.name == id_or_name))
        else {
            return Err(Error::Token {
                message: format!("no live token with id or name `{id_or_name}`"),
                hint: "`trib token list` shows them",
            });
        };
        t.revoked = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let revoked = t.clone();
        self.write(tokens)?;
        Ok(revoked)
    }

    /// The principal a bearer token stands for.
    pub fn authenticate(&self, token: &str, settings: &Settings) -> Result<Principal> {
        let id = token
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .map(|(id, _)| id)
            .ok_or(Error::InvalidToken)?;
        let tokens = self.read()?;
        let record = tokens.iter().find(|t| t.id == id).ok_or(Error::InvalidToken)?;
        // Hashes of secrets are compared, so timing reveals nothing about the secret.
        if record.hash != hash(token) {
            return Err(Error::InvalidToken);
        }
        if record.revoked.is_some() {
            return Err(Error::RevokedToken { id: record.id.clone() });
        }
        Ok(Principal::with_roles(
            format!("token:{}", record.name),
            record.roles.iter().cloned(),
            settings,
        ))
    }

    fn read(&self) -> Result<Vec<TokenRecord>> {
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, tokens)) = cache.as_ref()
            && *at == modified
            && modified.is_some()
        {
            return Ok(tokens.clone());
        }
        let tokens = match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                serde_json::from_str::<TokenFile>(&text)
                    .map_err(|e| Error::Token {
                        message: format!("`{}` is not a token file: {e}", self.path.display()),
                        hint: "restore it from a backup, or delete it and create the tokens again",
                    })?
                    .tokens
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(Error::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        *cache = Some((modified, tokens.clone()));
        Ok(tokens)
    }

    /// Writes the whole file through a temporary file and a rename, so a reader never
    /// sees half of it.
    fn write(&self, tokens: Vec<TokenRecord>) -> Result<()> {
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(&TokenFile { tokens })
            .map_err(|e| Error::Internal(format!("token file: {e}")))?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_authenticate_revoke() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = Settings::with_name("t");
        let store = TokenStore::open(dir.path());
        let (record, token) = store.create("ci", vec!["orders-analysts".into()]).expect("created");
        let text = std::fs::read_to_string(dir.path().join(".trib/tokens.json")).expect("file");
        assert!(!text.contains(&token), "the token itself is never stored");
        let p = store.authenticate(&token, &settings).expect("valid");
        assert_eq!(p.roles.iter().collect::<Vec<_>>(), ["orders-analysts"]);
        assert!(!p.admin);
        let forged = format!("{}x", &token[..token.len() - 1]);
        assert!(matches!(
            store.authenticate(&forged, &settings),
            Err(Error::InvalidToken)
        ));
        assert!(matches!(
            store.authenticate("nonsense", &settings),
            Err(Error::InvalidToken)
        ));
        // Another store on the same file sees the revocation.
        TokenStore::open(dir.path()).revoke(&record.name).expect("revoked");
        assert!(matches!(
            store.authenticate(&token, &settings),
            Err(Error::RevokedToken { .. })
        ));
    }
}
