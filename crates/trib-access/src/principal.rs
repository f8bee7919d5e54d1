//! Who is asking: a name and the roles it holds.

use crate::{Error, Result};
use std::collections::BTreeSet;
use trib_core::settings::Settings;

/// The built-in role that reads everything, may act as any role and reads the audit.
/// Roles declared in `trib.toml` with `admin = true` are its equals.
pub const ADMIN_ROLE: &str = "admin";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Shown in the audit: the token's name, `local`, or `local as ROLE`.
    pub name: String,
    pub roles: BTreeSet<String>,
    pub admin: bool,
    /// May see query plans (`EXPLAIN`): an admin, also while acting as a role, so that
    /// it can compare what a role's filters and masks do to a plan.
    pub explains: bool,
}

impl Principal {
    /// A principal holding `roles`; admin when one of them is.
    pub fn with_roles(name: impl Into<String>, roles: impl IntoIterator<Item = String>, settings: &Settings) -> Self {
        let roles: BTreeSet<String> = roles.into_iter().collect();
        let admin = roles
            .iter()
            .any(|r| r == ADMIN_ROLE || settings.roles.iter().any(|s| &s.name == r && s.admin));
        Self {
            name: name.into(),
            roles,
            admin,
            explains: admin,
        }
    }

    /// Whoever runs the CLI in the project directory: `access.local_roles`, or admin.
    pub fn local(settings: &Settings) -> Self {
        let roles = settings
            .access
            .local_roles
            .clone()
            .unwrap_or_else(|| vec![ADMIN_ROLE.to_string()]);
        Self::with_roles("local", roles, settings)
    }

    /// This principal acting with only `role`: allowed to admins, so they can see what
    /// a role sees.
    pub fn act_as(&self, role: &str, settings: &Settings) -> Result<Self> {
        if !self.admin {
            return Err(Error::NotPermitted {
                principal: self.name.clone(),
                action: format!("act as role `{role}`"),
                hint: "acting as another role needs an admin identity (`access.local_roles` in trib.toml, or an admin token)",
            });
        }
        Ok(Self {
            explains: true,
            ..Self::with_roles(format!("{} as {role}", self.name), [role.to_string()], settings)
        })
    }
}
