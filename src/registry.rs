//! The schema registry (issue 18, ADR 0015): Confluent Schema Registry's model —
//! subjects, versions, global ids, compatibility levels, modes — kept in the compacted
//! `_schemas` topic in Confluent's own record format and served over its REST API
//! (`rest.rs`). Produce consults it to validate records (`wire.rs`).
//!
//! The in-memory image is only ever derived from the log: every broker holding a replica
//! of `_schemas`-0 applies its committed records in order, and a write is an append to
//! that partition (on its leader) followed by the same catch-up, so what a broker serves
//! after a restart or a failover is exactly what the log says.

pub mod avro;
pub mod json;
pub mod protobuf;
pub mod rest;
pub mod store;
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use strom_protocol::records::{decode_records_bounded, BatchBuilder};

use self::store::{Entry, SchemaValue};
use crate::error::ErrorCode;
use crate::metadata::{Metadata, Partition};

/// The registry's topic (Confluent's `kafkastore.topic` default).
pub const SCHEMAS_TOPIC: &str = "_schemas";
/// The name under which a broker registers its schema registry's address with the
/// quorum (beside its listeners), so other brokers can forward writes to it.
pub const REGISTRY_ENDPOINT: &str = "STROM_SCHEMA_REGISTRY";
/// How long a registry write waits for the `_schemas` replicas.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How deep references may nest (a reference of a reference of …).
const MAX_REFERENCE_DEPTH: usize = 32;

/// A schema type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaType {
    Avro,
    Json,
    Protobuf,
}

impl SchemaType {
    /// Parses Confluent's name (`AVRO`, `JSON`, `PROTOBUF`).
    pub fn parse(s: &str) -> Option<SchemaType> {
        match s.to_ascii_uppercase().as_str() {
            "AVRO" => Some(SchemaType::Avro),
            "JSON" => Some(SchemaType::Json),
            "PROTOBUF" => Some(SchemaType::Protobuf),
            _ => None,
        }
    }

    /// Confluent's name.
    pub fn name(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }
}

/// A compatibility level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Level {
    const ALL: [Level; 7] = [
        Level::None,
        Level::Backward,
        Level::BackwardTransitive,
        Level::Forward,
        Level::ForwardTransitive,
        Level::Full,
        Level::FullTransitive,
    ];

    /// Parses Confluent's name (any case).
    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name().eq_ignore_ascii_case(s.trim()))
    }

    /// Confluent's name.
    pub fn name(self) -> &'static str {
        match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(self) -> bool {
        matches!(self, Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive)
    }

    fn backward(self) -> bool {
        matches!(self, Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive)
    }

    fn forward(self) -> bool {
        matches!(self, Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive)
    }
}

/// A registry mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ReadWrite,
    ReadOnly,
    ReadOnlyOverride,
    Import,
}

impl Mode {
    /// Parses Confluent's name (any case).
    pub fn parse(s: &str) -> Option<Mode> {
        [Mode::ReadWrite, Mode::ReadOnly, Mode::ReadOnlyOverride, Mode::Import]
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s.trim()))
    }

    /// Confluent's name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::ReadWrite => "READWRITE",
            Mode::ReadOnly => "READONLY",
            Mode::ReadOnlyOverride => "READONLY_OVERRIDE",
            Mode::Import => "IMPORT",
        }
    }
}

/// A schema reference: the name the schema uses, and the subject version it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// A parsed schema of any type.
#[derive(Debug)]
pub enum Parsed {
    Avro(Box<avro::AvroSchema>),
    Json(json::JsonSchema),
    Protobuf(protobuf::ProtoSchema),
}

impl Parsed {
    /// Parses `text` as `kind`, with its references' texts as (name, text).
    pub fn parse(kind: SchemaType, text: &str, refs: &[(String, String)]) -> Result<Parsed, String> {
        Ok(match kind {
            SchemaType::Avro => Parsed::Avro(Box::new(avro::AvroSchema::parse(text, refs)?)),
            SchemaType::Json => Parsed::Json(json::JsonSchema::parse(text, refs)?),
            SchemaType::Protobuf => Parsed::Protobuf(protobuf::ProtoSchema::parse(text, refs)?),
        })
    }

    /// The text that decides whether two registrations are the same schema.
    pub fn canonical(&self) -> String {
        match self {
            Parsed::Avro(s) => s.canonical(),
            Parsed::Json(s) => s.canonical(),
            Parsed::Protobuf(s) => s.canonical(),
        }
    }

    /// Why a reader using `update` cannot read what `original` wrote (empty: it can).
    pub fn incompatibilities(original: &Parsed, update: &Parsed) -> Vec<String> {
        match (original, update) {
            (Parsed::Avro(a), Parsed::Avro(b)) => avro::incompatibilities(a, b),
            (Parsed::Json(a), Parsed::Json(b)) => json::incompatibilities(a, b),
            (Parsed::Protobuf(a), Parsed::Protobuf(b)) => protobuf::incompatibilities(a, b),
            _ => vec!["the schema type differs".to_string()],
        }
    }
}

/// An error as the REST API reports it: HTTP status, Confluent's `error_code`, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: u16,
    pub code: i32,
    pub message: String,
}

impl Error {
    fn new(status: u16, code: i32, message: impl Into<String>) -> Error {
        Error { status, code, message: message.into() }
    }
    fn subject_not_found(s: &str) -> Error {
        Error::new(404, 40401, format!("Subject '{s}' not found."))
    }
    fn version_not_found(v: impl std::fmt::Display) -> Error {
        Error::new(404, 40402, format!("Version {v} not found."))
    }
    fn schema_not_found(what: impl std::fmt::Display) -> Error {
        Error::new(404, 40403, format!("Schema {what} not found"))
    }
    fn invalid_schema(m: impl std::fmt::Display) -> Error {
        Error::new(422, 42201, format!("Invalid schema: {m}"))
    }
    fn store(m: impl std::fmt::Display) -> Error {
        Error::new(500, 50001, format!("Error in the backend data store: {m}"))
    }
}

