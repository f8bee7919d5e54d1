//! The JSON Schema of the contract format agrees with the decoder.

use std::path::Path;
use trib_spec::yaml::{Source, parse};

fn template_contracts() -> Vec<(String, String)> {
    let dir =
        Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../trib/template/products");
    let mut out = Vec::new();
    for domain in std::fs::read_dir(&dir).expect("products") {
        for file in std::fs::read_dir(domain.expect("domain").path()).expect("domain dir") {
            let path = file.expect("file").path();
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).expect("read"),
            ));
        }
    }
    assert!(out.len() >= 10, "the example project has its contracts");
    out
}

#[test]
fn example_contracts_validate_against_the_schema() {
    let schema = trib_spec::schema::json_schema();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    for (name, text) in template_contracts() {
        let (root, _) = parse(&Source::new(name.clone(), text)).expect("parses");
        let doc = root.to_json();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[test]
fn schema_rejects_what_the_decoder_rejects() {
    let schema = trib_spec::schema::json_schema();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let (name, text) = template_contracts().remove(0);
    for (from, to) in [
        ("owner:", "ownr:"),
        ("layer:", "layr:"),
        ("status: active", "status: activ"),
    ] {
        let bad = text.replacen(from, to, 1);
        let (root, _) = parse(&Source::new(name.clone(), bad.clone())).expect("parses");
        assert!(!validator.is_valid(&root.to_json()), "{from} -> {to} must be invalid");
        let decoded = trib_spec::parse_contract(Source::new(name.clone(), bad));
        assert!(
            decoded.contract.is_none(),
            "{from} -> {to} must be rejected by the decoder too"
        );
    }
}

/// Every property the schema allows at the top level and in columns is read by the
/// decoder: a contract using all of them parses without unknown-field errors.
#[test]
fn schema_fields_are_known_to_the_decoder() {
    let schema = trib_spec::schema::json_schema();
    let top: Vec<&String> = schema["properties"].as_object().expect("properties").keys().collect();
    for key in &top {
        let text = format!(
            "product: a.b\nversion: 1.0.0\nowner: t\nlayer: bronze\nsource: {{ kind: http }}\nschema:\n  - {{ name: id, type: string }}\n{key}: x\n"
        );
        let file = trib_spec::parse_contract(Source::new("c.yaml", text));
        assert!(
            !file.diagnostics.iter().any(|d| d.code == "contract::unknown-field"),
            "schema allows `{key}` but the decoder does not know it"
        );
    }
    let col: Vec<&String> = schema["properties"]["schema"]["items"]["properties"]
        .as_object()
        .expect("column properties")
        .keys()
        .collect();
    for key in col {
        let text = format!(
            "product: a.b\nversion: 1.0.0\nowner: t\nlayer: bronze\nsource: {{ kind: http }}\nschema:\n  - {{ name: id, type: string, {key}: x }}\n"
        );
        let file = trib_spec::parse_contract(Source::new("c.yaml", text));
        assert!(
            !file.diagnostics.iter().any(|d| d.code == "contract::unknown-field"),
            "schema allows column field `{key}` but the decoder does not know it"
        );
    }
}
