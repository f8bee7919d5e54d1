//! Where a product's certification is looked up, shared between the crate that earns
//! it (trib-quality) and those that report it (serving, `trib show`).

/// Current certification of product major versions.
pub trait CertificationStatus: Send + Sync {
    /// The state (`candidate`, `certified`, `degraded`, `decertified`, `draft`) of a
    /// product's major version, or `None` before its first evaluation.
    fn state(&self, product: &str, major: u64) -> Option<String>;
}
