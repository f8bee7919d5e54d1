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

const READINGS: &str = "product: iot.readings\nversion: 1.2.0\nowner: plant\nlayer: bronze\n\
source: { kind: http }\nevent_time: at\nwatermark: { allowed_lateness: 2m, late: dead_letter }\n\
schema:\n  - { name: device, type: string, required: true }\n  - { name: site, type: string }\n\
\x20 - { name: at, type: timestamp, required: true }\n  - { name: celsius, type: double }\n\
\x20 - { name: count, type: int32 }\n\
access:\n  - { role: analysts, level: read }\n";

#[test]
fn tiers_generate_downsampled_products() {
    let p = project_with(&[(
        "products/iot/readings.yaml",
        format!(
            "{READINGS}tiers:\n  - {{ resolution: raw, retention: 7d }}\n  - {{ resolution: 1m, retention: 90d }}\n\
             \x20 - {{ resolution: 1h, retention: 7y, group_by: [site] }}\n"
        ),
    )]);
    assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
    let minute = p
        .contracts()
        .find(|c| c.product.value.to_string() == "iot.readings_1m")
        .expect("the minute tier");
    let columns: Vec<&str> = minute.schema.iter().map(|c| c.name.value.as_str()).collect();
    assert_eq!(
        columns,
        [
            "device",
            "site",
            "at",
            "samples",
            "celsius_avg",
            "celsius_min",
            "celsius_max",
            "count_avg",
            "count_min",
            "count_max"
        ]
    );
    assert_eq!(minute.version.value.to_string(), "1.2.0");
    assert_eq!(minute.retention.map(|r| r.to_string()), Some("90d".into()));
    assert_eq!(minute.access.len(), 1, "the raw product's grants");
    let Some(trib_spec::Source::Model(m)) = Some(&minute.source) else {
        panic!("a model")
    };
    assert_eq!(m.materialized, trib_spec::Materialization::Incremental);
    assert_eq!(m.inputs[0].value.to_string(), "iot.readings@v1");
    assert!(
        m.sql
            .as_deref()
            .is_some_and(|q| q.contains("tumble(\"at\", INTERVAL '60 seconds')")),
        "{:?}",
        m.sql
    );
    assert!(
        p.models.contains_key(&(minute.product.value.clone(), 1)),
        "the SQL is checked like any model's"
    );
    let hour = p
        .contracts()
        .find(|c| c.product.value.to_string() == "iot.readings_1h")
        .expect("the hour tier");
    let keys: Vec<&str> = hour.key.iter().map(|k| k.value.as_str()).collect();
    assert_eq!(keys, ["site", "at"]);
}

#[test]
fn tiers_are_checked() {
    let with = |tiers: &str, extra: &[(&str, String)]| {
        let mut files = vec![("products/iot/readings.yaml", format!("{READINGS}tiers:\n{tiers}"))];
        files.extend(extra.iter().cloned());
        codes(&project_with(&files))
    };
    let raw = "  - { resolution: raw, retention: 7d }\n";
    assert!(
        with(
            &format!("{raw}  - {{ resolution: 1m, retention: 90d, product: iot.nothing }}\n"),
            &[]
        )
        .contains(&"project::unknown-tier-product".to_string())
    );
    assert!(
        with(
            &format!("{raw}  - {{ resolution: 1m, retention: 90d, group_by: [room] }}\n"),
            &[]
        )
        .contains(&"contract::unknown-column".to_string())
    );
    let taken = product("iot.readings_1m", "bronze", "{ kind: http }", "");
    assert!(
        with(
            &format!("{raw}  - {{ resolution: 1m, retention: 90d }}\n"),
            &[("products/iot/readings_1m.yaml", taken.clone())]
        )
        .contains(&"project::tier-name-taken".to_string())
    );
    // A linked product must keep its rows as long as the tier says.
    let linked = format!(
        "{}retention: 30d\n",
        READINGS.replace("iot.readings\n", "iot.readings_1m\n")
    );
    assert!(
        with(
            &format!("{raw}  - {{ resolution: 1m, retention: 90d, product: iot.readings_1m }}\n"),
            &[("products/iot/readings_1m.yaml", linked)]
        )
        .contains(&"contract::bad-tiers".to_string())
    );
}
