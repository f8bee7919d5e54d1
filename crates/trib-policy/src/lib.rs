//! Governance as code: Rego policies under `policies/`, evaluated with `regorus`
//! against every contract of a project.
//!
//! ```text
//!   policies/*.rego ──► Engine ◄── input: one contract (normalized JSON)
//!                         │        data.project: every contract and the declared roles
//!                         ▼
//!        deny / warn sets ──► Diagnostics located in the contract file
//! ```
//!
//! A policy is a package with `deny` (errors) and/or `warn` (warnings) partial sets.
//! Each member is either a message string or an object
//! `{"msg": "...", "path": "schema.customer_id", "hint": "..."}` where `path` locates the
//! offending part of the contract. This crate must not read data or open tables.

use std::path::{Path, PathBuf};
use trib_core::{Diagnostic, Diagnostics, Location};
use trib_spec::Project;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read policy directory `{path}`: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// A loaded set of policies.
pub struct Policies {
    engine: regorus::Engine,
    /// Package paths (`data.tributary.pii`) with the file that declared them.
    packages: Vec<(String, String)>,
    /// Whether a policy reads the project document (`data.project`); building it for
    /// thousands of products costs more than the evaluations that do not.
    reads_project: bool,
}

/// Result of loading: the policies that compiled and a diagnostic for each that did not.
pub struct Loaded {
    pub policies: Policies,
    pub diagnostics: Diagnostics,
}

/// One policy file as text, named as it should appear in diagnostics.
pub struct PolicySource {
    pub name: String,
    pub text: String,
}

/// Reads every `*.rego` file of a directory, sorted by name. A missing directory holds
/// no policies.
pub fn read_dir(dir: &Path, display_base: &Path) -> Result<Vec<PolicySource>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rego"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let name = path
            .strip_prefix(display_base)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        out.push(PolicySource { name, text });
    }
    Ok(out)
}

impl Policies {
    pub fn load(sources: &[PolicySource]) -> Loaded {
        let mut engine = regorus::Engine::new();
        let mut packages = Vec::new();
        let mut diagnostics = Diagnostics::new();
        let reads_project = sources
            .iter()
            .any(|s| s.text.contains("data.") || s.text.contains("data["));
        for src in sources {
            // Compile each file alone first so one broken file does not hide the others.
            let mut probe = regorus::Engine::new();
            if let Err(e) = probe.add_policy(src.name.clone(), src.text.clone()) {
                diagnostics.push(rego_error(&src.name, &src.text, &e.to_string()));
                continue;
            }
            match engine.add_policy(src.name.clone(), src.text.clone()) {
                Ok(pkg) => {
                    if !packages.iter().any(|(p, _)| p == &pkg) {
                        packages.push((pkg, src.name.clone()));
                    }
                }
                Err(e) => diagnostics.push(rego_error(&src.name, &src.text, &e.to_string())),
            }
        }
        Loaded {
            policies: Policies {
                engine,
                packages,
                reads_project,
            },
            diagnostics,
        }
    }

