//! Exposes the locked versions of the client crates to `compat-rust --version`
//! (read from Cargo.lock, so the output cannot drift from what was built).

use std::{env, fs, path::Path};

fn main() {
    let lock = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = fs::read_to_string(&lock).unwrap_or_default();
    for (krate, var) in [
        ("rdkafka", "COMPAT_RDKAFKA_VERSION"),
        ("rdkafka-sys", "COMPAT_RDKAFKA_SYS_VERSION"),
        ("rskafka", "COMPAT_RSKAFKA_VERSION"),
    ] {
        let version = locked_version(&text, krate).unwrap_or_else(|| "?".to_string());
        println!("cargo:rustc-env={var}={version}");
    }
}

fn locked_version(lock: &str, krate: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{krate}\"") {
            let next = lines.next()?;
            return next.trim().strip_prefix("version = \"")?.strip_suffix('"').map(str::to_string);
        }
    }
    None
}
