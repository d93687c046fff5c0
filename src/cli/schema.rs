//! `strom schema ...`: the schema registry over its REST API (Confluent's), as
//! Confluent's `schema-registry` CLI and curl recipes use it.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use serde_json::{json, Value};

use super::{Output, Table};
use crate::registry::rest;

/// `strom schema ...`
#[derive(Subcommand, Debug)]
pub enum SchemaCmd {
    /// Subjects with their latest version, id and type.
    List {
        /// Only subjects starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Include soft-deleted subjects.
        #[arg(long)]
        deleted: bool,
    },
    /// One version of a subject (default: the latest), with its schema.
    Get {
        subject: String,
        /// A version number or `latest`.
        #[arg(long, default_value = "latest")]
        version: String,
    },
    /// Registers the schema in FILE (`-`: stdin) under SUBJECT; prints its id.
    Register {
        subject: String,
        file: PathBuf,
        /// AVRO, JSON or PROTOBUF.
        #[arg(long = "type", default_value = "AVRO")]
        schema_type: String,
        /// A reference as NAME=SUBJECT:VERSION (repeatable).
        #[arg(long = "reference")]
        references: Vec<String>,
    },
    /// Whether the schema in FILE may be registered under SUBJECT (its compatibility
    /// level against the versions it selects, or against --version alone).
    Check {
        subject: String,
        file: PathBuf,
        #[arg(long = "type", default_value = "AVRO")]
        schema_type: String,
        #[arg(long = "reference")]
        references: Vec<String>,
        #[arg(long)]
        version: Option<String>,
    },
    /// Soft-deletes a subject (or one --version); with --permanent, removes what was
    /// soft-deleted.
    Delete {
        subject: String,
        #[arg(long)]
        version: Option<String>,
        #[arg(long)]
        permanent: bool,
    },
    /// Measures lookups per second against the registry: `GET /schemas/ids/{id}` (what
    /// deserializers ask) then `POST /subjects/{subject}` (what serializers ask), each for
    /// --duration seconds over --connections keep-alive connections.
    Bench {
        /// A subject with at least one version (its latest is looked up).
        subject: String,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value_t = 4)]
        connections: usize,
    },
    /// Shows, or with --set changes, the compatibility level (global without SUBJECT).
    Compatibility {
        subject: Option<String>,
        /// NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE.
        #[arg(long)]
        set: Option<String>,
    },
}

/// A path segment as Confluent's clients send it (`/` and friends percent-encoded).
fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// host:port of `http://host:port[/]`.
fn address(url: &str) -> anyhow::Result<String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| anyhow!("--registry {url}: only http:// URLs"))?;
    Ok(rest.trim_end_matches('/').to_string())
}

async fn call(addr: &str, method: &str, target: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, _, raw) = rest::request(addr, method, target, body.as_bytes(), &[])
        .await
        .with_context(|| format!("schema registry at {addr}"))?;
    let v: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    if status != 200 {
        bail!("HTTP {status}: {} (error_code {})", v["message"].as_str().unwrap_or("?"), v["error_code"]);
    }
    Ok(v)
}

/// Sends the same request on one keep-alive connection until `until`; how many were
/// answered 200 (any other answer ends the run with an error).
async fn keep_alive_loop(
    addr: &str,
    method: &str,
    target: &str,
    body: &str,
    until: std::time::Instant,
) -> anyhow::Result<u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (mut n, mut buf) = (0u64, Vec::with_capacity(8192));
    let mut chunk = [0u8; 8192];
    while std::time::Instant::now() < until {
        s.write_all(req.as_bytes()).await?;
        // One response: the head, then Content-Length bytes.
        let (head_end, length) = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                if !head.starts_with("http/1.1 200") {
                    bail!("{method} {target}: {}", head.lines().next().unwrap_or(""));
                }
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse::<usize>().ok()))
                    .unwrap_or(0);
                break (i + 4, len);
            }
            let r = s.read(&mut chunk).await?;
            if r == 0 {
                bail!("the registry closed the connection");
            }
            buf.extend_from_slice(&chunk[..r]);
        };
        while buf.len() < head_end + length {
            let r = s.read(&mut chunk).await?;
            if r == 0 {
                bail!("the registry closed the connection");
            }
            buf.extend_from_slice(&chunk[..r]);
        }
        buf.drain(..head_end + length);
        n += 1;
    }
    Ok(n)
}