/// A schema as clients register it (Confluent's RegisterSchemaRequest; unknown fields
/// such as `metadata` and `ruleSet` are accepted and ignored).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SchemaRequest {
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(rename = "schemaType", default)]
    pub schema_type: Option<String>,
    #[serde(default)]
    pub references: Option<Vec<Reference>>,
    /// Honoured in IMPORT mode only.
    #[serde(default)]
    pub id: Option<i32>,
    /// Honoured in IMPORT mode only.
    #[serde(default)]
    pub version: Option<i32>,
}

#[derive(Debug, Clone, Copy)]
struct VersionEntry {
    id: i32,
    deleted: bool,
}

/// One registered schema (shared by every subject version with this content).
#[derive(Debug)]
pub struct Stored {
    pub kind: SchemaType,
    pub schema: String,
    pub references: Vec<Reference>,
    /// `None` when the text could not be parsed here (imported from elsewhere).
    pub parsed: Option<Arc<Parsed>>,
}

/// The registry's state, as applied from `_schemas`.
#[derive(Debug, Default)]
pub struct Image {
    subjects: BTreeMap<String, BTreeMap<i32, VersionEntry>>,
    schemas: HashMap<i32, Arc<Stored>>,
    /// (type, canonical text, references) → id: the same content keeps its id.
    by_content: HashMap<(SchemaType, String, Vec<Reference>), i32>,
    max_id: i32,
    global_level: Option<Level>,
    levels: HashMap<String, Level>,
    global_mode: Option<Mode>,
    modes: HashMap<String, Mode>,
    /// The next `_schemas` offset to apply.
    next_offset: i64,
}

impl Image {
    fn resolve_refs(&self, refs: &[Reference], depth: usize) -> Result<Vec<(String, String)>, Error> {
        if depth > MAX_REFERENCE_DEPTH {
            return Err(Error::invalid_schema("references nest too deep"));
        }
        let mut out = Vec::new();
        for r in refs {
            let id =
                self.subjects.get(&r.subject).and_then(|vs| vs.get(&r.version)).map(|v| v.id).ok_or_else(|| {
                    Error::invalid_schema(format!("reference {} to {} v{} not found", r.name, r.subject, r.version))
                })?;
            let stored =
                self.schemas.get(&id).ok_or_else(|| Error::invalid_schema(format!("reference {} missing", r.name)))?;
            // Transitive references first: a referenced schema's own names resolve too.
            for pair in self.resolve_refs(&stored.references, depth + 1)? {
                if !out.iter().any(|(n, _): &(String, String)| *n == pair.0) {
                    out.push(pair);
                }
            }
            out.push((r.name.clone(), stored.schema.clone()));
        }
        Ok(out)
    }

    fn parse(&self, kind: SchemaType, text: &str, refs: &[Reference]) -> Result<Parsed, Error> {
        let resolved = self.resolve_refs(refs, 0)?;
        Parsed::parse(kind, text, &resolved).map_err(Error::invalid_schema)
    }

    fn apply(&mut self, entry: Entry) {
        match entry {
            Entry::Schema { subject, version, value: Some(v) } => {
                self.max_id = self.max_id.max(v.id);
                let kind = v.kind().unwrap_or(SchemaType::Avro);
                if !self.schemas.contains_key(&v.id) {
                    let parsed = self.parse(kind, &v.schema, &v.references).ok().map(Arc::new);
                    let canonical = parsed.as_ref().map_or_else(|| v.schema.clone(), |p| p.canonical());
                    self.by_content.entry((kind, canonical, v.references.clone())).or_insert(v.id);
                    let stored = Stored { kind, schema: v.schema, references: v.references, parsed };
                    self.schemas.insert(v.id, Arc::new(stored));
                }
                self.subjects
                    .entry(subject)
                    .or_default()
                    .insert(version, VersionEntry { id: v.id, deleted: v.deleted });
            }
            Entry::Schema { subject, version, value: None } => {
                let Some(versions) = self.subjects.get_mut(&subject) else { return };
                let Some(gone) = versions.remove(&version) else { return };
                if versions.is_empty() {
                    self.subjects.remove(&subject);
                }
                self.forget_if_unused(gone.id);
            }
            Entry::Config { subject: None, level } => self.global_level = level,
            Entry::Config { subject: Some(s), level: Some(l) } => {
                self.levels.insert(s, l);
            }
            Entry::Config { subject: Some(s), level: None } => {
                self.levels.remove(&s);
            }
            Entry::Mode { subject: None, mode } => self.global_mode = mode,
            Entry::Mode { subject: Some(s), mode: Some(m) } => {
                self.modes.insert(s, m);
            }
            Entry::Mode { subject: Some(s), mode: None } => {
                self.modes.remove(&s);
            }
            Entry::DeleteSubject { subject, version } => {
                if let Some(vs) = self.subjects.get_mut(&subject) {
                    vs.range_mut(..=version).for_each(|(_, v)| v.deleted = true);
                }
            }
            Entry::ClearSubject { subject } => {
                let ids: Vec<i32> = match self.subjects.get_mut(&subject) {
                    Some(vs) => {
                        let ids = vs.values().filter(|v| v.deleted).map(|v| v.id).collect();
                        vs.retain(|_, v| !v.deleted);
                        ids
                    }
                    None => return,
                };
                if self.subjects.get(&subject).is_some_and(BTreeMap::is_empty) {
                    self.subjects.remove(&subject);
                }
                ids.into_iter().for_each(|id| self.forget_if_unused(id));
            }
            Entry::Noop { max_id } => self.max_id = self.max_id.max(max_id.unwrap_or(0)),
        }
    }

