//! The `strom` command line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use strom::cli;
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
    /// Create, list, describe, alter and delete topics.
    Topic {
        #[command(subcommand)]
        cmd: cli::TopicCmd,
        #[command(flatten)]
        common: cli::Common,
    },
    /// List, describe (with lag), reset offsets of and delete consumer groups.
    Group {
        #[command(subcommand)]
        cmd: cli::GroupCmd,
        #[command(flatten)]
        common: cli::Common,
    },
    /// Write records read from stdin (one per line) to a topic.
    Produce {
        #[command(flatten)]
        args: cli::ProduceArgs,
        #[command(flatten)]
        common: cli::Common,
    },
    /// Print a topic's records.
    Consume {
        #[command(flatten)]
        args: cli::ConsumeArgs,
        #[command(flatten)]
        common: cli::Common,
    },
    /// Cluster information.
    Cluster {
        #[command(subcommand)]
        cmd: cli::ClusterCmd,
        #[command(flatten)]
        common: cli::Common,
    },
    /// Load a broker with producers and consumers; report throughput and latency.
    Bench(strom::bench::BenchArgs),
    /// The raw TCP sink `strom bench --raw-sink` measures against (internal).
    #[command(hide = true)]
    RawSink(strom::bench::SinkArgs),
    /// Exit 0 when the broker answers ApiVersions and Metadata (for health checks).
    Health {
        #[command(flatten)]
        common: cli::Common,
    },
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
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(args),
        Command::Topic { cmd, common } => client_command(cli::topic(cmd, &common)),
        Command::Group { cmd, common } => client_command(cli::group(cmd, &common)),
        Command::Produce { args, common } => client_command(cli::produce(args, &common)),
        Command::Consume { args, common } => client_command(cli::consume(args, &common)),
        Command::Cluster { cmd, common } => client_command(cli::cluster(cmd, &common)),
        Command::Health { common } => client_command(cli::health(&common)),
        Command::Bench(args) => bench(args),
        Command::RawSink(args) => strom::bench::raw_sink(args),
    }
}

/// The log filter: `STROM_LOG` (EnvFilter directives), else the apache/kafka image's
/// `KAFKA_LOG4J_ROOT_LOGLEVEL` (a log4j level), else `info`. Timestamps are RFC 3339 UTC.
fn log_filter() -> EnvFilter {
    if let Ok(f) = EnvFilter::try_from_env("STROM_LOG") {
        return f;
    }
    let log4j = std::env::var("KAFKA_LOG4J_ROOT_LOGLEVEL").unwrap_or_default();
    let level = match log4j.trim().to_ascii_uppercase().as_str() {
        "ALL" | "TRACE" => "trace",
        "DEBUG" => "debug",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        "OFF" => "off",
        _ => "info",
    };
    EnvFilter::new(level)
}

/// Runs a client command on a small single-threaded runtime; a failure prints one
/// `error:` line and exits with status 1 (a closed stdout, as with `| head`, is not one).
fn client_command(f: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let result = tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(f);
    if let Err(e) = result {
        let broken_pipe =
            e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe);
        if broken_pipe {
            return Ok(());
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

/// `strom bench` runs on a multi-threaded runtime sized to its connections (and the CPUs).
fn bench(args: strom::bench::BenchArgs) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args.threads.unwrap_or(args.producers + args.consumers).clamp(1, cpus.max(1));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
    if let Err(e) = runtime.block_on(strom::bench::bench(args)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

/// Every partition keeps its active segment's log and two index files open (and each
/// sealed segment three more), so the soft `RLIMIT_NOFILE` (often 1,024) is raised to the
/// hard limit, as Go programs and many servers do; the hard limit is the operator's
/// (`ulimit -Hn`, systemd `LimitNOFILE`, docker `--ulimit nofile`).
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "could not raise the open-files limit");
        }
    }
    let now = getrlimit(Resource::Nofile);
    tracing::info!(open_files_limit = ?now.current, "about 3 open files per partition");
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
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        // Handlers first: a signal that arrives while the logs are being opened is kept
        // and stops the broker as soon as it serves. This matters most as a container's
        // PID 1, for which the kernel drops signals that have no handler.
        let shutdown = shutdown_signal()?;
        let broker = strom::Broker::bind(config).await?;
        let c = &broker.node.meta.config;
        let http = broker.http_addr().map_or_else(|| "disabled".to_string(), |a| a.to_string());
        let listeners = c
            .listeners
            .iter()
            .zip(broker.local_addrs()?)
            .map(|(l, bound)| format!("{}={bound} (advertised {}:{})", l.name, l.advertised_host, l.advertised_port))
            .collect::<Vec<_>>()
            .join(", ");
        tracing::info!(addr = %broker.local_addr()?, http = %http, data_dir = %c.data_dir.display(), cluster_id = %broker.node.meta.cluster_id, listeners = %listeners, "strom is serving");
        broker.run(shutdown).await?;
        Ok(())
    })
}

/// Registers SIGINT and SIGTERM handlers now; the future completes on either.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    Ok(async move {
        let name = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        tracing::info!(signal = name, "shutdown signal received");
    })
}
