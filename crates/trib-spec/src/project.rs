//! A project directory: settings, every contract under `products/`, the SQL of models,
//! and the checks that span products (inputs, cycles, SQL relations, roles).

use crate::contract::{ContractFile, parse_contract};
use crate::model::{CheckKind, Contract, ProductName, Source as ProductSource};
use crate::sql::{self, ModelQuery, ModelSqlError};
use crate::yaml::{NodeSpan, Source};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use trib_core::{Diagnostic, Diagnostics, Location, Settings};

#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    pub settings: Settings,
    pub files: Vec<ContractFile>,
    /// Parsed model SQL by product address and major version.
    pub models: HashMap<(ProductName, u64), ModelQuery>,
    /// Source texts by the file name used in diagnostics (contracts and SQL).
    pub sources: BTreeMap<String, String>,
    pub diagnostics: Diagnostics,
}

impl Project {
    /// Valid contracts, in file order.
    pub fn contracts(&self) -> impl Iterator<Item = &Contract> {
        self.files.iter().filter_map(|f| f.contract.as_ref())
    }

    /// The newest major version of a product.
    pub fn latest(&self, name: &ProductName) -> Option<&Contract> {
        self.contracts()
            .filter(|c| &c.product.value == name)
            .max_by_key(|c| c.major())
    }

    pub fn file_of(&self, name: &ProductName) -> Option<&ContractFile> {
        self.files
            .iter()
            .filter(|f| f.contract.as_ref().is_some_and(|c| &c.product.value == name))
            .max_by_key(|f| f.contract.as_ref().map(Contract::major))
    }
}

/// Loads a project with the settings of its `trib.toml` alone (no environment
/// overrides). A missing or broken `trib.toml` is the only fatal problem.
pub fn load_project(dir: &Path) -> Result<Project, Box<Diagnostic>> {
    Ok(load_project_with(dir, Settings::load(dir)?))
}

/// Loads a project with settings merged by the caller and runs every check that does
/// not need data; every problem is a diagnostic.
pub fn load_project_with(dir: &Path, settings: Settings) -> Project {
    let products_dir = dir.join(&settings.project.products);
    let mut paths = Vec::new();
    collect_yaml(&products_dir, &mut paths);
    paths.sort();
    let mut diagnostics = Diagnostics::new();
    if paths.is_empty() {
        diagnostics.push(
            Diagnostic::warning(
                "project::no-products",
                format!("no contracts under `{}`", settings.project.products),
            )
            .with_help("add `products/<domain>/<name>.yaml`; `trib init` writes examples"),
        );
    }
    // Contracts parse independently: spread them over the cores (a project of
    // thousands of contracts is read on every command), then keep the paths' order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let chunk = paths.len().div_ceil(threads).max(64);
    let parsed: Vec<Result<(String, ContractFile), Diagnostic>> = std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|p| read_contract(dir, p)).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    let mut files = Vec::with_capacity(parsed.len());
    let mut sources = BTreeMap::new();
    for result in parsed {
        match result {
            Ok((text, file)) => {
                sources.insert(file.source.name.clone(), text);
                diagnostics.extend(file.diagnostics.clone());
                files.push(file);
            }
            Err(d) => diagnostics.push(d),
        }
    }
    for (text, file) in crate::tiers::generate(&files) {
        sources.insert(file.source.name.clone(), text);
        diagnostics.extend(file.diagnostics.clone());
        files.push(file);
    }
    let mut project = Project {
        dir: dir.to_path_buf(),
        settings,
        files,
        models: HashMap::new(),
        sources,
        diagnostics: Diagnostics::new(),
    };
    check_project(&mut project, &mut diagnostics);
    diagnostics.sort();
    project.diagnostics = diagnostics;
    project
}

/// Reads and parses one contract file: its text and what it says, or why it cannot be read.
fn read_contract(dir: &Path, path: &Path) -> Result<(String, ContractFile), Diagnostic> {
    let name = relative(dir, path);
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::error("project::unreadable", format!("cannot read `{name}`: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Diagnostic::error(
            "yaml::not-utf8",
            format!(
                "`{name}` is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
        .with_help("save the contract as UTF-8")
    })?;
    let file = parse_contract(Source::new(name, text.clone()));
    Ok((text, file))
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(&path, out);
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(path);
        }
    }
}

