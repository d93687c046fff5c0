//! The `strom` command line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use strom::config::Config;
use tracing_subscriber::EnvFilter;

/// Strom: a Kafka-protocol-compatible message broker.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the broker (the default command).
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug, Default)]
struct ServeArgs {
    /// A Kafka-style properties file (`key=value` lines, Kafka's key names).
    #[arg(long, short = 'c', env = "STROM_CONFIG")]
    config: Option<PathBuf>,
    /// Listener, e.g. PLAINTEXT://0.0.0.0:9092 [default: PLAINTEXT://localhost:9092].
    #[arg(long)]
    listeners: Option<String>,
    /// Address advertised to clients [default: the listener].
    #[arg(long)]
    advertised_listeners: Option<String>,
    /// Data directory [default: ./data].
    #[arg(long)]
    log_dirs: Option<String>,
    /// This broker's node id [default: 1].
    #[arg(long)]
    node_id: Option<i32>,
    /// Any setting by its Kafka name, e.g. `--override num.partitions=3` (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("STROM_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut overrides = BTreeMap::new();
    for o in &args.overrides {
        let (k, v) = o.split_once('=').with_context(|| format!("--override {o:?}: expected KEY=VALUE"))?;
        overrides.insert(k.trim().to_string(), v.trim().to_string());
    }
    let flags = [
        ("listeners", args.listeners),
        ("advertised.listeners", args.advertised_listeners),
        ("log.dirs", args.log_dirs),
        ("node.id", args.node_id.map(|n| n.to_string())),
    ];
    for (k, v) in flags {
        if let Some(v) = v {
            overrides.insert(k.to_string(), v);
        }
    }
    let config = Config::load(args.config.as_deref(), &overrides)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let broker = strom::Broker::bind(config).await?;
        let data_dir = broker.cluster.config.data_dir.clone();
        tracing::info!(addr = %broker.local_addr()?, data_dir = %data_dir.display(), cluster_id = %broker.cluster.cluster_id, "strom is serving");
        broker.run(shutdown_signal()).await?;
        Ok(())
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown signal received");
}
