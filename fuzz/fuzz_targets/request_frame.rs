#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = strom_protocol::harness::request_frame(data);
});
