//! `compat-rust <rdkafka|rskafka> <scenario>`: one Strom compatibility cell (see
//! compat-tests/README.md). Env: STROM_BOOTSTRAP, COMPAT_TOPIC, STROM_BIN. Exit 0 pass,
//! 1 fail, 3 unsupported; the last line is `PASS:` / `FAIL:` / `UNSUPPORTED:` and why.
//! `compat-rust --version` prints the crate (and linked librdkafka) versions.

mod common;
mod rd;
mod rs;

use common::{fail, start_clock};

fn version() -> String {
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    format!(
        "rdkafka {} (rdkafka-sys {}, linked librdkafka {librdkafka}), rskafka {}",
        env!("COMPAT_RDKAFKA_VERSION"),
        env!("COMPAT_RDKAFKA_SYS_VERSION"),
        env!("COMPAT_RSKAFKA_VERSION"),
    )
}

fn main() {
    start_clock();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--version"] => {
            println!("compat-rust: {}", version());
        }
        [client @ ("rdkafka" | "rskafka"), scenario] => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap_or_else(|e| fail(format!("tokio runtime: {e}")));
            common::log(format!("{client} / {scenario}: {}", version()));
            rt.block_on(async {
                if client == "rdkafka" {
                    rd::run(scenario).await
                } else {
                    rs::run(scenario).await
                }
            });
            fail("scenario returned without a verdict");
        }
        _ => {
            eprintln!("usage: compat-rust --version | compat-rust <rdkafka|rskafka> <scenario>");
            std::process::exit(2);
        }
    }
}
