//! What a principal sees of a product: from the contract's `access` list, the columns'
//! `pii` and `classification` tags and the roles' clearances in `trib.toml`.

use crate::principal::Principal;
use std::collections::{BTreeMap, BTreeSet};
use trib_core::settings::{PiiMask, RoleSettings, Settings};
use trib_spec::{AccessGrant, AccessLevel, Classification, Contract};

/// How one column reaches a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnAccess {
    Clear,
    /// A `pii` column for a principal without PII clearance.
    Masked(PiiMask),
    /// Classified above every clearance the principal holds: not there at all.
    Hidden,
}

/// A product as one principal may read it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductView {
    /// Every column of the table, in table order.
    pub columns: Vec<(String, ColumnAccess)>,
    /// SQL predicate over the table's columns; rows where it is not true are not there.
    pub row_filter: Option<String>,
}

impl ProductView {
    /// Whether the principal sees the product exactly as stored.
    pub fn is_full(&self) -> bool {
        self.row_filter.is_none() && self.columns.iter().all(|(_, a)| *a == ColumnAccess::Clear)
    }
}

/// The roles of a project and how products grant them access.
#[derive(Debug, Clone)]
pub struct Grants {
    roles: BTreeMap<String, RoleSettings>,
    mask: PiiMask,
}

impl Grants {
    pub fn new(settings: &Settings) -> Self {
        Self {
            roles: settings.roles.iter().map(|r| (r.name.clone(), r.clone())).collect(),
            mask: settings.access.pii_mask,
        }
    }

    /// Whether `principal` may send events to `contract`'s product: admins, the owning
    /// team, and roles granted `write` or `admin`.
    pub fn may_write(&self, principal: &Principal, contract: &Contract) -> bool {
        principal.admin
            || principal.roles.contains(&contract.owner)
            || contract.access.iter().any(|g| {
                principal.roles.contains(&g.role.value) && matches!(g.level, AccessLevel::Write | AccessLevel::Admin)
            })
    }

    /// What `principal` sees of `contract`'s table with columns `table_columns`, or
    /// `None` when it may not read the product at all. Admins and members of the
    /// owning team see everything; anyone else needs a grant, and sees the union of
    /// what each of its granted roles sees.
    pub fn view(&self, principal: &Principal, contract: &Contract, table_columns: &[String]) -> Option<ProductView> {
        self.view_with_consumers(principal, contract, table_columns, &BTreeSet::new())
    }

    /// [`Grants::view`], with the product version's approved consumers (from the
    /// catalog) granted `read` too: a principal named as one, or holding a role named
    /// as one, reads it as that role would (a consumer that is no role of `trib.toml`
    /// sees public columns, PII masked, every row).
    pub fn view_with_consumers(
        &self,
        principal: &Principal,
        contract: &Contract,
        table_columns: &[String],
        consumers: &BTreeSet<String>,
    ) -> Option<ProductView> {
        let full = || ProductView {
            columns: table_columns.iter().map(|c| (c.clone(), ColumnAccess::Clear)).collect(),
            row_filter: None,
        };
        if principal.admin || principal.roles.contains(&contract.owner) {
            return Some(full());
        }
        let approved: Vec<AccessGrant> = consumers
            .iter()
            .filter(|c| {
                // A token's principal is `token:<name>`: the consumer is the name.
                let name = principal.name.strip_prefix("token:").unwrap_or(&principal.name);
                c.as_str() == name || principal.roles.contains(*c)
            })
            .map(|c| AccessGrant {
                role: trib_spec::decode::Spanned::new(c.clone(), Default::default()),
                level: AccessLevel::Read,
                row_filter: None,
            })
            .collect();
        let granted: Vec<_> = contract
            .access
            .iter()
            .filter(|g| principal.roles.contains(&g.role.value))
            .chain(approved.iter())
            .collect();
        if granted.is_empty() {
            return None;
        }
        if granted.iter().any(|g| g.level == AccessLevel::Admin) {
            return Some(full());
        }
        let settings = |role: &str| self.roles.get(role);
        let pii = granted.iter().any(|g| settings(&g.role.value).is_some_and(|r| r.pii));
        let clearance = granted
            .iter()
            .filter_map(|g| settings(&g.role.value).and_then(|r| r.clearance.as_deref()))
            .filter_map(|word| Classification::ALL.iter().find(|(w, _)| *w == word).map(|(_, c)| *c))
            .max()
            .unwrap_or(Classification::Public);
        let columns = table_columns
            .iter()
            .map(|name| {
                let access = match contract.column(name) {
                    Some(c) if c.classification.unwrap_or(Classification::Public) > clearance => ColumnAccess::Hidden,
                    Some(c) if c.pii && !pii => ColumnAccess::Masked(self.mask),
                    _ => ColumnAccess::Clear,
                };
                (name.clone(), access)
            })
            .collect();
        // Rows any granted role may see: one role without a filter sees them all.
        let row_filter = if granted.iter().any(|g| g.row_filter.is_none()) {
            None
        } else {
            let parts: Vec<String> = granted
                .iter()
                .filter_map(|g| g.row_filter.as_ref().map(|f| format!("({})", f.value)))
                .collect();
            Some(parts.join(" OR "))
        };
        Some(ProductView { columns, row_filter })
    }
}
