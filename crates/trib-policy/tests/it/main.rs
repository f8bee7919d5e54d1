//! The case study's policies, as shipped by `trib init`, against the example project
//! and against contracts that break them.

use std::path::{Path, PathBuf};
use trib_policy::{Policies, read_dir};

fn template() -> PathBuf {
    Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../trib/template")
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read template") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A copy of the example project with `edit` applied to one contract; returns the
/// policy diagnostics as (code, file, line, message).
fn violations(file: &str, edit: impl Fn(String) -> String) -> Vec<(String, String, usize, String)> {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&template(), dir.path());
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).expect("contract");
    let edited = edit(text.clone());
    assert_ne!(text, edited, "the edit must change {file}");
    std::fs::write(&path, edited).expect("write");
    let project = trib_spec::load_project(dir.path()).expect("project loads");
    assert!(
        !project.diagnostics.has_errors(),
        "edited contract must stay valid: {:?}",
        project.diagnostics
    );
    let sources = read_dir(&dir.path().join("policies"), dir.path()).expect("policies");
    let loaded = Policies::load(&sources);
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let mut policies = loaded.policies;
    assert_eq!(policies.len(), 3);
    policies
        .evaluate(&project)
        .into_iter()
        .filter(|d| d.is_error())
        .map(|d| {
            let loc = d.location.clone().expect("policy violations are located");
            (d.code, loc.file, loc.line, d.message)
        })
        .collect()
}

#[test]
fn example_project_passes_every_policy() {
    let project = trib_spec::load_project(&template()).expect("project loads");
    let sources = read_dir(&template().join("policies"), &template()).expect("policies");
    let mut policies = Policies::load(&sources).policies;
    let diags = policies.evaluate(&project);
    assert!(!diags.has_errors(), "{diags:?}");
    assert_eq!(diags.warning_count(), 0, "{diags:?}");
}

#[test]
fn pii_without_access_is_denied() {
    let v = violations("products/orders/orders_raw.yaml", |t| {
        let start = t.find("access:").expect("access block");
        let end = t[start..].find("quality:").expect("quality after access") + start;
        format!("{}{}", &t[..start], &t[end..])
    });
    assert_eq!(v.len(), 1, "{v:?}");
    let (code, file, line, msg) = &v[0];
    assert_eq!(code, "policy::tributary.pii_access");
    assert_eq!(file, "products/orders/orders_raw.yaml");
    assert!(msg.contains("customer_email"), "{msg}");
    // Located at the PII column's schema entry.
    let text = std::fs::read_to_string(template().join("products/orders/orders_raw.yaml")).expect("read");
    let expected = text
        .lines()
        .position(|l| l.contains("name: customer_email"))
        .expect("column")
        + 1;
    assert_eq!(*line, expected, "{msg}");
}

#[test]
fn pii_without_classification_is_denied() {
    let v = violations("products/web/clicks.yaml", |t| {
        t.replace(
            "{ name: user_id, type: string, pii: true, classification: confidential }",
            "{ name: user_id, type: string, pii: true }",
        )
    });
    assert!(
        v.iter()
            .any(|(code, _, _, msg)| code == "policy::tributary.pii_access" && msg.contains("user_id")),
        "{v:?}"
    );
}

#[test]
fn finance_products_keep_seven_years() {
    let v = violations("products/finance/monthly_revenue.yaml", |t| {
        t.replace("retention: 10y", "retention: 5y")
    });
    assert_eq!(v.len(), 1, "{v:?}");
    let (code, _, line, msg) = &v[0];
    assert_eq!(code, "policy::tributary.finance_retention");
    assert!(msg.contains("5y"), "{msg}");
    let text = std::fs::read_to_string(template().join("products/finance/monthly_revenue.yaml")).expect("read");
    let expected = text
        .lines()
        .position(|l| l.starts_with("retention:"))
        .expect("retention line")
        + 1;
    assert_eq!(*line, expected);

    let v = violations("products/finance/monthly_revenue.yaml", |t| {
        t.replace("retention: 10y\n", "")
    });
    assert!(
        v.iter()
            .any(|(c, _, _, m)| c == "policy::tributary.finance_retention" && m.contains("no retention")),
        "{v:?}"
    );

    // Tagged finance outside the finance domain counts too.
    let v = violations("products/orders/daily_revenue.yaml", |t| {
        t.replace("status: active\n", "status: active\ntags: [finance]\n")
    });
    assert!(
        v.iter()
            .any(|(c, f, _, _)| c == "policy::tributary.finance_retention" && f.ends_with("daily_revenue.yaml")),
        "{v:?}"
    );
}

#[test]
fn products_without_quality_checks_are_denied() {
    let v = violations("products/iot/readings_1h.yaml", |t| {
        let start = t.find("quality:").expect("quality");
        let end = t[start..].find("retention:").expect("retention after quality") + start;
        format!("{}{}", &t[..start], &t[end..])
    });
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].0, "policy::tributary.quality_required");
    assert!(v[0].3.contains("iot.readings_1h"));
}

#[test]
fn broken_policies_are_reported_with_their_location() {
    let sources = vec![
        trib_policy::PolicySource {
            name: "policies/bad.rego".into(),
            text: "package tributary.bad\n\ndeny contains msg {\n  msg := \"x\"\n}\n".into(),
        },
        trib_policy::PolicySource {
            name: "policies/good.rego".into(),
            text: "package tributary.good\n\ndeny contains \"always\" if { true }\n".into(),
        },
    ];
    let loaded = Policies::load(&sources);
    assert_eq!(loaded.policies.len(), 1, "the good policy still loads");
    let d = loaded.diagnostics.iter().next().expect("one diagnostic");
    assert_eq!(d.code, "policy::compile");
    let loc = d.location.as_ref().expect("located");
    assert_eq!((loc.file.as_str(), loc.line), ("policies/bad.rego", 3));
    assert!(d.message.contains("if"), "{}", d.message);
}
