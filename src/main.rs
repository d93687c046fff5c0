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
    /// List, describe, find hanging and abort transactions (as kafka-transactions.sh).
    Txn {
        #[command(subcommand)]
        cmd: cli::TxnCmd,
        #[command(flatten)]
        common: cli::Common,
    },
    /// SCRAM credentials: `strom user scram set|list|delete` (as kafka-configs.sh --entity-type users).
    User {
        #[command(subcommand)]
        cmd: cli::UserCmd,
        #[command(flatten)]
        common: cli::Common,
    },
    /// The schema registry: `strom schema list|get|register|check|delete|compatibility`.
    Schema {
        #[command(subcommand)]
        cmd: cli::SchemaCmd,
        /// The schema registry's URL.
        #[arg(long, env = "STROM_SCHEMA_REGISTRY", default_value = "http://localhost:8081", global = true)]
        registry: String,
        #[command(flatten)]
        common: cli::Common,
    },
    /// ACLs: `strom acl add|list|remove` (as kafka-acls.sh).
    Acl {
        #[command(subcommand)]
        cmd: cli::AclCmd,
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
    /// Run a cluster of N nodes on this machine, for development: every node is broker and
    /// controller, on 127.0.0.1 ports BASE+10·i (clients) and BASE+10·i+1 (controller).
    DevCluster(DevClusterArgs),
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
        Command::Txn { cmd, common } => client_command(cli::txn(cmd, &common)),
        Command::User { cmd, common } => client_command(cli::user(cmd, &common)),
        Command::Schema { cmd, registry, common } => client_command(cli::schema(cmd, &registry, common.output)),
        Command::Acl { cmd, common } => client_command(cli::acl(cmd, &common)),
        Command::Produce { args, common } => client_command(cli::produce(args, &common)),
        Command::Consume { args, common } => client_command(cli::consume(args, &common)),
        Command::Cluster { cmd, common } => client_command(cli::cluster(cmd, &common)),
        Command::Health { common } => client_command(cli::health(&common)),
        Command::DevCluster(args) => dev_cluster(args),
        Command::Bench(args) => bench(args),
        Command::RawSink(args) => strom::bench::raw_sink(args),
    }
}

/// `strom dev-cluster` arguments.
#[derive(clap::Args, Debug)]
struct DevClusterArgs {
    /// Number of nodes (3 or 5 make a quorum that survives one or two failures).
    #[arg(default_value_t = 3)]
    nodes: u16,
    /// Data directory; node i keeps its data in DIR/node-i.
    #[arg(long, default_value = "./dev-cluster")]
    dir: PathBuf,
    /// Node i listens for clients on BASE+10·(i-1) and for the quorum on that port + 1.
    #[arg(long, default_value_t = 19092)]
    base_port: u16,
    /// More settings for every node (KEY=VALUE, repeatable). The default besides the
    /// listeners: `default.replication.factor=min(3, nodes)`.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// Starts `nodes` child `strom serve` processes that form one cluster, prints how to
/// reach it, and stops them (SIGTERM: each hands its partitions back) on Ctrl-C or
/// SIGTERM. A node that exits ends the whole cluster.
fn dev_cluster(args: DevClusterArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.nodes >= 1, "a cluster needs at least one node");
    let exe = std::env::current_exe().context("locating the strom executable")?;
    let port = |i: u16, off: u16| args.base_port + 10 * (i - 1) + off;
    let voters = (1..=args.nodes).map(|i| format!("{i}@127.0.0.1:{}", port(i, 1))).collect::<Vec<_>>().join(",");
    let mut children = Vec::new();
    for i in 1..=args.nodes {
        let dir = args.dir.join(format!("node-{i}"));
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("serve")
            .args(["--node-id", &i.to_string()])
            .arg("--log-dirs")
            .arg(&dir)
            .args([
                "--listeners",
                &format!("PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}", port(i, 0), port(i, 1)),
            ])
            .args(["--override", "controller.listener.names=CONTROLLER"])
            .args(["--override", &format!("controller.quorum.voters={voters}")])
            .args(["--override", &format!("strom.http.listener=127.0.0.1:{}", port(i, 2))]);
        // A development cluster replicates like a production one: topics created without
        // a replication factor get min(3, nodes) replicas (overridable below).
        cmd.args(["--override", &format!("default.replication.factor={}", args.nodes.min(3))]);
        for o in &args.overrides {
            cmd.args(["--override", o]);
        }
        children.push((i, cmd.spawn().with_context(|| format!("starting node {i}"))?));
    }
    let bootstrap = (1..=args.nodes).map(|i| format!("127.0.0.1:{}", port(i, 0))).collect::<Vec<_>>().join(",");
    eprintln!("dev cluster of {} nodes: bootstrap.servers={bootstrap}", args.nodes);
    eprintln!("  strom cluster info -b 127.0.0.1:{}    (metrics: http://127.0.0.1:{}/metrics)", port(1, 0), port(1, 2));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let stop = runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return anyhow::Ok(None),
                _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
            }
            for (i, c) in &mut children {
                if let Some(status) = c.try_wait()? {
                    return Ok(Some(format!("node {i} exited ({status})")));
                }
            }
        }
    })?;
    if let Some(why) = &stop {
        eprintln!("{why}; stopping the others");
    }
    for (_, c) in &children {
        // SIGTERM: a graceful stop with a controlled shutdown.
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(c.id() as i32).ok_or_else(|| anyhow::anyhow!("pid"))?,
            rustix::process::Signal::TERM,
        );
    }
    for (_, c) in &mut children {
        let _ = c.wait();
    }
    match stop {
        Some(why) => anyhow::bail!(why),
        None => Ok(()),
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
        let addr = broker.local_addr().map_or_else(|_| "none (controller only)".to_string(), |a| a.to_string());
        let registry = broker.registry_addr().map_or_else(|| "off".to_string(), |a| a.to_string());
        tracing::info!(addr = %addr, http = %http, schema_registry = %registry, data_dir = %c.data_dir.display(), cluster_id = %broker.node.meta.cluster_id, listeners = %listeners, "strom is serving");
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
