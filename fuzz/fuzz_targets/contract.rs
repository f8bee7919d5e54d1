//! Any bytes given to the contract parser produce a contract or diagnostics, never a
//! panic: YAML tree, typed decoding, column checks, and the diff of the result with
//! itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trib_spec::yaml::Source;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let file = trib_spec::parse_contract(Source::new("fuzz.yaml", text));
    if let Some(c) = &file.contract {
        assert!(trib_spec::diff::diff(c, c).is_empty());
        let _ = trib_spec::json::contract_json(c);
        let _ = c.arrow_schema();
    }
    for d in file.diagnostics.iter() {
        if let Some(loc) = &d.location {
            assert!(loc.offset + loc.length <= file.source.text.len(), "location past the end: {d:?}");
        }
    }
});