    /// Drops a schema no subject version uses any more (after hard deletes).
    fn forget_if_unused(&mut self, id: i32) {
        if self.subjects.values().any(|vs| vs.values().any(|v| v.id == id)) {
            return;
        }
        if let Some(s) = self.schemas.remove(&id) {
            self.by_content.retain(|_, v| *v != id);
            drop(s);
        }
    }

    fn level_of(&self, subject: &str) -> Level {
        self.levels.get(subject).copied().or(self.global_level).unwrap_or(Level::Backward)
    }

    fn mode_of(&self, subject: Option<&str>) -> Mode {
        subject.and_then(|s| self.modes.get(s)).copied().or(self.global_mode).unwrap_or(Mode::ReadWrite)
    }

    fn live_versions(&self, subject: &str) -> Vec<(i32, i32)> {
        self.subjects
            .get(subject)
            .map(|vs| vs.iter().filter(|(_, v)| !v.deleted).map(|(&n, v)| (n, v.id)).collect())
            .unwrap_or_default()
    }

    /// A subject version by Confluent's version argument (`latest`, `-1` or a number).
    fn version(&self, subject: &str, version: &str, deleted: bool) -> Result<(i32, i32), Error> {
        let versions = self.subjects.get(subject).ok_or_else(|| Error::subject_not_found(subject))?;
        let visible: Vec<(i32, i32)> =
            versions.iter().filter(|(_, v)| deleted || !v.deleted).map(|(&n, v)| (n, v.id)).collect();
        if visible.is_empty() {
            return Err(Error::subject_not_found(subject));
        }
        if version == "latest" || version == "-1" {
            return visible.last().copied().ok_or_else(|| Error::subject_not_found(subject));
        }
        let n: i32 = version.parse().ok().filter(|&n: &i32| n >= 1).ok_or_else(|| {
            Error::new(
                422,
                42202,
                format!("The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""),
            )
        })?;
        visible.into_iter().find(|(v, _)| *v == n).ok_or_else(|| Error::version_not_found(n))
    }

    /// Confluent's version object.
    fn version_json(&self, subject: &str, version: i32, id: i32, serialized: bool) -> Value {
        let Some(s) = self.schemas.get(&id) else { return json!({}) };
        let mut v = json!({ "subject": subject, "version": version, "id": id, "schema": schema_text(s, serialized) });
        if s.kind != SchemaType::Avro {
            v["schemaType"] = json!(s.kind.name());
        }
        if !s.references.is_empty() {
            v["references"] = json!(s.references);
        }
        v
    }

    /// The id a subject version registered under `subject` with content `parsed` has, if any.
    fn find(&self, subject: &str, key: &(SchemaType, String, Vec<Reference>), deleted: bool) -> Option<(i32, i32)> {
        let id = *self.by_content.get(key)?;
        let versions = self.subjects.get(subject)?;
        versions.iter().find(|(_, v)| v.id == id && (deleted || !v.deleted)).map(|(&n, v)| (n, v.id))
    }

    /// Whether `id` is registered under `subject` (a live version): produce validation.
    pub fn id_in_subject(&self, subject: &str, id: i32) -> bool {
        self.subjects.get(subject).is_some_and(|vs| vs.values().any(|v| v.id == id && !v.deleted))
    }

    /// The schema with `id`.
    pub fn schema(&self, id: i32) -> Option<&Arc<Stored>> {
        self.schemas.get(&id)
    }
}

/// The schema text to answer with: Protobuf as a base64 descriptor when asked
/// (`format=serialized`, what confluent-kafka's Protobuf serdes ask for).
fn schema_text(s: &Stored, serialized: bool) -> String {
    match (&s.parsed, serialized) {
        (Some(p), true) => match p.as_ref() {
            Parsed::Protobuf(proto) => proto.serialized(),
            _ => s.schema.clone(),
        },
        _ => s.schema.clone(),
    }
}

/// Counters an operator asks for.
#[derive(Debug, Default)]
pub struct RegistryStats {
    /// REST requests answered, by outcome.
    pub requests_ok: AtomicU64,
    pub requests_client_error: AtomicU64,
    pub requests_server_error: AtomicU64,
    /// Records replayed from `_schemas` (load and catch-up).
    pub records_applied: AtomicU64,
}

/// The registry of this broker.
pub struct Registry {
    image: RwLock<Image>,
    /// Serializes writes: a decision (next id, next version, compatibility) must see every
    /// write before it.
    writer: tokio::sync::Mutex<()>,
    meta: OnceLock<Weak<Metadata>>,
    /// Metrics.
    pub stats: RegistryStats,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

/// The registry's arguments for a query, parsed by the REST layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    pub deleted: bool,
    pub deleted_only: bool,
    pub permanent: bool,
    pub serialized: bool,
    pub verbose: bool,
    pub default_to_global: bool,
    pub force: bool,
}

impl Registry {
    /// An empty registry; [`Registry::attach`] gives it the metadata to find `_schemas`.
    pub fn new() -> Registry {
        Registry {
            image: RwLock::new(Image::default()),
            writer: tokio::sync::Mutex::new(()),
            meta: OnceLock::new(),
            stats: RegistryStats::default(),
        }
    }

    /// Gives the registry the broker's metadata.
    pub fn attach(&self, meta: &Arc<Metadata>) {
        let _ = self.meta.set(Arc::downgrade(meta));
    }

    fn meta(&self) -> Result<Arc<Metadata>, Error> {
        self.meta.get().and_then(Weak::upgrade).ok_or_else(|| Error::new(500, 50004, "the broker is shutting down"))
    }

    fn partition(&self) -> Option<(Arc<Metadata>, Arc<Partition>)> {
        let meta = self.meta().ok()?;
        let p = meta.topic(SCHEMAS_TOPIC)?.partitions.first().cloned()?;
        Some((meta, p))
    }

