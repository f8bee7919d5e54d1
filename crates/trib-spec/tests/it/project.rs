//! Checks that span products: folders, inputs, cycles, model SQL, roles.

use std::path::Path;

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn product(name: &str, layer: &str, source: &str, extra: &str) -> String {
    format!(
        "product: {name}\nversion: 1.0.0\nowner: team\nlayer: {layer}\nsource: {source}\n{extra}schema:\n  - {{ name: id, type: string, required: true }}\n  - {{ name: amount, type: double }}\n"
    )
}

fn project_with(files: &[(&str, String)]) -> trib_spec::Project {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "trib.toml",
        "[project]\nname = \"t\"\n\n[[roles]]\nname = \"analysts\"\n",
    );
    for (rel, text) in files {
        write(dir.path(), rel, text);
    }
    let p = trib_spec::load_project(dir.path()).expect("loads");
    // Keep the directory alive for the assertions that read files through `p.dir`.
    std::mem::forget(dir);
    p
}

fn codes(p: &trib_spec::Project) -> Vec<String> {
    p.diagnostics.iter().map(|d| d.code.clone()).collect()
}

#[test]
fn a_valid_dag_passes() {
    let p = project_with(&[
        ("products/s/raw.yaml", product("s.raw", "bronze", "{ kind: http }", "")),
        (
            "products/s/clean.yaml",
            product(
                "s.clean",
                "silver",
                "{ inputs: [s.raw], transform: models/clean.sql }",
                "",
            ),
        ),
        (
            "models/clean.sql",
            "WITH x AS (SELECT * FROM s.raw) SELECT id, amount FROM x".into(),
        ),
    ]);
    assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
    assert_eq!(p.models.len(), 1);
}

#[test]
fn inputs_cycles_and_sql_are_checked() {
    let p = project_with(&[
        (
            "products/s/a.yaml",
            product("s.a", "silver", "{ inputs: [s.b], transform: models/a.sql }", ""),
        ),
        (
            "products/s/b.yaml",
            product("s.b", "silver", "{ inputs: [s.a], transform: models/b.sql }", ""),
        ),
        (
            "products/s/c.yaml",
            product(
                "s.c",
                "gold",
                "{ inputs: [s.a, s.missing], transform: models/c.sql }",
                "",
            ),
        ),
        (
            "products/s/d.yaml",
            product("s.d", "gold", "{ inputs: [s.a], transform: models/d.sql }", ""),
        ),
        (
            "products/s/e.yaml",
            product("s.e", "gold", "{ inputs: [s.a], transform: models/nope.sql }", ""),
        ),
        ("models/a.sql", "SELECT * FROM s.b".into()),
        ("models/b.sql", "SELECT * FROM s.a".into()),
        ("models/c.sql", "SELECT * FROM s.a JOIN s.secret USING (id)".into()),
        ("models/d.sql", "SELECT id,\n  FROM s.a WHERE (amount >".into()),
    ]);
    let c = codes(&p);
    for code in [
        "project::cycle",
        "project::unknown-input",
        "project::undeclared-input",
        "project::bad-transform",
        "project::missing-transform",
    ] {
        assert!(c.contains(&code.to_string()), "missing {code}: {c:?}");
    }
    let undeclared = p
        .diagnostics
        .iter()
        .find(|d| d.code == "project::undeclared-input")
        .expect("undeclared");
    let loc = undeclared.location.as_ref().expect("located in the SQL");
    assert_eq!(loc.file, "models/c.sql");
    assert!(undeclared.message.contains("s.secret"));
    let bad = p
        .diagnostics
        .iter()
        .find(|d| d.code == "project::bad-transform")
        .expect("bad sql");
    assert_eq!(bad.location.as_ref().map(|l| l.file.as_str()), Some("models/d.sql"));
    let cycle = p
        .diagnostics
        .iter()
        .find(|d| d.code == "project::cycle")
        .expect("cycle");
    assert!(cycle.message.contains("`s.a` → `s.b` → `s.a`"), "{}", cycle.message);
}

#[test]
fn folders_roles_versions_and_relationships() {
    let p = project_with(&[
        (
            "products/x/a.yaml",
            product(
                "s.a",
                "bronze",
                "{ kind: http }",
                "access:\n  - { role: analyst, row_filter: \"amount > 0\" }\n",
            ),
        ),
        (
            "products/s/b.yaml",
            product(
                "s.b",
                "bronze",
                "{ kind: http }",
                "quality:\n  - relationships: { column: id, to: s.a, field: nope }\n",
            ),
        ),
        (
            "products/s/b_again.yaml",
            product("s.b", "bronze", "{ kind: http }", ""),
        ),
        (
            "products/s/c.yaml",
            product("s.c", "gold", "{ inputs: [s.b@v2], transform: models/c.sql }", ""),
        ),
        ("models/c.sql", "SELECT * FROM \"s.b@v2\"".into()),
    ]);
    let c = codes(&p);
    for code in [
        "project::wrong-folder",
        "project::unknown-role",
        "project::duplicate-product",
        "project::unknown-input-version",
        "project::unknown-column",
    ] {
        assert!(c.contains(&code.to_string()), "missing {code}: {c:?}");
    }
    let role = p
        .diagnostics
        .iter()
        .find(|d| d.code == "project::unknown-role")
        .expect("role");
    assert!(
        role.help
            .as_deref()
            .is_some_and(|h| h.contains("did you mean `analysts`")),
        "{role:?}"
    );
}

#[test]
fn broken_settings_are_fatal_and_located() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "trib.toml",
        "[project]\nname = \"t\"\n[storage]\nroot = 5\n",
    );
    let err = trib_spec::load_project(dir.path()).expect_err("fatal");
    assert_eq!(err.location.as_ref().map(|l| l.line), Some(4));
}
