//! Listeners, resolved from Kafka's settings: `listeners`, `advertised.listeners`,
//! `listener.security.protocol.map` and `controller.listener.names`, checked against
//! `process.roles`, `controller.quorum.voters` and `controller.quorum.bootstrap.servers`.
//!
//! Strom binds every client listener and answers each connection with the endpoint
//! advertised for the listener it arrived on, as Kafka does: a compose file's
//! `PLAINTEXT_HOST://localhost:9092` for clients on the host and `PLAINTEXT://broker:19092`
//! for clients in the compose network both work. Controller listeners are not bound: a
//! single-node Strom is its own controller and runs no KRaft quorum yet. Settings that
//! would need one (other voters, controller-only or broker-only roles) stop startup with
//! an explanation instead of starting something other than what the operator asked for.
//! SASL_PLAINTEXT and SASL_SSL listeners carry their SASL settings (`sasl.rs`), SSL and
//! SASL_SSL ones their TLS settings (`ssl.rs`).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context};

use super::Ignored;

/// A client listener: where it binds and the endpoint it advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The listener name, upper case (`PLAINTEXT`, `PLAINTEXT_HOST`, ...).
    pub name: String,
    /// The socket address to bind (`host:port`, `[v6]:port`); an empty host binds all
    /// IPv4 interfaces, as `PLAINTEXT://:9092` does in Kafka.
    pub bind: String,
    /// Host told to clients that connect through this listener.
    pub advertised_host: String,
    /// Port told to clients (0 until bound when listening on port 0).
    pub advertised_port: u16,
    /// SASL_PLAINTEXT and SASL_SSL listeners: how clients authenticate (`None`: no SASL).
    pub sasl: Option<super::sasl::SaslListener>,
    /// SSL and SASL_SSL listeners: the TLS settings (`None`: plaintext).
    pub tls: Option<super::ssl::SslListener>,
}

impl Listener {
    /// The listener's security protocol, as Kafka names it.
    pub fn protocol(&self) -> &'static str {
        match (self.sasl.is_some(), self.tls.is_some()) {
            (false, false) => "PLAINTEXT",
            (false, true) => "SSL",
            (true, false) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        }
    }
}

/// Kafka's default `listener.security.protocol.map`.
pub const DEFAULT_PROTOCOL_MAP: &str = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";

/// One `NAME://host:port` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    name: String,
    host: String,
    port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

fn host_port(key: &str, entry: &str, addr: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = addr.rsplit_once(':').with_context(|| format!("{key}: {entry:?} has no port"))?;
    let port: u16 = port.trim().parse().with_context(|| format!("{key}: {entry:?}: bad port"))?;
    let host = host.trim();
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    Ok((host.to_string(), port))
}

/// Parses a comma-separated list of `NAME://host:port` (an entry without `NAME://` is
/// `PLAINTEXT`). Names are upper-cased, as Kafka normalises them, and must be unique.
fn parse_endpoints(key: &str, s: &str) -> anyhow::Result<Vec<Endpoint>> {
    let mut out: Vec<Endpoint> = Vec::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, addr) = match entry.split_once("://") {
            Some((name, addr)) => (name.trim().to_ascii_uppercase(), addr),
            None => ("PLAINTEXT".to_string(), entry),
        };
        if name.is_empty() {
            bail!("{key}: {entry:?} has no listener name");
        }
        let (host, port) = host_port(key, entry, addr)?;
        if out.iter().any(|e| e.name == name) {
            bail!("{key}: listener name {name} appears more than once");
        }
        out.push(Endpoint { name, host, port });
    }
    Ok(out)
}

/// Parses `listener.security.protocol.map` (`NAME:PROTOCOL,...`).
fn parse_protocol_map(s: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, proto) = entry
            .split_once(':')
            .with_context(|| format!("listener.security.protocol.map: {entry:?} is not NAME:PROTOCOL"))?;
        out.insert(name.trim().to_ascii_uppercase(), proto.trim().to_ascii_uppercase());
    }
    Ok(out)
}