    /// Distinct schemas and subjects known (metrics).
    pub fn sizes(&self) -> (usize, usize) {
        let img = self.read();
        (img.schemas.len(), img.subjects.len())
    }

    /// The image, caught up with what `_schemas` has committed.
    pub fn read(&self) -> RwLockReadGuard<'_, Image> {
        self.catch_up();
        self.image.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies the committed `_schemas` records not applied yet.
    pub fn catch_up(&self) {
        let Some((_, p)) = self.partition() else { return };
        let hw = p.high_watermark();
        {
            let img = self.image.read().unwrap_or_else(|p| p.into_inner());
            if img.next_offset == hw {
                return;
            }
        }
        let mut img = self.image.write().unwrap_or_else(|p| p.into_inner());
        if img.next_offset > hw || img.next_offset < p.log_start_offset() {
            // The topic was recreated or records were deleted under us: start over.
            *img = Image::default();
        }
        let started = std::time::Instant::now();
        let mut applied = 0u64;
        let from = img.next_offset;
        let offset = p.scan_batches(from, hw, |header, batch| {
            if header.is_control() {
                return;
            }
            let Ok(recs) = decode_records_bounded(batch, 64 << 20) else {
                tracing::warn!(offset = header.base_offset, "skipping an undecodable batch in {SCHEMAS_TOPIC}");
                return;
            };
            for rec in recs {
                if header.base_offset + i64::from(rec.offset_delta) >= hw {
                    break;
                }
                let Some(key) = rec.key else { continue };
                match store::decode(&key, rec.value.as_deref()) {
                    Ok(Some(e)) => {
                        img.apply(e);
                        applied += 1;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "skipping an undecodable {SCHEMAS_TOPIC} record"),
                }
            }
        });
        img.next_offset = offset.min(hw).max(img.next_offset);
        self.stats.records_applied.fetch_add(applied, Ordering::Relaxed);
        if applied > 100 {
            tracing::info!(
                records = applied,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "applied {SCHEMAS_TOPIC}"
            );
        }
    }

    /// Appends `entries` to `_schemas` (creating it on first use), waits until they are
    /// committed, and applies them.
    async fn write(&self, entries: &[Entry]) -> Result<(), Error> {
        let meta = self.meta()?;
        let topic = meta.schemas_topic().ok_or_else(|| Error::store(format!("{SCHEMAS_TOPIC} cannot be created")))?;
        let p = topic.partitions.first().cloned().ok_or_else(|| Error::store("no partition"))?;
        if meta.quorum().is_some() && !meta.leads(&topic, 0) {
            // Leadership moved while the request was forwarded or decided: clients retry 5xx.
            let leader = meta.leader_of(&topic, 0);
            return Err(Error::new(
                500,
                50004,
                format!("this broker no longer leads {SCHEMAS_TOPIC} (broker {leader} does)"),
            ));
        }
        let mut batch = BatchBuilder::new(strom_storage::now_ms());
        for e in entries {
            let (k, v) = store::encode(e);
            batch.add(Some(&k), v.as_deref());
        }
        let info = p.append(&batch.build()).map_err(|(_, m)| Error::store(m))?;
        let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
        p.wait_committed(info.last_offset + 1, deadline).await.map_err(|code| match code {
            ErrorCode::RequestTimedOut => Error::new(500, 50002, "timed out waiting for the _schemas replicas"),
            c => Error::store(format!("{c:?}")),
        })?;
        self.catch_up();
        Ok(())
    }

    /// Where a request must go when this broker cannot answer it: the registry of the
    /// `_schemas` leader, in a cluster where that is another broker, for every write (ids
    /// and versions are allocated in one place) and for reads on a broker that holds no
    /// copy of `_schemas`. `Err` when the leader is unknown or serves no registry.
    pub fn forward_target(&self, write: bool) -> Result<Option<String>, Error> {
        let meta = self.meta()?;
        if meta.quorum().is_none() {
            return Ok(None);
        }
        let topic = if write {
            meta.schemas_topic().ok_or_else(|| Error::store(format!("{SCHEMAS_TOPIC} cannot be created")))?
        } else {
            match meta.topic(SCHEMAS_TOPIC) {
                Some(t) => t,
                None => return Ok(None), // nothing registered anywhere yet
            }
        };
        let local = topic.partitions.first().is_some_and(|p| if write { p.is_leader() } else { p.is_replica() });
        if local && (!write || meta.leads(&topic, 0)) {
            return Ok(None);
        }
        let leader = meta.leader_of(&topic, 0);
        let image = meta.image();
        let ep = image
            .brokers
            .get(&leader)
            .and_then(|b| b.endpoints.iter().find(|e| e.name == REGISTRY_ENDPOINT))
            .ok_or_else(|| {
                Error::new(
                    500,
                    50004,
                    format!("the {SCHEMAS_TOPIC} leader (broker {leader}) serves no schema registry"),
                )
            })?;
        Ok(Some(format!("{}:{}", ep.host, ep.port)))
    }

    /// Whether this broker's copy of `_schemas` may trail what the leader has committed
    /// (it follows the partition; the leader's own copy never trails).
    pub fn may_lag(&self) -> bool {
        self.partition().is_some_and(|(meta, p)| meta.quorum().is_some() && !p.is_leader())
    }

    /// Catches up with everything the `_schemas` leader has applied as of now (asked over
    /// its REST listener), bounded; a no-op on the leader or a single node.
    pub async fn refresh(&self) {
        let target = match self.forward_target(true) {
            Ok(Some(leader)) => leader,
            _ => return self.catch_up(),
        };
        if let Some(offset) = rest::applied_at(&target).await {
            self.await_applied(offset).await;
        }
    }

