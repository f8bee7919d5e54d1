use crate::Outcome;
use crate::cli::{CheckArgs, GlobalArgs, OutputFormat};
use crate::git;
use anyhow::{Result, bail};
use std::path::Path;
use trib_core::{Diagnostic, Diagnostics};
use trib_spec::Project;

/// Everything `trib check` found.
pub struct CheckReport {
    pub project: Project,
    pub policies: usize,
    pub compared_against: Option<String>,
    pub diagnostics: Diagnostics,
}

/// Loads the project, runs every contract, model and policy check and, when `against`
/// is given (or the project is in git), compares versions with that revision.
pub fn run_checks(dir: &Path, against: Option<&str>, use_git: bool) -> Result<Result<CheckReport, Box<Diagnostic>>> {
    let project = match super::project(dir) {
        Ok(p) => p,
        Err(d) => return Ok(Err(d)),
    };
    run_checks_on(project, against, use_git, |_| true)
}

/// The checks of `trib check` on a loaded project, with the policies run over the
/// contracts `only` picks (`trib apply`: the ones it applies).
pub fn run_checks_on(
    mut project: trib_spec::Project,
    against: Option<&str>,
    use_git: bool,
    only: impl Fn(&trib_spec::ContractFile) -> bool,
) -> Result<Result<CheckReport, Box<Diagnostic>>> {
    let dir = project.dir.clone();
    let dir = dir.as_path();
    let mut diagnostics = project.diagnostics.clone();

    let policy_dir = dir.join(&project.settings.policies.dir);
    let sources = trib_policy::read_dir(&policy_dir, dir)?;
    let loaded = trib_policy::Policies::load(&sources);
    for src in &sources {
        project.sources.insert(src.name.clone(), src.text.clone());
    }
    diagnostics.extend(loaded.diagnostics);
    let mut policies = loaded.policies;
    diagnostics.extend(policies.evaluate_files(&project, only));

    let mut compared_against = None;
    if use_git {
        let top = git::toplevel(dir);
        let rev = match (against, &top) {
            (Some(r), Some(_)) => Some(r.to_string()),
            (Some(_), None) => bail!("`{}` is not in a git repository; hint: drop `--against`", dir.display()),
            (None, Some(t)) if git::has_revision(t, "HEAD") => Some("HEAD".to_string()),
            (None, _) => None,
        };
        if let Some(rev) = rev {
            diagnostics.extend(compare_versions(&project, &rev)?);
            compared_against = Some(rev);
        }
    }
    diagnostics.sort();
    Ok(Ok(CheckReport {
        policies: policies.len(),
        project,
        compared_against,
        diagnostics,
    }))
}

/// A breaking change without a major version bump is an error at the `version` line.
fn compare_versions(project: &Project, rev: &str) -> Result<Vec<Diagnostic>> {
    let mut out = Vec::new();
    // Only the contracts that changed since `rev` can break their version rules.
    let products = project.dir.join(&project.settings.project.products);
    let changed = git::changed_since(&products, rev)?;
    if changed.is_empty() {
        return Ok(out);
    }
    for file in &project.files {
        let Some(new) = &file.contract else { continue };
        let path = project.dir.join(&file.source.name);
        if !std::fs::canonicalize(&path).is_ok_and(|p| changed.contains(&p)) {
            continue;
        }
        let Some(old_text) = git::show(&project.dir.join(&file.source.name), rev)? else {
            continue;
        };
        let old_file = trib_spec::parse_contract(trib_spec::yaml::Source::new(
            format!("{rev}:{}", file.source.name),
            old_text,
        ));
        let Some(old) = old_file.contract else { continue };
        if old.product.value != new.product.value {
            continue;
        }
        let changes = trib_spec::diff::diff(&old, new);
        if let Some(problem) = trib_spec::diff::version_problem(&old, new, &changes) {
            let breaking: Vec<String> = changes
                .iter()
                .filter(|c| c.impact == trib_spec::diff::Impact::Breaking)
                .map(|c| format!("  - {}", c.message))
                .collect();
            let bump = trib_spec::diff::required_bump(&changes);
            let next = match bump {
                trib_spec::diff::Bump::Major => format!("{}.0.0", old.version.major + 1),
                trib_spec::diff::Bump::Minor => format!("{}.{}.0", old.version.major, old.version.minor + 1),
                _ => format!("{}.{}.{}", old.version.major, old.version.minor, old.version.patch + 1),
            };
            let mut help = format!("set `version: {next}` (compared with {rev})");
            if !breaking.is_empty() {
                help = format!("{help}; breaking changes:\n{}", breaking.join("\n"));
            }
            out.push(
                Diagnostic::error("contract::version-bump", problem)
                    .with_location(file.source.location(new.version.span))
                    .with_label("version must change")
                    .with_help(help),
            );
        }
    }
    Ok(out)
}

pub fn run(g: &GlobalArgs, args: &CheckArgs) -> Result<Outcome> {
    let report = match run_checks(&g.project, args.against.as_deref(), !args.no_git)? {
        Ok(r) => r,
        Err(d) => {
            let mut diags = Diagnostics::new();
            diags.push(*d);
            emit(args.format, &diags, &Default::default());
            return Ok(Outcome::Problems);
        }
    };
    emit(args.format, &report.diagnostics, &report.project.sources);
    if args.format == OutputFormat::Text {
        let files = report.project.files.len();
        let invalid = files - report.project.contracts().count();
        let products = if invalid == 0 {
            format!("{files} products")
        } else {
            format!("{files} products ({invalid} invalid)")
        };
        let models = report.project.models.len();
        let against = report
            .compared_against
            .as_deref()
            .map(|r| format!(", versions compared with {r}"))
            .unwrap_or_default();
        eprintln!(
            "checked {products}, {models} models, {} policies{against}: {}",
            report.policies,
            crate::render::summary(&report.diagnostics)
        );
    }
    Ok(if report.diagnostics.has_errors() {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}

pub fn emit(format: OutputFormat, diags: &Diagnostics, sources: &std::collections::BTreeMap<String, String>) {
    match format {
        OutputFormat::Text => {
            if !diags.is_empty() {
                eprint!("{}", crate::render::snippets(diags, sources));
            }
        }
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&crate::render::json(diags)).unwrap_or_default()
        ),
    }
}
