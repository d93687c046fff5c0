#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    strom_protocol::harness::metadata_record(data);
});
