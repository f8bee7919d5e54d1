//! Any bytes as Debezium change events (one envelope per line, with or without the
//! Connect schema): decoded and validated against a CDC contract with decimals, dates and
//! instants without a panic; every event is a row, a dead letter or a counted tombstone.
#![no_main]

mod ingest;

use libfuzzer_sys::fuzz_target;
use trib_ingest::Format;

fuzz_target!(|data: &[u8]| {
    ingest::check(Format::Debezium, data, &[&*ingest::CDC]);
});