    pub fn len(&self) -> usize {
        self.packages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// Evaluates every policy against every valid contract of the project.
    pub fn evaluate(&mut self, project: &Project) -> Diagnostics {
        self.evaluate_files(project, |_| true)
    }

    /// Evaluates every policy against the valid contracts `only` picks (those being
    /// applied, say), with the whole project as data.
    pub fn evaluate_files(
        &mut self,
        project: &Project,
        only: impl Fn(&trib_spec::ContractFile) -> bool,
    ) -> Diagnostics {
        let mut out = Diagnostics::new();
        if self.packages.is_empty() || !project.files.iter().any(|f| f.contract.is_some() && only(f)) {
            return out;
        }
        self.engine.clear_data();
        if self.reads_project {
            let products: Vec<serde_json::Value> = project.contracts().map(trib_spec::json::contract_json).collect();
            let roles: Vec<serde_json::Value> = project
                .settings
                .roles
                .iter()
                .map(|r| serde_json::json!({ "name": r.name, "pii": r.pii, "clearance": r.clearance }))
                .collect();
            let data = serde_json::json!({ "project": { "name": project.settings.project.name, "products": products, "roles": roles } });
            if let Err(e) = self.engine.add_data(regorus::Value::from(data)) {
                out.push(Diagnostic::error(
                    "policy::data",
                    format!("cannot load project data into the policy engine: {e}"),
                ));
                return out;
            }
        }
        for file in project.files.iter().filter(|f| only(f)) {
            let (Some(contract), Some(root)) = (&file.contract, &file.root) else {
                continue;
            };
            let input = trib_spec::json::contract_json(contract);
            self.engine.set_input(regorus::Value::from(input));
            for (pkg, policy_file) in self.packages.clone() {
                for (rule, severity) in [
                    ("deny", trib_core::Severity::Error),
                    ("warn", trib_core::Severity::Warning),
                ] {
                    let members = match self.eval_set(&format!("{pkg}.{rule}")) {
                        Ok(m) => m,
                        Err(e) => {
                            out.push(
                                Diagnostic::error(
                                    "policy::eval",
                                    format!(
                                        "policy `{pkg}` failed on `{}`: {}",
                                        contract.product.value,
                                        first_line(&e)
                                    ),
                                )
                                .with_help(format!("fix the rule in `{policy_file}`")),
                            );
                            continue;
                        }
                    };
                    for v in members {
                        out.push(violation(&pkg, &policy_file, severity, &v, file, root));
                    }
                }
            }
        }
        out
    }

    fn eval_set(&mut self, rule: &str) -> Result<Vec<serde_json::Value>, String> {
        let results = self
            .engine
            .eval_query(rule.to_string(), false)
            .map_err(|e| e.to_string())?;
        let Some(first) = results.result.first().and_then(|r| r.expressions.first()) else {
            return Ok(Vec::new()); // undefined: the package has no such rule
        };
        if first.value == regorus::Value::Undefined {
            return Ok(Vec::new());
        }
        match serde_json::to_value(&first.value).map_err(|e| e.to_string())? {
            serde_json::Value::Array(items) => Ok(items),
            serde_json::Value::Null => Ok(Vec::new()),
            other => Err(format!("`{rule}` must be a set of messages, found {other}")),
        }
    }
}

fn violation(
    pkg: &str,
    policy_file: &str,
    severity: trib_core::Severity,
    v: &serde_json::Value,
    file: &trib_spec::ContractFile,
    root: &trib_spec::yaml::Node,
) -> Diagnostic {
    let (msg, path, hint) = match v {
        serde_json::Value::String(s) => (s.clone(), None, None),
        serde_json::Value::Object(o) => (
            o.get("msg")
                .and_then(|m| m.as_str())
                .map_or_else(|| v.to_string(), str::to_string),
            o.get("path").and_then(|p| p.as_str()).map(str::to_string),
            o.get("hint").and_then(|h| h.as_str()).map(str::to_string),
        ),
        other => (other.to_string(), None, None),
    };
    let node = path
        .as_deref()
        .and_then(|p| trib_spec::yaml::locate(root, p))
        .or_else(|| root.get("product"));
    let location = node.map(|n| file.source.location(n.span));
    let name = pkg.trim_start_matches("data.");
    let mut d = match severity {
        trib_core::Severity::Error => Diagnostic::error(format!("policy::{name}"), msg),
        trib_core::Severity::Warning => Diagnostic::warning(format!("policy::{name}"), msg),
    };
    d = d.with_maybe_location(location).with_label(format!("violates `{name}`"));
    d.with_help(hint.unwrap_or_else(|| format!("see the policy in `{policy_file}`")))
}

/// Turns a regorus compile error (`--> file:line:col` in its text) into a located
/// diagnostic.
fn rego_error(name: &str, text: &str, err: &str) -> Diagnostic {
    let mut location = None;
    for line in err.lines() {
        let Some(rest) = line.trim().strip_prefix("--> ") else {
            continue;
        };
        let mut parts = rest.rsplitn(3, ':');
        let col = parts.next().and_then(|c| c.trim().parse::<usize>().ok());
        let ln = parts.next().and_then(|l| l.trim().parse::<usize>().ok());
        if let (Some(ln), Some(col)) = (ln, col) {
            let offset = text
                .split_inclusive('\n')
                .take(ln.saturating_sub(1))
                .map(str::len)
                .sum::<usize>()
                + text
                    .lines()
                    .nth(ln.saturating_sub(1))
                    .and_then(|l| l.char_indices().nth(col.saturating_sub(1)).map(|(b, _)| b))
                    .unwrap_or(0);
            location = Some(Location {
                file: name.to_string(),
                line: ln,
                column: col,
                offset: offset.min(text.len()),
                length: 1,
            });
        }
        break;
    }
    let message = err
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or_else(|| first_line_str(err))
        .to_string();
    Diagnostic::error("policy::compile", format!("policy does not compile: {message}"))
        .with_maybe_location(location)
        .with_help("policies use Rego v1 syntax: `deny contains msg if { ... }`")
}

fn first_line(s: &str) -> String {
    first_line_str(s).to_string()
}

fn first_line_str(s: &str) -> &str {
    s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or(s)
}
