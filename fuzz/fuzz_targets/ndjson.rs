//! Any bytes as an NDJSON body: decoded line by line and validated against the example
//! project's bronze contracts without a panic, and the counts add up.
#![no_main]

mod ingest;

use libfuzzer_sys::fuzz_target;
use trib_ingest::Format;

fuzz_target!(|data: &[u8]| {
    let validators: Vec<_> = ingest::PLAIN.iter().collect();
    ingest::check(Format::Ndjson, data, &validators);
});
