//! Any bytes as a CSV body with a header row: refused as a whole only as the sender's
//! error, otherwise every cell read as the contract's type without a panic, and the counts
//! add up.
#![no_main]

mod ingest;

use libfuzzer_sys::fuzz_target;
use trib_ingest::Format;

fuzz_target!(|data: &[u8]| {
    let validators: Vec<_> = ingest::PLAIN.iter().collect();
    ingest::check(Format::Csv, data, &validators);
});