fn list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_string).collect()
}

fn is_wildcard(host: &str) -> bool {
    host.is_empty() || host == "0.0.0.0" || host == "::"
}

/// `process.roles` as (broker, controller); unset means both, as a single node is.
fn roles(get: &dyn Fn(&str) -> String) -> anyhow::Result<(bool, bool)> {
    let roles: BTreeSet<String> = list(&get("process.roles")).iter().map(|r| r.to_ascii_lowercase()).collect();
    for r in &roles {
        if r != "broker" && r != "controller" {
            bail!("process.roles: unknown role {r:?} (Kafka's roles are broker and controller)");
        }
    }
    Ok(match (roles.contains("broker"), roles.contains("controller")) {
        (false, false) => (true, true),
        r => r,
    })
}

/// Checks the KRaft settings: a single node (its own one-voter quorum) or a node of a
/// cluster whose role and voters fit together. [`quorum`] then builds the settings.
fn check_roles(get: &dyn Fn(&str) -> String, node_id: i32, notes: &mut Vec<Ignored>) -> anyhow::Result<()> {
    let (broker, controller) = roles(get)?;
    let voters = get("controller.quorum.voters");
    let parsed: Vec<(i32, &str)> = list_str(&voters)
        .map(|v| {
            let (id, addr) = v.split_once('@').with_context(|| {
                format!("controller.quorum.voters: {v:?} is not id@host:port (e.g. 1@localhost:9093)")
            })?;
            let id: i32 = id.trim().parse().with_context(|| format!("controller.quorum.voters: {v:?}: bad node id"))?;
            host_port("controller.quorum.voters", v, addr)?;
            Ok((id, v))
        })
        .collect::<anyhow::Result<_>>()?;
    let bootstrap = get("controller.quorum.bootstrap.servers");
    let n_bootstrap = list(&bootstrap).len();
    let me_voter = parsed.iter().any(|(id, _)| *id == node_id);
    if controller {
        match parsed.as_slice() {
            [] if broker && n_bootstrap <= 1 => {
                if n_bootstrap == 1 {
                    notes.push(Ignored::info(
                        format!("controller.quorum.bootstrap.servers={bootstrap}"),
                        "single node: this node is its own controller",
                    ));
                }
            }
            [] => bail!(
                "a controller needs controller.quorum.voters naming it (a static quorum); a quorum known only \
                 from controller.quorum.bootstrap.servers (KIP-853, multi-node) is not supported"
            ),
            [(_, v)] if me_voter && broker => notes.push(Ignored::info(
                format!("controller.quorum.voters={v}"),
                "the single voter is this node, which is its own controller (a one-voter quorum, no network)",
            )),
            _ if me_voter => {}
            _ => bail!(
                "controller.quorum.voters={voters}: node.id {node_id} is a controller (process.roles) but not \
                 one of the voters"
            ),
        }
    } else {
        // A broker-only node: an observer of the controllers' quorum.
        if me_voter {
            bail!(
                "controller.quorum.voters={voters}: node.id {node_id} is broker-only (process.roles=broker) but \
                 named as a voter; voters are controllers"
            );
        }
        if parsed.is_empty() && n_bootstrap == 0 {
            bail!(
                "process.roles=broker: name the controllers in controller.quorum.voters or \
                 controller.quorum.bootstrap.servers"
            );
        }
    }
    Ok(())
}

/// The metadata quorum of a multi-node cluster as this node takes part in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumConfig {
    /// `controller.quorum.voters`: node id to `host:port`.
    pub voters: BTreeMap<i32, String>,
    /// `controller.quorum.bootstrap.servers` (what a broker-only node may use instead).
    pub bootstrap: Vec<String>,
    /// The bind address of this node's controller listener (the `listeners` entry named
    /// in `controller.listener.names`); `None` for a broker-only node.
    pub bind: Option<String>,
    /// This node serves clients (`process.roles` includes `broker`).
    pub broker: bool,
    /// This node is a voter (`process.roles` includes `controller`).
    pub controller: bool,
}