fn schema_request(file: &PathBuf, schema_type: &str, references: &[String]) -> anyhow::Result<Value> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let refs = references
        .iter()
        .map(|r| {
            let (name, at) = r.split_once('=').ok_or_else(|| anyhow!("--reference {r}: NAME=SUBJECT:VERSION"))?;
            let (subject, version) =
                at.rsplit_once(':').ok_or_else(|| anyhow!("--reference {r}: NAME=SUBJECT:VERSION"))?;
            let version: i32 = version.parse().with_context(|| format!("--reference {r}: version"))?;
            Ok(json!({ "name": name, "subject": subject, "version": version }))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(json!({ "schema": text, "schemaType": schema_type.to_ascii_uppercase(), "references": refs }))
}

/// Runs a `strom schema` command against the registry at `url`.
pub async fn schema(cmd: SchemaCmd, url: &str, output: Output) -> anyhow::Result<()> {
    let addr = address(url)?;
    let a = addr.as_str();
    match cmd {
        SchemaCmd::List { prefix, deleted } => {
            let subjects =
                call(a, "GET", &format!("/subjects?subjectPrefix={}&deleted={deleted}", seg(&prefix)), None).await?;
            let mut t = Table::new(&["SUBJECT", "VERSION", "ID", "TYPE"]);
            for s in subjects.as_array().into_iter().flatten().filter_map(Value::as_str) {
                let v =
                    call(a, "GET", &format!("/subjects/{}/versions/latest?deleted={deleted}", seg(s)), None).await?;
                let kind = v["schemaType"].as_str().unwrap_or("AVRO").to_string();
                t.row(vec![s.to_string(), v["version"].to_string(), v["id"].to_string(), kind]);
            }
            t.print(output)
        }
        SchemaCmd::Get { subject, version } => {
            let v = call(a, "GET", &format!("/subjects/{}/versions/{}", seg(&subject), seg(&version)), None).await?;
            let mut t = Table::new(&["SUBJECT", "VERSION", "ID", "TYPE", "SCHEMA"]);
            let kind = v["schemaType"].as_str().unwrap_or("AVRO").to_string();
            let text = v["schema"].as_str().unwrap_or("").to_string();
            t.row(vec![subject, v["version"].to_string(), v["id"].to_string(), kind, text]);
            t.print(output)
        }
        SchemaCmd::Register { subject, file, schema_type, references } => {
            let body = schema_request(&file, &schema_type, &references)?;
            let v = call(a, "POST", &format!("/subjects/{}/versions", seg(&subject)), Some(body)).await?;
            let mut t = Table::new(&["SUBJECT", "VERSION", "ID"]);
            t.row(vec![subject, v["version"].to_string(), v["id"].to_string()]);
            t.print(output)
        }
        SchemaCmd::Check { subject, file, schema_type, references, version } => {
            let body = schema_request(&file, &schema_type, &references)?;
            let path = match version {
                Some(v) => format!("/compatibility/subjects/{}/versions/{}?verbose=true", seg(&subject), seg(&v)),
                None => format!("/compatibility/subjects/{}/versions?verbose=true", seg(&subject)),
            };
            let v = call(a, "POST", &path, Some(body)).await?;
            let ok = v["is_compatible"].as_bool().unwrap_or(false);
            let mut t = Table::new(&["SUBJECT", "COMPATIBLE", "MESSAGES"]);
            let messages: Vec<&str> =
                v["messages"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            t.row(vec![subject, ok.to_string(), messages.join("; ")]);
            t.print(output)?;
            if !ok {
                bail!("incompatible");
            }
            Ok(())
        }
        SchemaCmd::Delete { subject, version, permanent } => {
            let path = match &version {
                Some(v) => format!("/subjects/{}/versions/{}?permanent={permanent}", seg(&subject), seg(v)),
                None => format!("/subjects/{}?permanent={permanent}", seg(&subject)),
            };
            let v = call(a, "DELETE", &path, None).await?;
            let versions: Vec<String> = match &v {
                Value::Array(vs) => vs.iter().map(Value::to_string).collect(),
                other => vec![other.to_string()],
            };
            let mut t = Table::new(&["SUBJECT", "DELETED_VERSIONS", "PERMANENT"]);
            t.row(vec![subject, versions.join(","), permanent.to_string()]);
            t.print(output)
        }
        SchemaCmd::Bench { subject, duration, connections } => {
            let latest = call(a, "GET", &format!("/subjects/{}/versions/latest", seg(&subject)), None).await?;
            let id = latest["id"].as_i64().ok_or_else(|| anyhow!("{subject} has no id"))?;
            let mut lookup = json!({ "schema": latest["schema"] });
            if let Some(t) = latest.get("schemaType") {
                lookup["schemaType"] = t.clone();
            }
            if let Some(r) = latest.get("references") {
                lookup["references"] = r.clone();
            }
            let phases = [
                ("GET /schemas/ids/{id}", "GET", format!("/schemas/ids/{id}"), String::new()),
                ("POST /subjects/{subject}", "POST", format!("/subjects/{}", seg(&subject)), lookup.to_string()),
            ];
            let mut t = Table::new(&["REQUEST", "CONNECTIONS", "REQUESTS", "PER_SECOND"]);
            for (what, method, target, body) in phases {
                let until = std::time::Instant::now() + std::time::Duration::from_secs_f64(duration);
                let tasks: Vec<_> = (0..connections.max(1))
                    .map(|_| {
                        let (addr, method, target, body) = (addr.clone(), method, target.clone(), body.clone());
                        tokio::spawn(async move { keep_alive_loop(&addr, method, &target, &body, until).await })
                    })
                    .collect();
                let started = std::time::Instant::now();
                let mut n = 0u64;
                for task in tasks {
                    n += task.await.map_err(|e| anyhow!("{e}"))??;
                }
                let rate = n as f64 / started.elapsed().as_secs_f64();
                t.row(vec![what.to_string(), connections.to_string(), n.to_string(), format!("{rate:.0}")]);
            }
            t.print(output)
        }
        SchemaCmd::Compatibility { subject, set } => {
            let path = match &subject {
                Some(s) => format!("/config/{}", seg(s)),
                None => "/config".to_string(),
            };
            let level = match set {
                Some(level) => {
                    let v = call(a, "PUT", &path, Some(json!({ "compatibility": level.to_ascii_uppercase() }))).await?;
                    v["compatibility"].as_str().unwrap_or("").to_string()
                }
                None => {
                    let v = call(a, "GET", &format!("{path}?defaultToGlobal=true"), None).await?;
                    v["compatibilityLevel"].as_str().unwrap_or("").to_string()
                }
            };
            let mut t = Table::new(&["SUBJECT", "COMPATIBILITY"]);
            t.row(vec![subject.unwrap_or_else(|| "(global)".into()), level]);
            t.print(output)
        }
    }
}