fn relative(base: &Path, path: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn at(file: &ContractFile, span: NodeSpan) -> Location {
    file.source.location(span)
}

fn check_project(project: &mut Project, diags: &mut Diagnostics) {
    let products_dir = project.settings.project.products.clone();
    // Address and folder.
    let mut seen: HashMap<(ProductName, u64), String> = HashMap::new();
    for file in &project.files {
        let Some(c) = &file.contract else { continue };
        let folder = file
            .source
            .name
            .strip_prefix(&format!("{products_dir}/"))
            .and_then(|rest| rest.split_once('/'))
            .map(|(d, _)| d.to_string());
        if folder.as_deref() != Some(c.domain()) {
            diags.push(
                Diagnostic::error(
                    "project::wrong-folder",
                    format!(
                        "product `{}` belongs to domain `{}` but its file is not under `{products_dir}/{}/`",
                        c.product.value,
                        c.domain(),
                        c.domain()
                    ),
                )
                .with_location(at(file, c.product.span))
                .with_help(format!("move the file to `{products_dir}/{}/`", c.domain())),
            );
        }
        let key = (c.product.value.clone(), c.major());
        if let Some(other) = seen.get(&key) {
            diags.push(
                Diagnostic::error(
                    "project::duplicate-product",
                    format!(
                        "`{}` major version {} is also declared in `{other}`",
                        c.product.value,
                        c.major()
                    ),
                )
                .with_location(at(file, c.product.span))
                .with_help("each product version lives in one file; bump the major version for a new table"),
            );
        } else {
            seen.insert(key, file.source.name.clone());
        }
    }
    let majors: HashMap<&ProductName, Vec<u64>> = {
        let mut m: HashMap<&ProductName, Vec<u64>> = HashMap::new();
        for c in project.contracts() {
            m.entry(&c.product.value).or_default().push(c.major());
        }
        m
    };
    let names: Vec<String> = majors.keys().map(|p| p.to_string()).collect();
    // Products whose contract has errors of its own: references to them are not
    // reported a second time.
    let invalid: Vec<ProductName> = project
        .files
        .iter()
        .filter(|f| f.contract.is_none())
        .filter_map(|f| f.root.as_ref()?.get("product")?.as_str()?.parse().ok())
        .collect();
    let role_names: Vec<&str> = project.settings.roles.iter().map(|r| r.name.as_str()).collect();
    // Clearances name a classification level.
    for r in &project.settings.roles {
        if let Some(c) = &r.clearance
            && !crate::model::Classification::ALL.iter().any(|(w, _)| w == c)
        {
            diags.push(
                Diagnostic::error(
                    "settings::unknown-clearance",
                    format!(
                        "role `{}` has clearance `{c}`, which is not a classification level",
                        r.name
                    ),
                )
                .with_help("use one of `public`, `internal`, `confidential`, `restricted`"),
            );
        }
    }

    let mut models = HashMap::new();
    let mut sql_sources = BTreeMap::new();
    for file in &project.files {
        let Some(c) = &file.contract else { continue };
        // Inputs exist.
        for input in c.inputs() {
            match majors.get(&input.product) {
                None if invalid.contains(&input.product) => {}
                None => {
                    let help = match trib_core::diagnostic::did_you_mean(
                        &input.product.to_string(),
                        names.iter().map(String::as_str),
                    ) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "declare the input product under `products/`, or fix the address".to_string(),
                    };
                    diags.push(
                        Diagnostic::error(
                            "project::unknown-input",
                            format!("input `{}` is not a product of this project", input.value),
                        )
                        .with_location(at(file, input.span))
                        .with_help(help),
                    );
                }
                Some(ms) => {
                    if let Some(m) = input.major
                        && !ms.contains(&m)
                    {
                        diags.push(
                            Diagnostic::error(
                                "project::unknown-input-version",
                                format!(
                                    "input `{}` asks for major version {m}, which is not declared",
                                    input.value
                                ),
                            )
                            .with_location(at(file, input.span))
                            .with_help(format!(
                                "declared major versions: {}",
                                ms.iter().map(|m| format!("v{m}")).collect::<Vec<_>>().join(", ")
                            )),
                        );
                    }
                }
            }
        }
        // Relationships point at existing products and fields.
        for q in &c.quality {
            if let CheckKind::Relationships { to, field, .. } = &q.kind {
                match project.latest(&to.value) {
                    None if invalid.contains(&to.value) => {}
                    None => diags.push(
                        Diagnostic::error(
                            "project::unknown-product",
                            format!(
                                "`relationships` refers to `{}`, which is not a product of this project",
                                to.value
                            ),
                        )
                        .with_location(at(file, to.span))
                        .with_help("fix the address, or declare that product"),
                    ),
                    Some(other) if other.column(field).is_none() => diags.push(
                        Diagnostic::error(
                            "project::unknown-column",
                            format!("`{}` has no column `{field}`", to.value),
                        )
                        .with_location(at(file, to.span))
                        .with_help(format!(
                            "columns of `{}`: {}",
                            to.value,
                            other
                                .schema
                                .iter()
                                .map(|c| c.name.value.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    ),
                    Some(_) => {}
                }
            }
        }
        // Roles exist.
        for g in &c.access {
            if !role_names.contains(&g.role.value.as_str()) {
                let help = match trib_core::diagnostic::did_you_mean(&g.role.value, role_names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`? roles are declared in trib.toml under [[roles]]"),
                    None => format!("declare it in trib.toml: [[roles]] name = \"{}\"", g.role.value),
                };
                diags.push(
                    Diagnostic::error(
                        "project::unknown-role",
                        format!("role `{}` is not declared", g.role.value),
                    )
                    .with_location(at(file, g.role.span))
                    .with_help(help),
                );
            }
        }
        // Model SQL.
        if let ProductSource::Model(m) = &c.source
            && let Some(q) = check_model_sql(&project.dir, file, c, m, &mut sql_sources, diags)
        {
            models.insert((c.product.value.clone(), c.major()), q);
        }
    }
    project.models = models;
    project.sources.extend(sql_sources);
    check_cycles(project, diags);
    crate::tiers::check(project, diags);
}

fn check_model_sql(
    dir: &Path,
    file: &ContractFile,
    c: &Contract,
    model: &crate::model::ModelSource,
    sources: &mut BTreeMap<String, String>,
    diags: &mut Diagnostics,
) -> Option<ModelQuery> {
    let transform = &model.transform;
    let sql_name = match &model.sql {
        // Inline SQL is shown under its contract's name.
        Some(_) => format!("{} (sql)", file.source.name),
        None => transform.value.trim_start_matches("./").to_string(),
    };
    let text = match model.read_sql(dir) {
        Ok(t) => t,
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    "project::missing-transform",
                    format!("cannot read transform `{}`: {e}", transform.value),
                )
                .with_location(at(file, transform.span))
                .with_help("paths are relative to the project directory, e.g. `models/orders.sql`"),
            );
            return None;
        }
    };
    sources.insert(sql_name.clone(), text.clone());
    let query = match sql::parse_model(&text) {
        Ok(q) => q,
        Err(e) => {
            // Errors without a position are at the end of the text ("expected ...").
            let location = match &e {
                ModelSqlError::Parse(p) => match p.line {
                    Some(l) => sql_location(&sql_name, &text, l, p.column.unwrap_or(1)),
                    None => {
                        let trimmed = text.trim_end();
                        let line = trimmed.lines().count().max(1);
                        let column = trimmed.lines().last().map_or(0, |l| l.chars().count()).max(1);
                        sql_location(&sql_name, &text, line, column)
                    }
                },
                _ => sql_location(&sql_name, &text, 1, 1),
            };
            diags.push(
                Diagnostic::error(
                    "project::bad-transform",
                    format!("transform of `{}` does not parse: {e}", c.product.value),
                )
                .with_location(location)
                .with_help("a model is one SQL query over its inputs (DataFusion SQL)"),
            );
            return None;
        }
    };
    let declared: Vec<String> = c.inputs().iter().map(|i| i.value.to_string()).collect();
    let plain: Vec<String> = c.inputs().iter().map(|i| i.product.to_string()).collect();
    for rel in &query.relations {
        let known = declared.iter().chain(plain.iter()).any(|d| d.eq_ignore_ascii_case(rel));
        if !known {
            diags.push(
                Diagnostic::error(
                    "project::undeclared-input",
                    format!(
                        "transform of `{}` reads `{rel}`, which is not among its inputs",
                        c.product.value
                    ),
                )
                .with_location(find_in_sql(&sql_name, &text, rel).unwrap_or_else(|| at(file, transform.span)))
                .with_help(format!(
                    "add `{rel}` to `source.inputs`, or read only declared inputs: {}",
                    declared.join(", ")
                )),
            );
        }
    }
    for input in c.inputs() {
        let used = query.relations.iter().any(|r| {
            r.eq_ignore_ascii_case(&input.value.to_string()) || r.eq_ignore_ascii_case(&input.product.to_string())
        });
        if !used {
            diags.push(
                Diagnostic::warning(
                    "project::unused-input",
                    format!("input `{}` is declared but the transform does not read it", input.value),
                )
                .with_location(at(file, input.span))
                .with_help("remove it from `inputs`, or use it in the SQL"),
            );
        }
    }
    Some(query)
}

fn sql_location(name: &str, text: &str, line: usize, column: usize) -> Location {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            offset += l
                .char_indices()
                .nth(column.saturating_sub(1))
                .map_or(l.len(), |(b, _)| b);
            break;
        }
        offset += l.len();
    }
    Location {
        file: name.to_string(),
        line,
        column,
        offset: offset.min(text.len()),
        length: 1,
    }
}

fn find_in_sql(name: &str, text: &str, needle: &str) -> Option<Location> {
    let offset = text.find(needle)?;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some(Location {
        file: name.to_string(),
        line,
        column,
        offset,
        length: needle.len(),
    })
}

fn check_cycles(project: &Project, diags: &mut Diagnostics) {
    // Edges by product name (any major): a cycle through any version is a cycle.
    let mut edges: BTreeMap<ProductName, Vec<ProductName>> = BTreeMap::new();
    for c in project.contracts() {
        edges
            .entry(c.product.value.clone())
            .or_default()
            .extend(c.inputs().iter().map(|i| i.product.clone()));
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    let mut marks: HashMap<ProductName, Mark> = HashMap::new();
    let mut reported = false;
    fn visit(
        n: &ProductName,
        edges: &BTreeMap<ProductName, Vec<ProductName>>,
        marks: &mut HashMap<ProductName, Mark>,
        stack: &mut Vec<ProductName>,
    ) -> Option<Vec<ProductName>> {
        match marks.get(n) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = stack.iter().position(|s| s == n).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(n.clone());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(n.clone(), Mark::Visiting);
        stack.push(n.clone());
        for next in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, edges, marks, stack) {
                return Some(c);
            }
        }
        stack.pop();
        marks.insert(n.clone(), Mark::Done);
        None
    }
    for n in edges.keys() {
        if reported {
            break;
        }
        let mut stack = Vec::new();
        if let Some(cycle) = visit(n, &edges, &mut marks, &mut stack) {
            reported = true;
            let first = &cycle[0];
            let location = project.file_of(first).and_then(|f| {
                f.contract
                    .as_ref()
                    .and_then(|c| c.inputs().first().map(|i| at(f, i.span)))
            });
            diags.push(
                Diagnostic::error(
                    "project::cycle",
                    format!(
                        "products depend on each other in a cycle: {}",
                        cycle.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(" → ")
                    ),
                )
                .with_maybe_location(location)
                .with_help("models must form a DAG; break the cycle by removing one of these inputs"),
            );
        }
    }
}