/// The quorum settings of a node of a cluster; `None` for a single node (its own
/// one-voter quorum). [`resolve`] has checked the roles against the voters.
pub fn quorum(get: &dyn Fn(&str) -> String) -> anyhow::Result<Option<QuorumConfig>> {
    let (broker, controller) = roles(get)?;
    let mut voters = BTreeMap::new();
    for v in list_str(&get("controller.quorum.voters")) {
        let (id, addr) = v.split_once('@').with_context(|| format!("controller.quorum.voters: {v:?}"))?;
        let id: i32 = id.trim().parse().with_context(|| format!("controller.quorum.voters: {v:?}: bad node id"))?;
        let (host, port) = host_port("controller.quorum.voters", v, addr)?;
        let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        if voters.insert(id, addr).is_some() {
            bail!("controller.quorum.voters: node {id} is named twice");
        }
    }
    let bootstrap = list_str(&get("controller.quorum.bootstrap.servers"))
        .map(|b| {
            let (host, port) = host_port("controller.quorum.bootstrap.servers", b, b)?;
            Ok(if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if broker && controller && voters.len() < 2 {
        return Ok(None);
    }
    let bind = if controller {
        let controller_names: BTreeSet<String> =
            list(&get("controller.listener.names")).iter().map(|n| n.to_ascii_uppercase()).collect();
        let ep = parse_endpoints("listeners", &get("listeners"))?
            .into_iter()
            .find(|ep| controller_names.contains(&ep.name))
            .with_context(|| {
                "a controller of a multi-node quorum needs a controller listener: name it in \
                 controller.listener.names and give it in listeners (e.g. \
                 listeners=PLAINTEXT://:9092,CONTROLLER://:9093 controller.listener.names=CONTROLLER)"
            })?;
        let host = if ep.host.is_empty() { "0.0.0.0" } else { ep.host.as_str() };
        Some(if host.contains(':') { format!("[{host}]:{}", ep.port) } else { format!("{host}:{}", ep.port) })
    } else {
        None
    };
    Ok(Some(QuorumConfig { voters, bootstrap, bind, broker, controller }))
}

fn list_str(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|e| !e.is_empty())
}

/// The client listeners from the effective settings (`get` returns "" for unset keys).
/// Controller listeners and other accepted-but-unused settings are added to `notes`.
pub fn resolve(get: &dyn Fn(&str) -> String, node_id: i32, notes: &mut Vec<Ignored>) -> anyhow::Result<Vec<Listener>> {
    check_roles(get, node_id, notes)?;
    let map_text = get("listener.security.protocol.map");
    let map_text = if map_text.trim().is_empty() { DEFAULT_PROTOCOL_MAP.to_string() } else { map_text };
    let protocols = parse_protocol_map(&map_text)?;
    let controller_names: BTreeSet<String> =
        list(&get("controller.listener.names")).iter().map(|n| n.to_ascii_uppercase()).collect();

    let single = quorum(get)?.is_none();
    let mut clients = Vec::new();
    for ep in parse_endpoints("listeners", &get("listeners"))? {
        if controller_names.contains(&ep.name) {
            if single {
                notes.push(Ignored::info(
                    format!("listener {ep}"),
                    "a controller listener is not bound on a single node, its own one-voter quorum (no network)",
                ));
            }
            continue;
        }
        let Some(proto) = protocols.get(&ep.name) else {
            bail!("listeners: {ep} has no security protocol in listener.security.protocol.map ({map_text})");
        };
        let (sasl, tls) = match proto.as_str() {
            "PLAINTEXT" => (None, None),
            "SASL_PLAINTEXT" => (Some(super::sasl::resolve(get, &ep.name)?), None),
            "SSL" => (None, Some(super::ssl::resolve(get, &ep.name, false)?)),
            "SASL_SSL" => (Some(super::sasl::resolve(get, &ep.name)?), Some(super::ssl::resolve(get, &ep.name, true)?)),
            other => bail!("listeners: {ep} uses security protocol {other}, which Kafka does not define"),
        };
        clients.push((ep, sasl, tls));
    }
    if clients.is_empty() && roles(get)?.0 {
        bail!("listeners: no client listener (every listener is a controller listener, or none is given)");
    }

    let mut advertised = BTreeMap::new();
    for ep in parse_endpoints("advertised.listeners", &get("advertised.listeners"))? {
        if controller_names.contains(&ep.name) {
            if single {
                notes.push(Ignored::info(format!("advertised listener {ep}"), "a controller listener (not bound)"));
            }
            continue;
        }
        if !clients.iter().any(|(c, ..)| c.name == ep.name) {
            let names: Vec<&str> = clients.iter().map(|(c, ..)| c.name.as_str()).collect();
            bail!("advertised.listeners: {ep} names no listener (client listeners: {})", names.join(", "));
        }
        if ep.host == "0.0.0.0" || ep.host == "::" {
            bail!("advertised.listeners: {ep} advertises a wildcard address, which clients cannot connect to");
        }
        advertised.insert(ep.name.clone(), ep);
    }

    Ok(clients
        .into_iter()
        .map(|(ep, sasl, tls)| {
            let bind_host = if ep.host.is_empty() { "0.0.0.0" } else { ep.host.as_str() };
            let bind = if bind_host.contains(':') {
                format!("[{bind_host}]:{}", ep.port)
            } else {
                format!("{bind_host}:{}", ep.port)
            };
            let (advertised_host, advertised_port) = match advertised.get(&ep.name) {
                // An empty advertised host, like a wildcard listener, is advertised as
                // localhost (Kafka would use the machine's canonical host name).
                Some(a) if a.host.is_empty() => ("localhost".to_string(), a.port),
                Some(a) => (a.host.clone(), a.port),
                // A wildcard address cannot be dialled; advertise the loopback name.
                None if is_wildcard(&ep.host) => ("localhost".to_string(), ep.port),
                None => (ep.host.clone(), ep.port),
            };
            Listener { name: ep.name, bind, advertised_host, advertised_port, sasl, tls }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_with(pairs: &[(&str, &str)]) -> anyhow::Result<(Vec<Listener>, Vec<Ignored>)> {
        let m: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let get = |k: &str| m.get(k).cloned().unwrap_or_default();
        let mut notes = Vec::new();
        let l = resolve(&get, 1, &mut notes)?;
        Ok((l, notes))
    }

    fn l(name: &str, bind: &str, host: &str, port: u16) -> Listener {
        Listener {
            name: name.into(),
            bind: bind.into(),
            advertised_host: host.into(),
            advertised_port: port,
            sasl: None,
            tls: None,
        }
    }

    #[test]
    fn a_bare_address_is_a_plaintext_listener() {
        let (ls, notes) = resolve_with(&[("listeners", "localhost:9092")]).unwrap();
        assert_eq!(ls, vec![l("PLAINTEXT", "localhost:9092", "localhost", 9092)]);
        assert!(notes.is_empty());
        let (ls, _) = resolve_with(&[("listeners", "PLAINTEXT://[::1]:9092")]).unwrap();
        assert_eq!(ls, vec![l("PLAINTEXT", "[::1]:9092", "::1", 9092)]);
    }

    #[test]
    fn the_apache_kafka_single_node_compose_listeners_serve_both_client_listeners() {
        let (ls, notes) = resolve_with(&[
            ("listeners", "CONTROLLER://:29093,PLAINTEXT_HOST://:9092,PLAINTEXT://:19092"),
            ("advertised.listeners", "PLAINTEXT_HOST://localhost:9092,PLAINTEXT://broker:19092"),
            ("listener.security.protocol.map", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT"),
            ("controller.listener.names", "CONTROLLER"),
            ("process.roles", "broker,controller"),
            ("controller.quorum.voters", "1@broker:29093"),
        ])
        .unwrap();
        assert_eq!(
            ls,
            vec![
                l("PLAINTEXT_HOST", "0.0.0.0:9092", "localhost", 9092),
                l("PLAINTEXT", "0.0.0.0:19092", "broker", 19092)
            ]
        );
        let said: Vec<&str> = notes.iter().map(|n| n.setting.as_str()).collect();
        assert_eq!(said, ["controller.quorum.voters=1@broker:29093", "listener CONTROLLER://:29093"]);
        assert!(notes.iter().all(|n| !n.warn));
    }

    #[test]
    fn listener_names_need_a_security_protocol_and_tls_listeners_a_key() {
        let err = resolve_with(&[("listeners", "PLAINTEXT_HOST://:9092")]).unwrap_err();
        assert!(err.to_string().contains("no security protocol"), "{err}");
        let err = resolve_with(&[("listeners", "SSL://:9093")]).unwrap_err();
        assert!(err.to_string().contains("has no key"), "{err}");
        let (ls, _) =
            resolve_with(&[("listeners", "SSL://:9093"), ("ssl.keystore.location", "/etc/strom/broker.pem")]).unwrap();
        assert_eq!(ls[0].protocol(), "SSL");
        // SASL_PLAINTEXT needs its mechanisms (and PLAIN its users).
        let err = resolve_with(&[
            ("listeners", "EXTERNAL://:9093"),
            ("listener.security.protocol.map", "EXTERNAL:SASL_PLAINTEXT"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("sasl.enabled.mechanisms"), "{err}");
        let (ls, _) = resolve_with(&[
            ("listeners", "EXTERNAL://:9093"),
            ("listener.security.protocol.map", "EXTERNAL:SASL_PLAINTEXT"),
            ("sasl.enabled.mechanisms", "PLAIN"),
            (
                "listener.name.external.plain.sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"s\";",
            ),
        ])
        .unwrap();
        assert_eq!(ls[0].sasl.as_ref().map(|s| s.plain_users.len()), Some(1));
        let err = resolve_with(&[("listeners", "SASL_SSL://:9093"), ("sasl.enabled.mechanisms", "PLAIN")]).unwrap_err();
        assert!(err.to_string().contains("plain.sasl.jaas.config"), "{err}");
        // A controller listener with TLS is not bound, so it stops nothing.
        let (ls, _) = resolve_with(&[
            ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"),
            ("controller.listener.names", "CONTROLLER"),
        ])
        .unwrap();
        assert_eq!(ls.len(), 1);
    }

    #[test]
    fn advertised_listeners_must_name_a_listener_and_be_dialable() {
        let err =
            resolve_with(&[("listeners", "PLAINTEXT://:9092"), ("advertised.listeners", "OTHER://h:1")]).unwrap_err();
        assert!(err.to_string().contains("names no listener"), "{err}");
        let err =
            resolve_with(&[("listeners", "PLAINTEXT://:9092"), ("advertised.listeners", "PLAINTEXT://0.0.0.0:1")])
                .unwrap_err();
        assert!(err.to_string().contains("wildcard"), "{err}");
        let err = resolve_with(&[("listeners", "PLAINTEXT://:9092,plaintext://:9093")]).unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
    }

    #[test]
    fn roles_and_voters_that_do_not_fit_stop_startup() {
        let base = [("listeners", "PLAINTEXT://:9092")];
        for (k, v, why) in [
            ("process.roles", "controller", "needs controller.quorum.voters"),
            ("process.roles", "broker", "name the controllers"),
            ("process.roles", "broker,zookeeper", "unknown role"),
            ("controller.quorum.voters", "2@a:9093,3@b:9093", "not one of the voters"),
            ("controller.quorum.voters", "2@a:9093", "not one of the voters"),
            ("controller.quorum.voters", "a:9093", "id@host:port"),
            ("controller.quorum.bootstrap.servers", "a:9093,b:9093", "KIP-853"),
        ] {
            let err = resolve_with(&[base[0], (k, v)]).unwrap_err();
            assert!(err.to_string().contains(why), "{k}={v}: {err}");
        }
        let (_, notes) = resolve_with(&[base[0], ("controller.quorum.bootstrap.servers", "localhost:9093")]).unwrap();
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn broker_only_and_controller_only_nodes() {
        let voters = ("controller.quorum.voters", "1@c1:9093,2@c2:9093,3@c3:9093");
        let names = ("controller.listener.names", "CONTROLLER");
        // Broker 4 observes the three controllers; a broker named as a voter is refused.
        let broker = [("listeners", "PLAINTEXT://:9092"), ("process.roles", "broker"), voters, names];
        let m: BTreeMap<String, String> = broker.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let get = |k: &str| m.get(k).cloned().unwrap_or_default();
        let mut notes = Vec::new();
        assert_eq!(resolve(&get, 4, &mut notes).unwrap().len(), 1);
        let q = quorum(&get).unwrap().expect("a cluster");
        assert_eq!((q.broker, q.controller, q.bind.clone(), q.voters.len()), (true, false, None, 3));
        assert!(resolve(&get, 2, &mut notes).unwrap_err().to_string().contains("broker-only"));
        // A broker may know the controllers from bootstrap servers alone.
        let bs = |k: &str| match k {
            "controller.quorum.voters" => String::new(),
            "controller.quorum.bootstrap.servers" => "c1:9093,c2:9093".into(),
            _ => get(k),
        };
        assert!(resolve(&bs, 4, &mut notes).is_ok());
        assert_eq!(quorum(&bs).unwrap().expect("a cluster").bootstrap, vec!["c1:9093", "c2:9093"]);
        // Controller 2 serves no clients: no client listener needed, a controller one is.
        let ctl = [("listeners", "CONTROLLER://:9093"), ("process.roles", "controller"), voters, names];
        let m: BTreeMap<String, String> = ctl.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let get = |k: &str| m.get(k).cloned().unwrap_or_default();
        assert!(resolve(&get, 2, &mut notes).unwrap().is_empty());
        let q = quorum(&get).unwrap().expect("a cluster");
        assert_eq!((q.broker, q.controller, q.bind.as_deref()), (false, true, Some("0.0.0.0:9093")));
    }

    #[test]
    fn three_voters_make_a_quorum_with_this_nodes_controller_listener() {
        let three = "1@127.0.0.1:9093,2@127.0.0.2:9093,3@[::1]:9095";
        let m: BTreeMap<String, String> = [
            ("listeners", "PLAINTEXT://:9092,CONTROLLER://127.0.0.1:9093"),
            ("controller.listener.names", "CONTROLLER"),
            ("controller.quorum.voters", three),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let get = |k: &str| m.get(k).cloned().unwrap_or_default();
        let (ls, _) = resolve_with(&m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>()).unwrap();
        assert_eq!(ls.len(), 1, "the controller listener is not a client listener");
        let q = quorum(&get).unwrap().expect("a quorum");
        assert_eq!(q.bind.as_deref(), Some("127.0.0.1:9093"));
        assert_eq!(q.voters.get(&3).map(String::as_str), Some("[::1]:9095"));
        assert_eq!(q.voters.len(), 3);
        // Without a controller listener there is nothing for the other voters to reach.
        let no_listener = |k: &str| if k == "listeners" { "PLAINTEXT://:9092".to_string() } else { get(k) };
        assert!(quorum(&no_listener).unwrap_err().to_string().contains("controller listener"));
        let single = |k: &str| if k == "controller.quorum.voters" { "1@a:9093".to_string() } else { get(k) };
        assert_eq!(quorum(&single).unwrap(), None);
    }
}
