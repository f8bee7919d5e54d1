//! Masks for `pii` columns: NULL, or a keyed hash that keeps equal values equal, so a
//! masked column still joins and counts distinct values without revealing them.

use crate::{Error, Result};
use datafusion::arrow::array::{Array, ArrayRef, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::path::Path;
use std::sync::Arc;

/// The mask key: `TRIB_MASK_KEY`, else `.trib/mask.key` in the project (created with
/// 32 random bytes on first use). Instances that must produce joinable hashes share it.
pub(crate) fn load_key(project_dir: &Path) -> Result<Arc<[u8]>> {
    if let Some(k) = std::env::var_os("TRIB_MASK_KEY").filter(|k| !k.is_empty()) {
        return Ok(Arc::from(k.to_string_lossy().as_bytes()));
    }
    let path = project_dir.join(".trib").join("mask.key");
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => hex::decode(text.trim()).map(Arc::from).map_err(|_| Error::Token {
            message: format!("`{}` does not hold a hex key", path.display()),
            hint: "delete it to have a new key made (masked values change), or set TRIB_MASK_KEY",
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
                .iter()
                .flat_map(|u| *u.as_bytes())
                .collect();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            std::fs::write(&path, hex::encode(&key)).map_err(io)?;
            Ok(Arc::from(key))
        }
        Err(e) => Err(io(e)),
    }
}

/// `mask(value)`: the first 16 bytes of HMAC-SHA256(key, value as text), in hex.
/// Deliberately not registered under a name: queries cannot call it, only views use it.
pub(crate) fn hash_udf(key: Arc<[u8]>) -> ScalarUDF {
    ScalarUDF::from(MaskHash {
        key: KeyBytes(key),
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MaskHash {
    key: KeyBytes,
    signature: Signature,
}

/// Keeps the key out of `Debug` output (plans are logged).
#[derive(PartialEq, Eq, Hash)]
struct KeyBytes(Arc<[u8]>);

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBytes(..)")
    }
}

impl ScalarUDFImpl for MaskHash {
    fn name(&self) -> &str {
        "mask"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::common::Result<ColumnarValue> {
        let values = args.args[0].to_array(args.number_rows)?;
        Ok(ColumnarValue::Array(hash_array(&self.key.0, &values)?))
    }
}

/// The masked form of `values`: each value as text, HMAC-SHA256'd with `key`, the first
/// 16 bytes in hex; nulls stay null.
pub(crate) fn hash_array(key: &[u8], values: &ArrayRef) -> datafusion::common::Result<ArrayRef> {
    let text = cast(values, &DataType::Utf8)?;
    let text = text
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| datafusion::error::DataFusionError::Internal("mask: text cast".into()))?;
    let mut out = StringBuilder::with_capacity(text.len(), text.len() * 32);
    for v in text.iter() {
        match v {
            None => out.append_null(),
            Some(v) => {
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
                    .map_err(|e| datafusion::error::DataFusionError::Internal(format!("mask key: {e}")))?;
                mac.update(v.as_bytes());
                let digest = mac.finalize().into_bytes();
                out.append_value(hex::encode(&digest[..16]));
            }
        }
    }
    Ok(Arc::new(out.finish()))
}