    /// The `_schemas` offset applied so far (answered to forwarding brokers, which wait
    /// for their own copy to reach it: a client reads its write on the broker it used).
    pub fn applied(&self) -> i64 {
        self.image.read().unwrap_or_else(|p| p.into_inner()).next_offset
    }

    /// Waits (bounded) until this broker's copy of `_schemas` has `offset` committed and
    /// applied. The topic may not have reached this broker's metadata yet (the write
    /// that created it was just forwarded), so its appearance is polled for first.
    pub async fn await_applied(&self, offset: i64) {
        let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
        loop {
            match self.partition() {
                Some((_, p)) if p.is_replica() => {
                    if p.await_high_watermark(offset, deadline).await {
                        self.catch_up();
                    }
                    return;
                }
                Some(_) => return, // no copy here: reads are forwarded to the leader
                None if tokio::time::Instant::now() >= deadline => return,
                None => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    /// Before a write: everything committed so far must be applied, on a new leader too
    /// (its high watermark may trail its log until the followers catch up).
    async fn settle(&self) -> Result<(), Error> {
        if let Some((meta, p)) = self.partition() {
            if meta.quorum().is_some() {
                let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
                p.wait_committed(p.log_end_offset(), deadline)
                    .await
                    .map_err(|_| Error::new(500, 50002, "timed out waiting for the _schemas replicas"))?;
            }
        }
        self.catch_up();
        Ok(())
    }

    fn check_mode(img: &Image, subject: Option<&str>) -> Result<Mode, Error> {
        match img.mode_of(subject) {
            m @ (Mode::ReadOnly | Mode::ReadOnlyOverride) => {
                Err(Error::new(422, 42205, format!("Subject {} is in {} mode", subject.unwrap_or(""), m.name())))
            }
            m => Ok(m),
        }
    }

    /// POST /subjects/{s}/versions: registers a schema (or answers the id it already has).
    pub async fn register(&self, subject: &str, req: SchemaRequest) -> Result<Value, Error> {
        check_subject_name(subject)?;
        let _w = self.writer.lock().await;
        self.settle().await?;
        let (entry, answer) = {
            let img = self.read();
            let mode = Self::check_mode(&img, Some(subject))?;
            let (kind, text, refs) = request_parts(&req)?;
            let parsed = img.parse(kind, &text, &refs)?;
            let key = (kind, parsed.canonical(), refs.clone());
            if let Some((version, id)) = img.find(subject, &key, false) {
                if mode != Mode::Import || req.id.is_none_or(|i| i == id) {
                    return Ok(json!({ "id": id, "version": version }));
                }
            }
            let live = img.live_versions(subject);
            let (id, version) = if mode == Mode::Import {
                let id = req.id.ok_or_else(|| Error::new(422, 42205, "IMPORT mode needs an id"))?;
                if img.schemas.get(&id).is_some_and(|s| {
                    s.parsed.as_ref().map(|p| (s.kind, p.canonical(), s.references.clone())) != Some(key.clone())
                }) {
                    return Err(Error::new(
                        422,
                        42207,
                        format!("Schema id {id} already exists with a different schema"),
                    ));
                }
                let max = img.subjects.get(subject).and_then(|vs| vs.keys().next_back().copied()).unwrap_or(0);
                (id, req.version.unwrap_or(max + 1))
            } else {
                let level = img.level_of(subject);
                let messages = self.incompatibilities(&img, level, &parsed, &live);
                if !messages.is_empty() {
                    return Err(Error::new(
                        409,
                        409,
                        format!(
                            "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                            messages.join(", ")
                        ),
                    ));
                }
                let id = img.by_content.get(&key).copied().unwrap_or(img.max_id + 1);
                // Versions keep counting past deleted ones, as Confluent's do.
                let max = img.subjects.get(subject).and_then(|vs| vs.keys().next_back().copied()).unwrap_or(0);
                (id, max + 1)
            };
            let value = SchemaValue {
                subject: subject.to_string(),
                version,
                id,
                schema_type: (kind != SchemaType::Avro).then(|| kind.name().to_string()),
                references: refs,
                schema: text,
                deleted: false,
            };
            (
                Entry::Schema { subject: subject.to_string(), version, value: Some(value) },
                json!({ "id": id, "version": version }),
            )
        };
        self.write(&[entry]).await?;
        tracing::info!(subject, answer = %answer, "registered a schema");
        Ok(answer)
    }

    fn incompatibilities(&self, img: &Image, level: Level, parsed: &Parsed, live: &[(i32, i32)]) -> Vec<String> {
        if level == Level::None {
            return Vec::new();
        }
        let against: Vec<i32> = if level.transitive() {
            live.iter().rev().map(|(_, id)| *id).collect()
        } else {
            live.last().map(|(_, id)| *id).into_iter().collect()
        };
        let mut out = Vec::new();
        for id in against {
            let Some(old) = img.schemas.get(&id).and_then(|s| s.parsed.clone()) else {
                out.push(format!("schema {id} cannot be parsed to compare with"));
                continue;
            };
            if level.backward() {
                out.extend(
                    Parsed::incompatibilities(&old, parsed)
                        .into_iter()
                        .map(|m| format!("{{oldSchemaVersion: id {id}, {m}}}")),
                );
            }
            if level.forward() {
                out.extend(
                    Parsed::incompatibilities(parsed, &old)
                        .into_iter()
                        .map(|m| format!("{{newSchema cannot be read by id {id}: {m}}}")),
                );
            }
        }
        out
    }

    /// POST /subjects/{s}: the version of `subject` with this schema.
    pub fn lookup(&self, subject: &str, req: SchemaRequest, flags: Flags) -> Result<Value, Error> {
        let img = self.read();
        if !img.subjects.get(subject).is_some_and(|vs| vs.values().any(|v| flags.deleted || !v.deleted)) {
            return Err(Error::subject_not_found(subject));
        }
        let (kind, text, refs) = request_parts(&req)?;
        let parsed = img.parse(kind, &text, &refs)?;
        let key = (kind, parsed.canonical(), refs);
        let (version, id) =
            img.find(subject, &key, flags.deleted).ok_or_else(|| Error::new(404, 40403, "Schema not found"))?;
        Ok(img.version_json(subject, version, id, flags.serialized))
    }

    /// GET /subjects.
    pub fn subjects(&self, prefix: &str, flags: Flags) -> Value {
        let img = self.read();
        let names: Vec<&String> = img
            .subjects
            .iter()
            .filter(|(s, _)| s.starts_with(prefix))
            .filter(|(_, vs)| {
                let (live, dead) = (vs.values().any(|v| !v.deleted), vs.values().any(|v| v.deleted));
                if flags.deleted_only {
                    dead
                } else {
                    live || (flags.deleted && dead)
                }
            })
            .map(|(s, _)| s)
            .collect();
        json!(names)
    }

    /// GET /subjects/{s}/versions.
    pub fn versions(&self, subject: &str, flags: Flags) -> Result<Value, Error> {
        let img = self.read();
        let vs = img.subjects.get(subject).ok_or_else(|| Error::subject_not_found(subject))?;
        let list: Vec<i32> = vs
            .iter()
            .filter(|(_, v)| if flags.deleted_only { v.deleted } else { flags.deleted || !v.deleted })
            .map(|(&n, _)| n)
            .collect();
        if list.is_empty() && !flags.deleted_only {
            return Err(Error::subject_not_found(subject));
        }
        Ok(json!(list))
    }

    /// GET /subjects/{s}/versions/{v}.
    pub fn get_version(&self, subject: &str, version: &str, flags: Flags) -> Result<Value, Error> {
        let img = self.read();
        let (n, id) = img.version(subject, version, flags.deleted)?;
        Ok(img.version_json(subject, n, id, flags.serialized))
    }

    /// GET /subjects/{s}/versions/{v}/referencedby: ids of the schemas referencing it.
    pub fn referenced_by(&self, subject: &str, version: &str) -> Result<Value, Error> {
        let img = self.read();
        let (n, _) = img.version(subject, version, false)?;
        let mut ids: Vec<i32> = img
            .schemas
            .iter()
            .filter(|(_, s)| s.references.iter().any(|r| r.subject == subject && r.version == n))
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        Ok(json!(ids))
    }

    /// DELETE /subjects/{s}: soft-deletes every version, or (permanent) removes the
    /// soft-deleted ones.
    pub async fn delete_subject(&self, subject: &str, flags: Flags) -> Result<Value, Error> {
        let _w = self.writer.lock().await;
        self.settle().await?;
        let (entries, deleted) = {
            let img = self.read();
            Self::check_mode(&img, Some(subject))?;
            let vs = img.subjects.get(subject).ok_or_else(|| Error::subject_not_found(subject))?;
            let live: Vec<i32> = vs.iter().filter(|(_, v)| !v.deleted).map(|(&n, _)| n).collect();
            if flags.permanent {
                if !live.is_empty() {
                    return Err(Error::new(
                        404,
                        40405,
                        format!("Subject '{subject}' was not deleted first before being permanently deleted"),
                    ));
                }
                img.check_not_referenced(subject, None)?;
                let all: Vec<i32> = vs.keys().copied().collect();
                let mut entries: Vec<Entry> = all
                    .iter()
                    .map(|&version| Entry::Schema { subject: subject.to_string(), version, value: None })
                    .collect();
                entries.push(Entry::Config { subject: Some(subject.to_string()), level: None });
                entries.push(Entry::Noop { max_id: Some(img.max_id) });
                (entries, all)
            } else {
                if live.is_empty() {
                    return Err(Error::new(
                        404,
                        40404,
                        format!("Subject '{subject}' was soft deleted.Set permanent=true to delete permanently"),
                    ));
                }
                img.check_not_referenced(subject, None)?;
                let entries = live
                    .iter()
                    .filter_map(|&version| {
                        let v = vs.get(&version)?;
                        Some(Entry::Schema {
                            subject: subject.to_string(),
                            version,
                            value: Some(img.value_of(subject, version, v.id, true)?),
                        })
                    })
                    .collect();
                (entries, live)
            }
        };
        self.write(&entries).await?;
        Ok(json!(deleted))
    }

    /// DELETE /subjects/{s}/versions/{v}.
    pub async fn delete_version(&self, subject: &str, version: &str, flags: Flags) -> Result<Value, Error> {
        let _w = self.writer.lock().await;
        self.settle().await?;
        let entries = {
            let img = self.read();
            Self::check_mode(&img, Some(subject))?;
            let (n, id) = img.version(subject, version, true)?;
            let deleted = img.subjects.get(subject).and_then(|vs| vs.get(&n)).is_some_and(|v| v.deleted);
            img.check_not_referenced(subject, Some(n))?;
            if flags.permanent {
                if !deleted {
                    return Err(Error::new(
                        404,
                        40407,
                        format!(
                            "Subject '{subject}' Version {n} was not deleted first before being permanently deleted"
                        ),
                    ));
                }
                vec![
                    Entry::Schema { subject: subject.to_string(), version: n, value: None },
                    Entry::Noop { max_id: Some(img.max_id) },
                ]
            } else {
                if deleted {
                    return Err(Error::new(
                        404,
                        40406,
                        format!(
                            "Subject '{subject}' Version {n} was soft deleted.Set permanent=true to delete permanently"
                        ),
                    ));
                }
                let value = img.value_of(subject, n, id, true).ok_or_else(|| Error::version_not_found(n))?;
                vec![Entry::Schema { subject: subject.to_string(), version: n, value: Some(value) }]
            }
            .into_iter()
            .map(|e| (e, n))
            .collect::<Vec<_>>()
        };
        let n = entries.first().map_or(0, |(_, n)| *n);
        self.write(&entries.into_iter().map(|(e, _)| e).collect::<Vec<_>>()).await?;
        Ok(json!(n))
    }

    /// GET /schemas/ids/{id}.
    pub fn schema_by_id(&self, id: i32, flags: Flags) -> Result<Value, Error> {
        let img = self.read();
        let s = img.schemas.get(&id).ok_or_else(|| Error::schema_not_found(id))?;
        let mut v = json!({ "schema": schema_text(s, flags.serialized) });
        if s.kind != SchemaType::Avro {
            v["schemaType"] = json!(s.kind.name());
        }
        if !s.references.is_empty() {
            v["references"] = json!(s.references);
        }
        Ok(v)
    }

    /// GET /schemas/ids/{id}/schema: the raw text.
    pub fn raw_schema_by_id(&self, id: i32, flags: Flags) -> Result<String, Error> {
        let img = self.read();
        img.schemas.get(&id).map(|s| schema_text(s, flags.serialized)).ok_or_else(|| Error::schema_not_found(id))
    }

    /// GET /schemas/ids/{id}/versions (and `/subjects` with `subjects_only`).
    pub fn versions_by_id(&self, id: i32, flags: Flags, subjects_only: bool) -> Result<Value, Error> {
        let img = self.read();
        if !img.schemas.contains_key(&id) {
            return Err(Error::schema_not_found(id));
        }
        let mut out = Vec::new();
        for (s, vs) in &img.subjects {
            for (n, v) in vs {
                if v.id == id && (flags.deleted || !v.deleted) {
                    out.push(if subjects_only { json!(s) } else { json!({ "subject": s, "version": n }) });
                }
            }
        }
        if subjects_only {
            out.dedup();
        }
        Ok(json!(out))
    }

    /// POST /compatibility/subjects/{s}/versions[/{v}]: whether `req` may be registered
    /// (against one version, or those the subject's level selects).
    pub fn check(
        &self,
        subject: &str,
        version: Option<&str>,
        req: SchemaRequest,
        flags: Flags,
    ) -> Result<Value, Error> {
        let img = self.read();
        let (kind, text, refs) = request_parts(&req)?;
        let parsed = img.parse(kind, &text, &refs)?;
        let level = img.level_of(subject);
        let against: Vec<(i32, i32)> = match version {
            Some(v) => vec![img.version(subject, v, false)?],
            None => img.live_versions(subject),
        };
        let level = if version.is_some() && level.transitive() {
            // One version named: compare with it alone, in the level's direction(s).
            match level {
                Level::BackwardTransitive => Level::Backward,
                Level::ForwardTransitive => Level::Forward,
                _ => Level::Full,
            }
        } else {
            level
        };
        let messages = self.incompatibilities(&img, level, &parsed, &against);
        let mut v = json!({ "is_compatible": messages.is_empty() });
        if flags.verbose || !messages.is_empty() {
            v["messages"] = json!(messages);
        }
        Ok(v)
    }

    /// GET /config[/{s}].
    pub fn get_config(&self, subject: Option<&str>, flags: Flags) -> Result<Value, Error> {
        let img = self.read();
        let level = match subject {
            None => img.global_level.unwrap_or(Level::Backward),
            Some(s) => match img.levels.get(s) {
                Some(l) => *l,
                None if flags.default_to_global => img.global_level.unwrap_or(Level::Backward),
                None => {
                    return Err(Error::new(
                        404,
                        40408,
                        format!("Subject '{s}' does not have subject-level compatibility configured"),
                    ))
                }
            },
        };
        Ok(json!({ "compatibilityLevel": level.name() }))
    }

    /// PUT /config[/{s}] with `{"compatibility": LEVEL}`; echoes it.
    pub async fn set_config(&self, subject: Option<&str>, body: &Value) -> Result<Value, Error> {
        if let Some(s) = subject {
            check_subject_name(s)?;
        }
        let name =
            body.get("compatibility").or_else(|| body.get("compatibilityLevel")).and_then(Value::as_str).unwrap_or("");
        let level = Level::parse(name).ok_or_else(|| Error::new(422, 42203, format!("Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive: {name:?}")))?;
        let _w = self.writer.lock().await;
        self.settle().await?;
        self.write(&[Entry::Config { subject: subject.map(str::to_string), level: Some(level) }]).await?;
        Ok(json!({ "compatibility": level.name() }))
    }

    /// DELETE /config[/{s}]: answers the level that was set.
    pub async fn delete_config(&self, subject: Option<&str>) -> Result<Value, Error> {
        let _w = self.writer.lock().await;
        self.settle().await?;
        let old = {
            let img = self.read();
            match subject {
                None => img.global_level.unwrap_or(Level::Backward),
                Some(s) => *img.levels.get(s).ok_or_else(|| Error::subject_not_found(s))?,
            }
        };
        self.write(&[Entry::Config { subject: subject.map(str::to_string), level: None }]).await?;
        Ok(json!({ "compatibilityLevel": old.name() }))
    }

    /// GET /mode[/{s}].
    pub fn get_mode(&self, subject: Option<&str>, flags: Flags) -> Result<Value, Error> {
        let img = self.read();
        let mode = match subject {
            None => img.global_mode.unwrap_or(Mode::ReadWrite),
            Some(s) => match img.modes.get(s) {
                Some(m) => *m,
                None if flags.default_to_global => img.global_mode.unwrap_or(Mode::ReadWrite),
                None => {
                    return Err(Error::new(
                        404,
                        40409,
                        format!("Subject '{s}' does not have subject-level mode configured"),
                    ))
                }
            },
        };
        Ok(json!({ "mode": mode.name() }))
    }

    /// PUT /mode[/{s}] with `{"mode": MODE}`; echoes it.
    pub async fn set_mode(&self, subject: Option<&str>, body: &Value, flags: Flags) -> Result<Value, Error> {
        let name = body.get("mode").and_then(Value::as_str).unwrap_or("");
        let mode = Mode::parse(name).ok_or_else(|| {
            Error::new(
                422,
                42204,
                format!("Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE, IMPORT: {name:?}"),
            )
        })?;
        let _w = self.writer.lock().await;
        self.settle().await?;
        if mode == Mode::Import && !flags.force {
            let img = self.read();
            let has = match subject {
                None => !img.subjects.is_empty(),
                Some(s) => img.subjects.contains_key(s),
            };
            if has {
                return Err(Error::new(422, 42205, "Cannot import since found existing subjects"));
            }
        }
        self.write(&[Entry::Mode { subject: subject.map(str::to_string), mode: Some(mode) }]).await?;
        Ok(json!({ "mode": mode.name() }))
    }

    /// DELETE /mode/{s}.
    pub async fn delete_mode(&self, subject: &str) -> Result<Value, Error> {
        let _w = self.writer.lock().await;
        self.settle().await?;
        let old = *self.read().modes.get(subject).ok_or_else(|| Error::subject_not_found(subject))?;
        self.write(&[Entry::Mode { subject: Some(subject.to_string()), mode: None }]).await?;
        Ok(json!({ "mode": old.name() }))
    }
}

impl Image {
    /// The record value of an existing version, with `deleted` set.
    fn value_of(&self, subject: &str, version: i32, id: i32, deleted: bool) -> Option<SchemaValue> {
        let s = self.schemas.get(&id)?;
        Some(SchemaValue {
            subject: subject.to_string(),
            version,
            id,
            schema_type: (s.kind != SchemaType::Avro).then(|| s.kind.name().to_string()),
            references: s.references.clone(),
            schema: s.schema.clone(),
            deleted,
        })
    }

    /// A version (or any of a subject's) still referenced by a live schema cannot go
    /// (42206), as Confluent refuses.
    fn check_not_referenced(&self, subject: &str, version: Option<i32>) -> Result<(), Error> {
        for (s, vs) in &self.subjects {
            for v in vs.values().filter(|v| !v.deleted) {
                let Some(stored) = self.schemas.get(&v.id) else { continue };
                if stored.references.iter().any(|r| r.subject == subject && version.is_none_or(|n| n == r.version)) {
                    return Err(Error::new(
                        422,
                        42206,
                        format!("One or more references exist to the schema {{subject={subject}}}: referenced by {s}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The type, text and references of a request, with Confluent's checks.
fn request_parts(req: &SchemaRequest) -> Result<(SchemaType, String, Vec<Reference>), Error> {
    let text =
        req.schema.clone().filter(|s| !s.trim().is_empty()).ok_or_else(|| Error::new(422, 42201, "Empty schema"))?;
    let kind = match req.schema_type.as_deref() {
        None | Some("") => SchemaType::Avro,
        Some(t) => SchemaType::parse(t).ok_or_else(|| Error::new(422, 42201, format!("Invalid schema type {t}")))?,
    };
    Ok((kind, text, req.references.clone().unwrap_or_default()))
}

/// Confluent refuses empty subjects and control characters (42208).
fn check_subject_name(subject: &str) -> Result<(), Error> {
    if subject.is_empty() || subject.chars().any(char::is_control) || subject.len() > 4096 {
        return Err(Error::new(422, 42208, format!("Invalid subject {subject:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(subject: &str, version: i32, id: i32, schema: &str) -> Entry {
        let v = SchemaValue {
            subject: subject.into(),
            version,
            id,
            schema_type: None,
            references: vec![],
            schema: schema.into(),
            deleted: false,
        };
        Entry::Schema { subject: subject.into(), version, value: Some(v) }
    }

    #[test]
    fn the_image_follows_soft_and_hard_deletes_and_never_lowers_the_max_id() {
        let mut img = Image::default();
        img.apply(value("a", 1, 1, r#""string""#));
        img.apply(value("b", 1, 1, r#""string""#));
        img.apply(value("a", 2, 2, r#""int""#));
        assert_eq!(img.live_versions("a"), vec![(1, 1), (2, 2)]);
        img.apply(Entry::DeleteSubject { subject: "a".into(), version: 2 });
        assert!(img.live_versions("a").is_empty());
        assert!(img.schemas.contains_key(&2), "soft-deleted ids stay resolvable");
        img.apply(Entry::ClearSubject { subject: "a".into() });
        assert!(!img.subjects.contains_key("a"));
        assert!(img.schemas.contains_key(&1), "still used by b");
        assert!(!img.schemas.contains_key(&2));
        assert_eq!(img.max_id, 2);
        img.apply(Entry::Noop { max_id: Some(5) });
        assert_eq!(img.max_id, 5);
        assert_eq!(img.version("b", "latest", false).unwrap(), (1, 1));
        assert_eq!(img.version("b", "0", false).unwrap_err().code, 42202);
        assert_eq!(img.version("b", "7", false).unwrap_err().code, 40402);
        assert_eq!(img.version("zz", "1", false).unwrap_err().code, 40401);
    }

    #[test]
    fn levels_and_modes_parse_in_any_case() {
        assert_eq!(Level::parse("full_transitive"), Some(Level::FullTransitive));
        assert_eq!(Level::parse("sideways"), None);
        assert_eq!(Mode::parse("readonly"), Some(Mode::ReadOnly));
        assert!(check_subject_name("orders-value").is_ok());
        assert_eq!(check_subject_name("a\u{0}b").unwrap_err().code, 42208);
    }
}
