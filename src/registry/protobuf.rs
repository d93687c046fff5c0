//! Protobuf schema support for the built-in Schema Registry.
//!
//! Schemas arrive either as `.proto` source text or as the base64 of a serialized
//! `google.protobuf.FileDescriptorProto` (the form confluent-kafka-python registers). Both are compiled with
//! `protox` into a `prost_reflect::DescriptorPool`, which backs canonicalisation, message-index lookup, payload
//! validation and the compatibility diff.
//!
//! The compatibility rules follow Confluent's protobuf-provider diff (`SchemaDiff`, `MessageSchemaDiff`,
//! `FieldSchemaDiff`, `OneOfDiff`, `EnumSchemaDiff`): fields are matched by number, messages and enums by name, and
//! each finding is one of Confluent's `Difference.Type` names so that operators see the same words as with
//! Confluent's registry.
//!
//! Everything here handles untrusted input (REST bodies and producer payloads): no panics, bounded recursion and
//! bounded allocation.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use prost::Message as _;
use prost_reflect::{
    Cardinality, DescriptorPool, DynamicMessage, EnumDescriptor, FieldDescriptor, FileDescriptor, Kind,
    MessageDescriptor, Syntax,
};
use prost_types::field_descriptor_proto::Type as FieldType;
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto};

/// Largest schema text (either form) we accept; far above real schemas, small enough to bound compile work.
const MAX_SCHEMA_LEN: usize = 4 * 1024 * 1024;
/// Largest number of references a schema may carry.
const MAX_REFS: usize = 10_000;
/// Deepest bracket nesting accepted in `.proto` text. protox already caps message nesting at 31, but option
/// aggregates (`option (x) = { a: { b: ... } }`) are parsed recursively later, so we bound all brackets up front.
const MAX_TEXT_NESTING: usize = 64;
/// Largest message-index count Confluent's deserializers accept.
const MAX_INDEX_COUNT: i64 = 100_000;
/// Recursion bound for the compatibility diff (nested types plus message types followed into imports).
const MAX_DIFF_DEPTH: usize = 128;
/// Upper bound on reported incompatibilities, so a pathological pair of schemas cannot produce a huge answer.
const MAX_REPORTED: usize = 1000;
/// Name given to a main file registered as text (text has no file name of its own).
const DEFAULT_MAIN_NAME: &str = "schema.proto";

/// Base64 decoding that tolerates missing padding: clients differ, and the bytes are what matter.
const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A parsed Protobuf schema (one .proto file plus its imports).
#[derive(Clone, Debug)]
pub struct ProtoSchema {
    /// Every file of the schema: the main one, its references and any well-known imports.
    pool: DescriptorPool,
    /// Name of the main file inside `pool`.
    main: String,
    /// Cached answer of [`ProtoSchema::canonical`].
    canonical: String,
    /// Cached answer of [`ProtoSchema::serialized`].
    serialized: String,
    /// Normalized encoding of every file in `pool`, by file name. The diff uses it as its stand-in for Confluent's
    /// "same reference subject and version" test: identical imported files need no deep comparison.
    fingerprints: HashMap<String, Vec<u8>>,
}

/// One schema text in the form it was given.
enum Source {
    Text(String),
    Descriptor(Vec<u8>),
}

impl Source {
    /// Decides between base64 descriptor and `.proto` text. Base64 never contains the spaces, quotes or semicolons
    /// that any real `.proto` file needs, so "is clean base64 of a decodable FileDescriptorProto" is unambiguous.
    fn classify(text: &str) -> Source {
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let looks_b64 = !compact.is_empty()
            && compact.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
        if looks_b64 {
            if let Ok(bytes) = LENIENT_B64.decode(compact.as_bytes()) {
                if FileDescriptorProto::decode(bytes.as_slice()).is_ok() {
                    return Source::Descriptor(bytes);
                }
            }
        }
        Source::Text(text.to_owned())
    }

    /// The descriptor's own file name, if this is a descriptor that carries one.
    fn embedded_name(&self) -> Option<String> {
        match self {
            Source::Text(_) => None,
            Source::Descriptor(bytes) => {
                FileDescriptorProto::decode(bytes.as_slice()).ok().and_then(|f| f.name).filter(|n| !n.is_empty())
            }
        }
    }

    /// Turns the source into a protox file registered under `name`.
    fn to_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        match self {
            Source::Text(text) => protox::file::File::from_source(name, text),
            Source::Descriptor(bytes) => {
                // The descriptor's own `name` may differ from the import path it is referenced by; protox keys files
                // by that field. Appending a second `name` field overrides it (last one wins for singular fields)
                // while keeping the rest of the bytes, custom options included, untouched.
                let mut renamed = bytes.clone();
                prost::encoding::string::encode(1, &name.to_owned(), &mut renamed);
                // prost-reflect panics while reporting an unknown `syntax` of a file it has not finished adding, so
                // settle the syntax here: only proto2 and proto3 exist for it, and an empty string means proto2.
                let syntax = FileDescriptorProto::decode(bytes.as_slice()).map_err(protox::Error::new)?.syntax;
                match syntax.as_deref() {
                    None | Some("proto2") | Some("proto3") => {}
                    Some("") => prost::encoding::string::encode(12, &"proto2".to_owned(), &mut renamed),
                    Some(other) => {
                        let other: String = other.chars().take(32).collect();
                        return Err(protox::Error::new(format!("{name}: unsupported syntax {other:?}")));
                    }
                }
                protox::file::File::decode_file_descriptor_proto(renamed.as_slice()).map_err(protox::Error::new)
            }
        }
    }
}

/// Serves the main file and the references to protox; well-known `google/protobuf/*` imports fall through to
/// protox's bundled copies.
struct RefResolver {
    main_name: String,
    main: Source,
    refs: Vec<(String, Source)>,
    google: protox::file::GoogleFileResolver,
}

impl protox::file::FileResolver for RefResolver {
    fn resolve_path(&self, path: &Path) -> Option<String> {
        let p = path.to_str()?;
        (p == self.main_name).then(|| p.to_owned())
    }

    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        if name == self.main_name {
            return self.main.to_file(name);
        }
        if let Some((_, src)) = self.refs.iter().find(|(n, _)| n == name) {
            return src.to_file(name);
        }
        self.google.open_file(name)
    }
}

/// Rejects `.proto` text whose bracket nesting exceeds [`MAX_TEXT_NESTING`], skipping strings and comments. This
/// keeps every later recursive parser (protox, option aggregates) far from the stack limit.
fn check_text_nesting(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' | b'\'' => {
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    if c == b'\\' {
                        i += 1;
                    } else if c == b || c == b'\n' {
                        break;
                    }
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while let Some(&c) = bytes.get(i) {
                    if c == b'\n' {
                        break;
                    }
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes.get(i) == Some(&b'*') && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 1;
            }
            b'{' | b'[' | b'(' | b'<' => {
                depth += 1;
                if depth > MAX_TEXT_NESTING {
                    return Err(format!("schema nesting deeper than {MAX_TEXT_NESTING} levels"));
                }
            }
            b'}' | b']' | b')' | b'>' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Picks the name the main file is compiled under: the descriptor's own name when it has a usable one (so
/// `serialized()` gives clients back what they sent), otherwise a default that no reference uses.
fn choose_main_name(main: &Source, refs: &[(String, Source)]) -> String {
    let taken = |n: &str| refs.iter().any(|(r, _)| r == n) || n.starts_with("google/protobuf/");
    if let Some(name) = main.embedded_name() {
        if !taken(&name) {
            return name;
        }
    }
    let mut name = DEFAULT_MAIN_NAME.to_owned();
    let mut n = 0u32;
    while taken(&name) {
        n += 1;
        name = format!("schema_{n}.proto");
    }
    name
}

/// Protobuf wire type for a field kind (for the normalized descriptor).
fn field_type(field: &FieldDescriptor) -> (FieldType, Option<String>) {
    match field.kind() {
        Kind::Double => (FieldType::Double, None),
        Kind::Float => (FieldType::Float, None),
        Kind::Int32 => (FieldType::Int32, None),
        Kind::Int64 => (FieldType::Int64, None),
        Kind::Uint32 => (FieldType::Uint32, None),
        Kind::Uint64 => (FieldType::Uint64, None),
        Kind::Sint32 => (FieldType::Sint32, None),
        Kind::Sint64 => (FieldType::Sint64, None),
        Kind::Fixed32 => (FieldType::Fixed32, None),
        Kind::Fixed64 => (FieldType::Fixed64, None),
        Kind::Sfixed32 => (FieldType::Sfixed32, None),
        Kind::Sfixed64 => (FieldType::Sfixed64, None),
        Kind::Bool => (FieldType::Bool, None),
        Kind::String => (FieldType::String, None),
        Kind::Bytes => (FieldType::Bytes, None),
        Kind::Message(m) => {
            let t = if field.is_group() { FieldType::Group } else { FieldType::Message };
            (t, Some(format!(".{}", m.full_name())))
        }
        Kind::Enum(e) => (FieldType::Enum, Some(format!(".{}", e.full_name()))),
    }
}

/// Writes the resolved type into a raw field, so relative type names in hand-made descriptors and the fully
/// qualified names protoc/protox emit normalize to the same bytes.
fn normalize_field(raw: &mut FieldDescriptorProto, resolved: Option<&FieldDescriptor>) {
    raw.json_name = None;
    if let Some(f) = resolved {
        let (t, name) = field_type(f);
        raw.set_type(t);
        raw.type_name = name;
    }
}

/// Normalizes extension declarations in `scope` (a package or message full name).
fn normalize_extensions(pool: &DescriptorPool, scope: &str, exts: &mut [FieldDescriptorProto]) {
    for ext in exts {
        let full = if scope.is_empty() { ext.name().to_owned() } else { format!("{scope}.{}", ext.name()) };
        ext.json_name = None;
        if let Some(e) = pool.get_extension_by_name(&full) {
            ext.extendee = Some(format!(".{}", e.containing_message().full_name()));
            let (t, name) = match e.kind() {
                Kind::Message(m) => {
                    let t = if e.is_group() { FieldType::Group } else { FieldType::Message };
                    (t, Some(format!(".{}", m.full_name())))
                }
                Kind::Enum(en) => (FieldType::Enum, Some(format!(".{}", en.full_name()))),
                _ => (ext.r#type(), None),
            };
            ext.set_type(t);
            ext.type_name = name;
        }
    }
}

fn normalize_message(pool: &DescriptorPool, full: &str, raw: &mut DescriptorProto) {
    let resolved = pool.get_message_by_name(full);
    for field in &mut raw.field {
        let r = resolved.as_ref().and_then(|m| u32::try_from(field.number()).ok().and_then(|n| m.get_field(n)));
        normalize_field(field, r.as_ref());
    }
    normalize_extensions(pool, full, &mut raw.extension);
    for nested in &mut raw.nested_type {
        let child = format!("{full}.{}", nested.name());
        normalize_message(pool, &child, nested);
    }
}

/// The file as a normalized FileDescriptorProto: no name (text has none), no source info, no json_name, implicit
/// proto2 syntax, fully qualified and typed field references. Text and descriptor forms of one file agree on it.
fn normalized_file(pool: &DescriptorPool, file: &FileDescriptor) -> FileDescriptorProto {
    let mut fdp = file.file_descriptor_proto().clone();
    fdp.name = None;
    fdp.source_code_info = None;
    if fdp.syntax.as_deref() == Some("proto2") || fdp.syntax.as_deref() == Some("") {
        fdp.syntax = None;
    }
    let package = fdp.package().to_owned();
    for msg in &mut fdp.message_type {
        let full = if package.is_empty() { msg.name().to_owned() } else { format!("{package}.{}", msg.name()) };
        normalize_message(pool, &full, msg);
    }
    normalize_extensions(pool, &package, &mut fdp.extension);
    fdp
}

/// Removes field 9 (`source_code_info`) from an encoded FileDescriptorProto without decoding the rest, so custom
/// options survive. Malformed input yields `None`.
fn strip_source_info(mut buf: &[u8]) -> Option<Vec<u8>> {
    use prost::encoding::{decode_key, decode_varint, WireType};
    let mut out = Vec::with_capacity(buf.len());
    while !buf.is_empty() {
        let start = buf;
        let (tag, wire) = decode_key(&mut buf).ok()?;
        let skip = match wire {
            WireType::Varint => {
                decode_varint(&mut buf).ok()?;
                0
            }
            WireType::SixtyFourBit => 8,
            WireType::ThirtyTwoBit => 4,
            WireType::LengthDelimited => usize::try_from(decode_varint(&mut buf).ok()?).ok()?,
            WireType::StartGroup | WireType::EndGroup => return None,
        };
        let rest = buf.get(skip..)?;
        let consumed = start.len() - rest.len();
        if tag != 9 {
            out.extend_from_slice(start.get(..consumed)?);
        }
        buf = rest;
    }
    Some(out)
}

/// Messages that a schema author declared in a scope: map-entry types are synthesized by the compiler and do not
/// count (the Java client, built on Wire's parser, never sees them, so its message indexes skip them too).
fn declared(iter: impl Iterator<Item = MessageDescriptor>) -> Vec<MessageDescriptor> {
    iter.filter(|m| !m.is_map_entry()).collect()
}

impl ProtoSchema {
    /// Parses a schema as clients register it: either `.proto` source text, or the base64 of a serialized
    /// google.protobuf.FileDescriptorProto (confluent-kafka-python registers that form). `refs` are the
    /// schema's references as (import path, schema text in either form) pairs — `import "common/address.proto";`
    /// resolves to the ref named "common/address.proto". google/protobuf/*.proto well-known imports must resolve
    /// without refs. Err(message) on anything that does not parse/link.
    pub fn parse(text: &str, refs: &[(String, String)]) -> Result<ProtoSchema, String> {
        guard(|| ProtoSchema::parse_inner(text, refs)).and_then(|r| r)
    }

    fn parse_inner(text: &str, refs: &[(String, String)]) -> Result<ProtoSchema, String> {
        if text.len() > MAX_SCHEMA_LEN {
            return Err(format!("schema larger than {MAX_SCHEMA_LEN} bytes"));
        }
        if refs.len() > MAX_REFS {
            return Err(format!("more than {MAX_REFS} references"));
        }
        let main = Source::classify(text);
        if let Source::Text(t) = &main {
            check_text_nesting(t)?;
        }
        let mut sources = Vec::with_capacity(refs.len());
        for (name, body) in refs {
            if body.len() > MAX_SCHEMA_LEN {
                return Err(format!("reference {name}: larger than {MAX_SCHEMA_LEN} bytes"));
            }
            let src = Source::classify(body);
            if let Source::Text(t) = &src {
                check_text_nesting(t).map_err(|e| format!("reference {name}: {e}"))?;
            }
            sources.push((name.clone(), src));
        }
        let main_name = choose_main_name(&main, &sources);
        let resolver = RefResolver {
            main_name: main_name.clone(),
            main,
            refs: sources,
            google: protox::file::GoogleFileResolver::new(),
        };
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.include_imports(true);
        compiler.open_file(&main_name).map_err(|e| describe_protox_error(&e))?;
        let pool = compiler.descriptor_pool();
        check_map_entries(&pool)?;
        let file = pool.get_file_by_name(&main_name).ok_or_else(|| "schema did not compile to a file".to_owned())?;

        let mut fingerprints = HashMap::new();
        for f in pool.files() {
            fingerprints.insert(f.name().to_owned(), normalized_file(&pool, &f).encode_to_vec());
        }
        let canonical = fingerprints.get(&main_name).map(|b| STANDARD.encode(b)).unwrap_or_default();
        let serialized_bytes =
            strip_source_info(&file.encode_to_vec()).ok_or_else(|| "schema did not re-encode".to_owned())?;
        Ok(ProtoSchema {
            pool,
            main: main_name,
            canonical,
            serialized: STANDARD.encode(serialized_bytes),
            fingerprints,
        })
    }

    /// A canonical string: .proto text and the base64 descriptor of the same file must give the SAME canonical
    /// string (the registry uses it to decide "same schema" and to answer lookups in either form). It is the base64
    /// of the normalized FileDescriptorProto (no file name, source info or json_name; resolved type names).
    pub fn canonical(&self) -> String {
        self.canonical.clone()
    }

    /// The file as base64 of its serialized FileDescriptorProto (answer to ?format=serialized).
    pub fn serialized(&self) -> String {
        self.serialized.clone()
    }

    /// The full name of the message at Confluent's message-index path ([0] = first top-level message; [1,0] = first
    /// nested message of the second top-level one). None if the path does not exist.
    pub fn message_name(&self, indexes: &[i32]) -> Option<String> {
        let file = self.main_file()?;
        let mut current: Option<MessageDescriptor> = None;
        for &index in indexes {
            let idx = usize::try_from(index).ok()?;
            let candidates = match &current {
                None => declared(file.messages()),
                Some(m) => declared(m.child_messages()),
            };
            current = Some(candidates.into_iter().nth(idx)?);
        }
        current.map(|m| m.full_name().to_owned())
    }

    /// Validates a payload: `data` is what follows Confluent's 5-byte prefix (magic 0 + 4-byte id), i.e. the
    /// message-index array then the protobuf message. Index array: zigzag varint count, then count zigzag varints;
    /// a single 0x00 byte means [0]; reject count < 0 or > 100000. Returns the message's full name, or Err(short reason)
    /// when the indexes name no message or the bytes do not decode as that message.
    pub fn validate(&self, data: &[u8]) -> Result<String, String> {
        guard(|| self.validate_inner(data)).and_then(|r| r)
    }

    fn validate_inner(&self, data: &[u8]) -> Result<String, String> {
        let (indexes, body) = read_message_indexes(data)?;
        let name = self.message_name(&indexes).ok_or_else(|| format!("no message at index path {}", show(&indexes)))?;
        let desc = self.pool.get_message_by_name(&name).ok_or_else(|| format!("message {name} missing from schema"))?;
        DynamicMessage::decode(desc, body).map_err(|e| format!("payload is not a valid {name}: {e}"))?;
        Ok(name)
    }

    fn main_file(&self) -> Option<FileDescriptor> {
        self.pool.get_file_by_name(&self.main)
    }
}

/// Runs `f`, turning a panic inside the protobuf libraries into an error. Our own code does not panic on input,
/// and the schema is checked for the malformed shapes known to trip prost-reflect (see [`check_map_entries`]); this
/// is the backstop for third-party invariants we have not found, so one hostile schema or record cannot take a
/// broker thread down.
fn guard<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| "internal error handling schema".to_owned())
}

/// Rejects map-entry messages that prost-reflect accepts when building the pool but later assumes well formed
/// (decoding a map field panics without a key field 1 and value field 2, or with a key type maps cannot have).
/// Only hand-made or corrupted descriptors get here; protoc and protox never produce them.
fn check_map_entries(pool: &DescriptorPool) -> Result<(), String> {
    for msg in pool.all_messages().filter(MessageDescriptor::is_map_entry) {
        let bad = || Err(format!("invalid map entry message {}", msg.full_name()));
        let (Some(key), Some(value)) = (msg.get_field(1), msg.get_field(2)) else {
            return bad();
        };
        if msg.fields().len() != 2 || key.is_list() || value.is_list() || key.containing_oneof().is_some() {
            return bad();
        }
        let key_ok = matches!(
            key.kind(),
            Kind::Int32
                | Kind::Int64
                | Kind::Uint32
                | Kind::Uint64
                | Kind::Sint32
                | Kind::Sint64
                | Kind::Fixed32
                | Kind::Fixed64
                | Kind::Sfixed32
                | Kind::Sfixed64
                | Kind::Bool
                | Kind::String
        );
        if !key_ok || value.containing_oneof().is_some() {
            return bad();
        }
    }
    Ok(())
}

/// protox errors carry spans for pretty printing; the REST answer only needs the file and the message.
fn describe_protox_error(err: &protox::Error) -> String {
    match err.file() {
        Some(file) => format!("{file}: {err}"),
        None => err.to_string(),
    }
}

/// Renders an index path for an error message without echoing an absurdly long array back.
fn show(indexes: &[i32]) -> String {
    const SHOWN: usize = 8;
    let mut parts: Vec<String> = indexes.iter().take(SHOWN).map(i32::to_string).collect();
    if indexes.len() > SHOWN {
        parts.push("...".to_owned());
    }
    format!("[{}]", parts.join(","))
}

/// Reads one zigzag-encoded 32-bit varint (Confluent writes the index array with `ByteUtils.writeVarint`).
fn read_zigzag(buf: &mut &[u8]) -> Result<i32, String> {
    let raw = prost::encoding::decode_varint(buf).map_err(|_| "truncated message index array".to_owned())?;
    let raw = u32::try_from(raw).map_err(|_| "message index out of range".to_owned())?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Splits `data` into the message-index path and the message bytes.
pub fn read_message_indexes(data: &[u8]) -> Result<(Vec<i32>, &[u8]), String> {
    let mut buf = data;
    let count = i64::from(read_zigzag(&mut buf)?);
    if count == 0 {
        // The common case of the first top-level message is written as the single byte 0.
        return Ok((vec![0], buf));
    }
    if !(0..=MAX_INDEX_COUNT).contains(&count) {
        return Err(format!("invalid message index count {count}"));
    }
    // Every index takes at least one byte, so a count beyond the remaining bytes is a lie: refuse it before
    // allocating for it.
    let count = usize::try_from(count).map_err(|_| "invalid message index count".to_owned())?;
    if count > buf.len() {
        return Err("truncated message index array".to_owned());
    }
    let mut indexes = Vec::with_capacity(count);
    for _ in 0..count {
        indexes.push(read_zigzag(&mut buf)?);
    }
    Ok((indexes, buf))
}

// ---------------------------------------------------------------------------------------------------------------
// Compatibility
// ---------------------------------------------------------------------------------------------------------------

/// Confluent's `Difference.Type`, plus one guard of our own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum DiffType {
    PackageChanged,
    MessageAdded,
    MessageRemoved,
    MessageMoved,
    EnumAdded,
    EnumRemoved,
    EnumConstAdded,
    EnumConstChanged,
    EnumConstRemoved,
    FieldAdded,
    FieldRemoved,
    FieldNameChanged,
    FieldKindChanged,
    FieldScalarKindChanged,
    FieldNamedTypeChanged,
    FieldNumericLabelChanged,
    FieldStringOrBytesLabelChanged,
    RequiredFieldAdded,
    RequiredFieldRemoved,
    OneofAdded,
    OneofRemoved,
    OneofFieldAdded,
    OneofFieldRemoved,
    MultipleFieldsMovedToOneof,
    FieldMovedToExistingOneof,
    /// Not Confluent's: the diff stopped following nested or referenced types at [`MAX_DIFF_DEPTH`]. Reported as
    /// incompatible because the unexamined part could hide any change.
    NestingTooDeep,
}

impl DiffType {
    fn name(self) -> &'static str {
        match self {
            DiffType::PackageChanged => "PACKAGE_CHANGED",
            DiffType::MessageAdded => "MESSAGE_ADDED",
            DiffType::MessageRemoved => "MESSAGE_REMOVED",
            DiffType::MessageMoved => "MESSAGE_MOVED",
            DiffType::EnumAdded => "ENUM_ADDED",
            DiffType::EnumRemoved => "ENUM_REMOVED",
            DiffType::EnumConstAdded => "ENUM_CONST_ADDED",
            DiffType::EnumConstChanged => "ENUM_CONST_CHANGED",
            DiffType::EnumConstRemoved => "ENUM_CONST_REMOVED",
            DiffType::FieldAdded => "FIELD_ADDED",
            DiffType::FieldRemoved => "FIELD_REMOVED",
            DiffType::FieldNameChanged => "FIELD_NAME_CHANGED",
            DiffType::FieldKindChanged => "FIELD_KIND_CHANGED",
            DiffType::FieldScalarKindChanged => "FIELD_SCALAR_KIND_CHANGED",
            DiffType::FieldNamedTypeChanged => "FIELD_NAMED_TYPE_CHANGED",
            DiffType::FieldNumericLabelChanged => "FIELD_NUMERIC_LABEL_CHANGED",
            DiffType::FieldStringOrBytesLabelChanged => "FIELD_STRING_OR_BYTES_LABEL_CHANGED",
            DiffType::RequiredFieldAdded => "REQUIRED_FIELD_ADDED",
            DiffType::RequiredFieldRemoved => "REQUIRED_FIELD_REMOVED",
            DiffType::OneofAdded => "ONEOF_ADDED",
            DiffType::OneofRemoved => "ONEOF_REMOVED",
            DiffType::OneofFieldAdded => "ONEOF_FIELD_ADDED",
            DiffType::OneofFieldRemoved => "ONEOF_FIELD_REMOVED",
            DiffType::MultipleFieldsMovedToOneof => "MULTIPLE_FIELDS_MOVED_TO_ONEOF",
            DiffType::FieldMovedToExistingOneof => "FIELD_MOVED_TO_EXISTING_ONEOF",
            DiffType::NestingTooDeep => "NESTING_TOO_DEEP",
        }
    }

    /// Confluent's `SchemaDiff.COMPATIBLE_CHANGES`.
    fn is_compatible(self) -> bool {
        matches!(
            self,
            DiffType::PackageChanged
                | DiffType::MessageAdded
                | DiffType::MessageMoved
                | DiffType::EnumAdded
                | DiffType::EnumRemoved
                | DiffType::EnumConstAdded
                | DiffType::EnumConstChanged
                | DiffType::EnumConstRemoved
                | DiffType::FieldAdded
                | DiffType::FieldRemoved
                | DiffType::FieldNameChanged
                | DiffType::FieldStringOrBytesLabelChanged
                | DiffType::OneofAdded
                | DiffType::OneofRemoved
                | DiffType::OneofFieldAdded
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Difference {
    kind: DiffType,
    path: String,
}

/// A Wire-style field label: Confluent compares labels only when both sides state one explicitly, and Wire
/// leaves it unset for proto3 implicit-presence fields, oneof members and maps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Label {
    Optional,
    Required,
    Repeated,
}

/// A field's type as Confluent's `FieldSchemaDiff` sees it.
enum TypeRef {
    Scalar(Kind),
    Message(MessageDescriptor),
    Map(Box<TypeRef>, Box<TypeRef>),
}

#[derive(PartialEq, Eq)]
enum TypeKind {
    Scalar,
    Message,
    Map,
}

/// Confluent's scalar groups: a change inside a group keeps the wire format readable.
#[derive(PartialEq, Eq, Clone, Copy)]
enum ScalarGroup {
    GeneralNumber,
    SignedNumber,
    StringOrBytes,
    Fixed32,
    Fixed64,
    Float,
    Double,
}

impl TypeRef {
    fn of_kind(kind: Kind) -> TypeRef {
        match kind {
            Kind::Message(m) => TypeRef::Message(m),
            other => TypeRef::Scalar(other),
        }
    }

    fn of_field(field: &FieldDescriptor) -> TypeRef {
        if field.is_map() {
            if let Kind::Message(entry) = field.kind() {
                // `check_map_entries` guarantees fields 1 and 2; `get_field` keeps this panic-free regardless.
                if let (Some(key), Some(value)) = (entry.get_field(1), entry.get_field(2)) {
                    return TypeRef::Map(
                        Box::new(TypeRef::of_kind(key.kind())),
                        Box::new(TypeRef::of_kind(value.kind())),
                    );
                }
            }
        }
        TypeRef::of_kind(field.kind())
    }

    fn kind(&self) -> TypeKind {
        match self {
            TypeRef::Scalar(_) => TypeKind::Scalar,
            TypeRef::Message(_) => TypeKind::Message,
            TypeRef::Map(..) => TypeKind::Map,
        }
    }
}

fn scalar_group(kind: &Kind) -> ScalarGroup {
    match kind {
        Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64 | Kind::Bool | Kind::Enum(_) => {
            ScalarGroup::GeneralNumber
        }
        Kind::Sint32 | Kind::Sint64 => ScalarGroup::SignedNumber,
        Kind::String | Kind::Bytes => ScalarGroup::StringOrBytes,
        Kind::Fixed32 | Kind::Sfixed32 => ScalarGroup::Fixed32,
        Kind::Fixed64 | Kind::Sfixed64 => ScalarGroup::Fixed64,
        Kind::Float => ScalarGroup::Float,
        // Message never reaches here (it is TypeRef::Message); grouping it with doubles would be wrong but harmless.
        Kind::Double | Kind::Message(_) => ScalarGroup::Double,
    }
}

/// The oneof a field really belongs to; proto3 `optional` fields sit in a synthetic oneof that the `.proto` text
/// (and so Confluent's Wire model) does not have.
fn real_oneof(field: &FieldDescriptor) -> Option<String> {
    field.containing_oneof().filter(|o| !o.is_synthetic()).map(|o| o.name().to_owned())
}

fn label(field: &FieldDescriptor) -> Option<Label> {
    if real_oneof(field).is_some() || field.is_map() {
        return None;
    }
    if field.field_descriptor_proto().proto3_optional() {
        return Some(Label::Optional);
    }
    match (field.parent_file().syntax(), field.cardinality()) {
        (_, Cardinality::Repeated) => Some(Label::Repeated),
        (Syntax::Proto3, _) => None,
        (_, Cardinality::Required) => Some(Label::Required),
        (_, Cardinality::Optional) => Some(Label::Optional),
    }
}

/// A type's name relative to its package, which is what Confluent compares (a package move alone is compatible).
fn local_name(msg: &MessageDescriptor) -> &str {
    let pkg = msg.package_name();
    if pkg.is_empty() {
        return msg.full_name();
    }
    msg.full_name().strip_prefix(pkg).and_then(|s| s.strip_prefix('.')).unwrap_or(msg.full_name())
}

/// The message fields split the way `MessageSchemaDiff` needs them.
struct FieldSets {
    /// Fields outside any (real) oneof, by number.
    top: BTreeMap<u32, FieldDescriptor>,
    /// Every field, by number.
    all: BTreeMap<u32, FieldDescriptor>,
    /// Oneof name of each oneof member.
    oneof_of: HashMap<u32, String>,
    /// Real oneofs in declaration order with their members.
    oneofs: Vec<(String, Vec<FieldDescriptor>)>,
}

impl FieldSets {
    fn of(msg: &MessageDescriptor) -> FieldSets {
        let mut sets =
            FieldSets { top: BTreeMap::new(), all: BTreeMap::new(), oneof_of: HashMap::new(), oneofs: Vec::new() };
        for oneof in msg.oneofs().filter(|o| !o.is_synthetic()) {
            sets.oneofs.push((oneof.name().to_owned(), oneof.fields().collect()));
        }
        for field in msg.fields() {
            let number = field.number();
            match real_oneof(&field) {
                Some(name) => {
                    sets.oneof_of.insert(number, name);
                }
                None => {
                    sets.top.insert(number, field.clone());
                }
            }
            sets.all.insert(number, field);
        }
        sets
    }
}

/// State shared by one `incompatibilities` call, including the sub-comparisons of referenced message types.
struct Differ<'a> {
    original: &'a ProtoSchema,
    update: &'a ProtoSchema,
    /// Original messages whose fields are being compared right now (Confluent's `SchemaScope`): breaks cycles.
    in_progress: HashSet<String>,
    /// Finished sub-comparisons by (original, update) full name. Confluent recomputes them at every use, which is
    /// exponential for types that reference each other in a diamond; the result does not depend on where the type
    /// is used, because sub-comparisons report paths relative to the type itself.
    memo: HashMap<(String, String), Vec<Difference>>,
    depth: usize,
}

/// Differences found so far, without repeats: a referenced type's findings are merged once per use, and types
/// shared by many fields would otherwise multiply them.
#[derive(Default)]
struct Diffs {
    list: Vec<Difference>,
    seen: HashSet<Difference>,
}

impl Diffs {
    fn add(&mut self, d: Difference) {
        if self.seen.insert(d.clone()) {
            self.list.push(d);
        }
    }
}

fn path_string(path: &[String]) -> String {
    format!("#/{}", path.join("/"))
}

fn push(out: &mut Diffs, path: &[String], kind: DiffType) {
    out.add(Difference { kind, path: path_string(path) });
}

fn push_at(out: &mut Diffs, path: &mut Vec<String>, leaf: String, kind: DiffType) {
    path.push(leaf);
    push(out, path, kind);
    path.pop();
}

impl Differ<'_> {
    /// `SchemaDiff.compare`: package, then the top-level types.
    fn compare_files(&mut self, original: &FileDescriptor, update: &FileDescriptor, out: &mut Diffs) {
        let mut path = Vec::new();
        if original.package_name() != update.package_name() {
            push(out, &path, DiffType::PackageChanged);
        }
        self.compare_types(
            &declared(original.messages()),
            &original.enums().collect::<Vec<_>>(),
            &declared(update.messages()),
            &update.enums().collect::<Vec<_>>(),
            &mut path,
            out,
        );
    }

    /// `SchemaDiff.compareTypeElements`: messages and enums of one scope, matched by simple name.
    fn compare_types(
        &mut self,
        original_msgs: &[MessageDescriptor],
        original_enums: &[EnumDescriptor],
        update_msgs: &[MessageDescriptor],
        update_enums: &[EnumDescriptor],
        path: &mut Vec<String>,
        out: &mut Diffs,
    ) {
        let update_by_name: HashMap<&str, (usize, &MessageDescriptor)> =
            update_msgs.iter().enumerate().map(|(i, m)| (m.name(), (i, m))).collect();
        let original_names: HashSet<&str> = original_msgs.iter().map(|m| m.name()).collect();
        for (index, original) in original_msgs.iter().enumerate() {
            path.push(original.name().to_owned());
            match update_by_name.get(original.name()) {
                None => push(out, path, DiffType::MessageRemoved),
                Some(&(update_index, update)) => {
                    self.compare_message(original, update, path, out);
                    if index != update_index {
                        // Compatible: payloads carry indexes relative to the schema id they were written with.
                        push(out, path, DiffType::MessageMoved);
                    }
                }
            }
            path.pop();
        }
        for update in update_msgs.iter().filter(|m| !original_names.contains(m.name())) {
            push_at(out, path, update.name().to_owned(), DiffType::MessageAdded);
        }

        let update_enum_by_name: HashMap<&str, &EnumDescriptor> = update_enums.iter().map(|e| (e.name(), e)).collect();
        let original_enum_names: HashSet<&str> = original_enums.iter().map(|e| e.name()).collect();
        for original in original_enums {
            path.push(original.name().to_owned());
            match update_enum_by_name.get(original.name()) {
                None => push(out, path, DiffType::EnumRemoved),
                Some(update) => compare_enum(original, update, path, out),
            }
            path.pop();
        }
        for update in update_enums.iter().filter(|e| !original_enum_names.contains(e.name())) {
            push_at(out, path, update.name().to_owned(), DiffType::EnumAdded);
        }
    }

    /// `MessageSchemaDiff.compare`.
    fn compare_message(
        &mut self,
        original: &MessageDescriptor,
        update: &MessageDescriptor,
        path: &mut Vec<String>,
        out: &mut Diffs,
    ) {
        if self.depth >= MAX_DIFF_DEPTH {
            push(out, path, DiffType::NestingTooDeep);
            return;
        }
        self.depth += 1;
        let key = original.full_name().to_owned();
        if self.in_progress.insert(key.clone()) {
            self.compare_fields(original, update, path, out);
            self.in_progress.remove(&key);
        }
        self.compare_types(
            &declared(original.child_messages()),
            &original.child_enums().collect::<Vec<_>>(),
            &declared(update.child_messages()),
            &update.child_enums().collect::<Vec<_>>(),
            path,
            out,
        );
        self.depth -= 1;
    }

    fn compare_fields(
        &mut self,
        original: &MessageDescriptor,
        update: &MessageDescriptor,
        path: &mut Vec<String>,
        out: &mut Diffs,
    ) {
        let mut orig = FieldSets::of(original);
        let upd = FieldSets::of(update);

        // Oneof membership changes. Fields that were previously independent must not become mutually exclusive:
        // count the original "exclusivity groups" (an original oneof, or a single top-level field) that feed each
        // update oneof; brand-new fields do not count because old data never set them.
        for (name, members) in &upd.oneofs {
            let mut groups: HashSet<String> = HashSet::new();
            let mut top_level_moved_in = 0usize;
            for field in members {
                let number = field.number();
                // A top-level field that moved into a oneof is not a removal.
                orig.top.remove(&number);
                if let Some(oneof) = orig.oneof_of.get(&number) {
                    groups.insert(format!("oneof:{oneof}"));
                } else if orig.all.contains_key(&number) {
                    groups.insert(format!("field:{number}"));
                    top_level_moved_in += 1;
                }
            }
            if groups.len() > 1 {
                let kind = if top_level_moved_in > 1 {
                    DiffType::MultipleFieldsMovedToOneof
                } else {
                    DiffType::FieldMovedToExistingOneof
                };
                push_at(out, path, name.clone(), kind);
            }
        }

        let orig_oneofs: BTreeMap<&str, &Vec<FieldDescriptor>> =
            orig.oneofs.iter().map(|(n, f)| (n.as_str(), f)).collect();
        let upd_oneofs: BTreeMap<&str, &Vec<FieldDescriptor>> =
            upd.oneofs.iter().map(|(n, f)| (n.as_str(), f)).collect();
        let names: BTreeSet<&str> = orig_oneofs.keys().chain(upd_oneofs.keys()).copied().collect();
        for name in names {
            path.push(name.to_owned());
            match (orig_oneofs.get(name), upd_oneofs.get(name)) {
                (Some(_), None) => push(out, path, DiffType::OneofRemoved),
                (None, Some(_)) => push(out, path, DiffType::OneofAdded),
                (Some(o), Some(u)) => self.compare_oneof(o, u, &upd.all, path, out),
                (None, None) => {}
            }
            path.pop();
        }

        let numbers: BTreeSet<u32> = orig.top.keys().chain(upd.top.keys()).copied().collect();
        for number in numbers {
            path.push(number.to_string());
            match (orig.top.get(&number), upd.top.get(&number)) {
                (Some(o), None) => {
                    let kind = if label(o) == Some(Label::Required) {
                        DiffType::RequiredFieldRemoved
                    } else {
                        DiffType::FieldRemoved
                    };
                    push(out, path, kind);
                }
                (None, Some(u)) => {
                    let kind = if label(u) == Some(Label::Required) {
                        DiffType::RequiredFieldAdded
                    } else {
                        DiffType::FieldAdded
                    };
                    push(out, path, kind);
                }
                (Some(o), Some(u)) => self.compare_field(o, u, path, out),
                (None, None) => {}
            }
            path.pop();
        }

        // Fields whose oneof membership changed were skipped above; compare their contents by number here.
        for (number, o) in &orig.all {
            let Some(u) = upd.all.get(number) else { continue };
            let (om, um) = (orig.oneof_of.get(number), upd.oneof_of.get(number));
            let top_in_both = om.is_none() && um.is_none();
            let same_oneof = om.is_some() && om == um;
            if top_in_both || same_oneof {
                continue;
            }
            path.push(number.to_string());
            self.compare_field(o, u, path, out);
            path.pop();
        }
    }

    /// `OneOfDiff.compare`.
    fn compare_oneof(
        &mut self,
        original: &[FieldDescriptor],
        update: &[FieldDescriptor],
        update_all: &BTreeMap<u32, FieldDescriptor>,
        path: &mut Vec<String>,
        out: &mut Diffs,
    ) {
        let o: BTreeMap<u32, &FieldDescriptor> = original.iter().map(|f| (f.number(), f)).collect();
        let u: BTreeMap<u32, &FieldDescriptor> = update.iter().map(|f| (f.number(), f)).collect();
        let numbers: BTreeSet<u32> = o.keys().chain(u.keys()).copied().collect();
        for number in numbers {
            path.push(number.to_string());
            match (o.get(&number), u.get(&number)) {
                // Leaving a oneof for elsewhere in the message only relaxes exclusivity; only a real deletion counts.
                (Some(_), None) if !update_all.contains_key(&number) => push(out, path, DiffType::OneofFieldRemoved),
                (None, Some(_)) => push(out, path, DiffType::OneofFieldAdded),
                (Some(of), Some(uf)) => self.compare_field(of, uf, path, out),
                _ => {}
            }
            path.pop();
        }
    }

    /// `FieldSchemaDiff.compare`.
    fn compare_field(
        &mut self,
        original: &FieldDescriptor,
        update: &FieldDescriptor,
        path: &mut Vec<String>,
        out: &mut Diffs,
    ) {
        if original.name() != update.name() {
            push(out, path, DiffType::FieldNameChanged);
        }
        self.compare_labels_and_types(
            label(original),
            label(update),
            &TypeRef::of_field(original),
            &TypeRef::of_field(update),
            path,
            out,
        );
    }

    fn compare_labels_and_types(
        &mut self,
        original_label: Option<Label>,
        update_label: Option<Label>,
        original: &TypeRef,
        update: &TypeRef,
        path: &mut Vec<String>,
        out: &mut Diffs,
    ) {
        if original.kind() != update.kind() {
            push(out, path, DiffType::FieldKindChanged);
            return;
        }
        match (original, update) {
            (TypeRef::Scalar(o), TypeRef::Scalar(u)) => {
                let group = scalar_group(o);
                if group != scalar_group(u) {
                    push(out, path, DiffType::FieldScalarKindChanged);
                } else if let (Some(ol), Some(ul)) = (original_label, update_label) {
                    if ol != ul {
                        let kind = if group == ScalarGroup::StringOrBytes {
                            DiffType::FieldStringOrBytesLabelChanged
                        } else {
                            DiffType::FieldNumericLabelChanged
                        };
                        push(out, path, kind);
                    }
                }
            }
            (TypeRef::Message(o), TypeRef::Message(u)) => self.compare_message_types(o, u, path, out),
            (TypeRef::Map(ok, ov), TypeRef::Map(uk, uv)) => {
                self.compare_labels_and_types(None, None, ok, uk, path, out);
                self.compare_labels_and_types(None, None, ov, uv, path, out);
            }
            _ => {}
        }
    }

    /// `FieldSchemaDiff.compareMessageTypes`: same local name is required; a type that comes from elsewhere than
    /// the main file is then compared in depth, as its own message rooted at its local name.
    fn compare_message_types(
        &mut self,
        original: &MessageDescriptor,
        update: &MessageDescriptor,
        path: &[String],
        out: &mut Diffs,
    ) {
        let local = local_name(original);
        if local != local_name(update) {
            push(out, path, DiffType::FieldNamedTypeChanged);
            return;
        }
        if self.same_origin(original, update) {
            return;
        }
        let key = (original.full_name().to_owned(), update.full_name().to_owned());
        let sub = match self.memo.get(&key) {
            Some(found) => found.clone(),
            None => {
                let mut sub_path: Vec<String> = local.split('.').map(str::to_owned).collect();
                let mut sub_out = Diffs::default();
                self.compare_message(original, update, &mut sub_path, &mut sub_out);
                self.memo.insert(key, sub_out.list.clone());
                sub_out.list
            }
        };
        let incompatible = sub.iter().any(|d| !d.kind.is_compatible());
        for d in sub {
            out.add(d);
        }
        if incompatible {
            push(out, path, DiffType::FieldNamedTypeChanged);
        }
    }

    /// Confluent skips the in-depth comparison when both types are local to the schema (they are compared at top
    /// level anyway) or come from the same reference subject and version; we have no subject/version, so an
    /// imported file of the same name and identical normalized content stands in for the latter.
    fn same_origin(&self, original: &MessageDescriptor, update: &MessageDescriptor) -> bool {
        let (of, uf) = (original.parent_file(), update.parent_file());
        let (on, un) = (of.name(), uf.name());
        let original_local = on == self.original.main;
        let update_local = un == self.update.main;
        if original_local || update_local {
            return original_local && update_local;
        }
        on == un
            && matches!(
                (self.original.fingerprints.get(on), self.update.fingerprints.get(un)),
                (Some(a), Some(b)) if a == b
            )
    }
}

/// `EnumSchemaDiff.compare`: constants by number. All outcomes are compatible; kept for fidelity of the diff.
fn compare_enum(original: &EnumDescriptor, update: &EnumDescriptor, path: &mut Vec<String>, out: &mut Diffs) {
    let o: BTreeMap<i32, String> = original.values().map(|v| (v.number(), v.name().to_owned())).collect();
    let u: BTreeMap<i32, String> = update.values().map(|v| (v.number(), v.name().to_owned())).collect();
    let numbers: BTreeSet<i32> = o.keys().chain(u.keys()).copied().collect();
    for number in numbers {
        let kind = match (o.get(&number), u.get(&number)) {
            (Some(_), None) => DiffType::EnumConstRemoved,
            (None, Some(_)) => DiffType::EnumConstAdded,
            (Some(a), Some(b)) if a != b => DiffType::EnumConstChanged,
            _ => continue,
        };
        push_at(out, path, number.to_string(), kind);
    }
}

/// All of Confluent's differences between two schemas, deduplicated in first-seen order.
fn differences(original: &ProtoSchema, update: &ProtoSchema) -> Vec<Difference> {
    let (Some(of), Some(uf)) = (original.main_file(), update.main_file()) else {
        return Vec::new();
    };
    let mut differ = Differ { original, update, in_progress: HashSet::new(), memo: HashMap::new(), depth: 0 };
    let mut out = Diffs::default();
    differ.compare_files(&of, &uf, &mut out);
    out.list
}

/// Confluent's Protobuf compatibility: reasons why a reader with `update` could NOT read data written with
/// `original` (empty = compatible). BACKWARD calls incompatibilities(old, new); FORWARD calls it reversed.
/// Each reason reads like "FIELD_SCALAR_KIND_CHANGED at #/Order/2".
pub fn incompatibilities(original: &ProtoSchema, update: &ProtoSchema) -> Vec<String> {
    let found = match guard(|| differences(original, update)) {
        Ok(found) => found,
        // Failing closed: a diff that could not finish must not let an update through.
        Err(e) => return vec![format!("COMPARISON_FAILED at #/ ({e})")],
    };
    found
        .into_iter()
        .filter(|d| !d.kind.is_compatible())
        .take(MAX_REPORTED)
        .map(|d| format!("{} at {}", d.kind.name(), d.path))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::Value;

    fn parse(text: &str) -> ProtoSchema {
        match ProtoSchema::parse(text, &[]) {
            Ok(s) => s,
            Err(e) => panic!("parse failed: {e}\n{text}"),
        }
    }

    fn parse_with(text: &str, refs: &[(&str, &str)]) -> ProtoSchema {
        let refs: Vec<(String, String)> = refs.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        match ProtoSchema::parse(text, &refs) {
            Ok(s) => s,
            Err(e) => panic!("parse failed: {e}\n{text}"),
        }
    }

    /// The base64 descriptor form of `text`, built the way a client would: compile, take protox's descriptor,
    /// drop source info, serialize.
    fn b64_of(text: &str, name: &str, refs: &[(&str, &str)]) -> String {
        let resolver = RefResolver {
            main_name: name.to_owned(),
            main: Source::Text(text.to_owned()),
            refs: refs.iter().map(|(n, t)| (n.to_string(), Source::Text(t.to_string()))).collect(),
            google: protox::file::GoogleFileResolver::new(),
        };
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.open_file(name).expect("compile");
        let set = compiler.file_descriptor_set();
        let mut file = set.file.into_iter().find(|f| f.name() == name).expect("main file");
        file.source_code_info = None;
        STANDARD.encode(file.encode_to_vec())
    }

    fn diff_strings(a: &ProtoSchema, b: &ProtoSchema) -> BTreeSet<String> {
        differences(a, b).into_iter().map(|d| format!("{} {}", d.kind.name(), d.path)).collect()
    }

    #[test]
    fn schema_is_send_sync() {
        fn check<T: Send + Sync + Clone>() {}
        check::<ProtoSchema>();
    }

    const P3: &str = "syntax = \"proto3\";\n";

    /// (case, v1, v2, backward compatible, forward compatible)
    const TABLE: &[(&str, &str, &str, bool, bool)] = &[
        ("add field", "message M { int32 a = 1; }", "message M { int32 a = 1; string b = 2; }", true, true),
        ("remove field", "message M { int32 a = 1; string b = 2; }", "message M { int32 a = 1; }", true, true),
        ("rename field", "message M { int32 a = 1; }", "message M { int32 renamed = 1; }", true, true),
        ("int32 to int64", "message M { int32 a = 1; }", "message M { int64 a = 1; }", true, true),
        ("string to bytes", "message M { string a = 1; }", "message M { bytes a = 1; }", true, true),
        ("int32 to sint32", "message M { int32 a = 1; }", "message M { sint32 a = 1; }", false, false),
        ("int32 to string", "message M { int32 a = 1; }", "message M { string a = 1; }", false, false),
        (
            "int32 to message",
            "message M { int32 a = 1; } message S { int32 x = 1; }",
            "message M { S a = 1; } message S { int32 x = 1; }",
            false,
            false,
        ),
        (
            "message type A to B",
            "message M { A a = 1; } message A { int32 x = 1; } message B { int32 x = 1; }",
            "message M { B a = 1; } message A { int32 x = 1; } message B { int32 x = 1; }",
            false,
            false,
        ),
        (
            "optional to repeated numeric",
            "message M { optional int32 a = 1; }",
            "message M { repeated int32 a = 1; }",
            false,
            false,
        ),
        (
            "optional to repeated string",
            "message M { optional string a = 1; }",
            "message M { repeated string a = 1; }",
            true,
            true,
        ),
        (
            "optional to repeated bytes",
            "message M { optional bytes a = 1; }",
            "message M { repeated bytes a = 1; }",
            true,
            true,
        ),
        // Confluent (Wire) gives proto3 implicit-presence fields no label, so it never compares their label.
        (
            "implicit to repeated numeric (proto3)",
            "message M { int32 a = 1; }",
            "message M { repeated int32 a = 1; }",
            true,
            true,
        ),
        (
            "implicit to repeated string (proto3)",
            "message M { string a = 1; }",
            "message M { repeated string a = 1; }",
            true,
            true,
        ),
        (
            "remove message",
            "message M { int32 a = 1; } message N { int32 b = 1; }",
            "message M { int32 a = 1; }",
            false,
            true,
        ),
        // A rename is a removal plus an addition, so it is a removal in both directions (the brief's table said
        // forward OK; Confluent's SchemaDiff reports MESSAGE_REMOVED either way).
        ("rename message", "message M { int32 a = 1; }", "message Renamed { int32 a = 1; }", false, false),
        (
            "add message",
            "message M { int32 a = 1; }",
            "message M { int32 a = 1; } message N { int32 b = 1; }",
            true,
            false,
        ),
        (
            "reorder messages",
            "message M { int32 a = 1; } message N { int32 b = 1; }",
            "message N { int32 b = 1; } message M { int32 a = 1; }",
            true,
            true,
        ),
        (
            "add enum constant",
            "message M { E e = 1; } enum E { A = 0; }",
            "message M { E e = 1; } enum E { A = 0; B = 1; }",
            true,
            true,
        ),
        (
            "remove enum constant",
            "message M { E e = 1; } enum E { A = 0; B = 1; }",
            "message M { E e = 1; } enum E { A = 0; }",
            true,
            true,
        ),
        (
            "rename enum constant",
            "message M { E e = 1; } enum E { A = 0; B = 1; }",
            "message M { E e = 1; } enum E { A = 0; C = 1; }",
            true,
            true,
        ),
        ("int32 to enum", "message M { int32 e = 1; }", "message M { E e = 1; } enum E { A = 0; }", true, true),
        (
            "add new oneof",
            "message M { int32 a = 1; }",
            "message M { int32 a = 1; oneof o { string b = 2; int32 c = 3; } }",
            true,
            true,
        ),
        (
            "move one field into new oneof",
            "message M { int32 a = 1; int32 b = 2; }",
            "message M { int32 a = 1; oneof o { int32 b = 2; string c = 3; } }",
            true,
            true,
        ),
        (
            "move two fields into one new oneof",
            "message M { int32 a = 1; int32 b = 2; }",
            "message M { oneof o { int32 a = 1; int32 b = 2; } }",
            false,
            true,
        ),
        (
            "move top-level field into existing oneof",
            "message M { int32 a = 1; oneof o { int32 b = 2; } }",
            "message M { oneof o { int32 a = 1; int32 b = 2; } }",
            false,
            true,
        ),
        (
            "add field to existing oneof",
            "message M { oneof o { int32 a = 1; string b = 2; } }",
            "message M { oneof o { int32 a = 1; string b = 2; int64 c = 3; } }",
            true,
            false,
        ),
        (
            "remove field from oneof",
            "message M { oneof o { int32 a = 1; string b = 2; int64 c = 3; } }",
            "message M { oneof o { int32 a = 1; string b = 2; } }",
            false,
            true,
        ),
        (
            "incompatible change inside moved oneof field",
            "message M { oneof o { int32 a = 1; string b = 2; } }",
            "message M { oneof p { string a = 1; string b = 2; } }",
            false,
            false,
        ),
        (
            "map value scalar change",
            "message M { map<string, int32> m = 1; }",
            "message M { map<string, string> m = 1; }",
            false,
            false,
        ),
        (
            "map to repeated scalar",
            "message M { map<string, int32> m = 1; }",
            "message M { repeated int32 m = 1; }",
            false,
            false,
        ),
        ("fixed32 to sfixed32", "message M { fixed32 a = 1; }", "message M { sfixed32 a = 1; }", true, true),
        ("float to double", "message M { float a = 1; }", "message M { double a = 1; }", false, false),
        (
            "nested message field change",
            "message M { message N { int32 x = 1; } N n = 1; }",
            "message M { message N { string x = 1; } N n = 1; }",
            false,
            false,
        ),
        (
            "package change",
            "package a; message M { int32 a = 1; }",
            "package b; message M { int32 a = 1; }",
            true,
            true,
        ),
    ];

    #[test]
    fn compatibility_table() {
        let mut failures = Vec::new();
        for (case, v1, v2, backward, forward) in TABLE {
            let a = parse(&format!("{P3}{v1}"));
            let b = parse(&format!("{P3}{v2}"));
            let bw = incompatibilities(&a, &b);
            let fw = incompatibilities(&b, &a);
            if bw.is_empty() != *backward || fw.is_empty() != *forward {
                failures.push(format!("{case}: backward {bw:?} forward {fw:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn proto2_required_fields() {
        let v1 = parse("syntax = \"proto2\"; message M { optional string a = 1; }");
        let v2 = parse("syntax = \"proto2\"; message M { optional string a = 1; required string b = 2; }");
        assert_eq!(incompatibilities(&v1, &v2), vec!["REQUIRED_FIELD_ADDED at #/M/2"]);
        assert_eq!(incompatibilities(&v2, &v1), vec!["REQUIRED_FIELD_REMOVED at #/M/2"]);
        // proto2 labels are explicit, so optional -> repeated numeric is a label change.
        let v3 = parse("syntax = \"proto2\"; message M { repeated int32 a = 1; }");
        let v4 = parse("syntax = \"proto2\"; message M { optional int32 a = 1; }");
        assert_eq!(incompatibilities(&v4, &v3), vec!["FIELD_NUMERIC_LABEL_CHANGED at #/M/1"]);
    }

    #[test]
    fn messages_name_difference_type_and_path() {
        let v1 = parse("syntax = \"proto3\"; package shop; message Order { int64 id = 1; int32 qty = 2; }");
        let v2 = parse("syntax = \"proto3\"; package shop; message Order { int64 id = 1; string qty = 2; }");
        assert_eq!(incompatibilities(&v1, &v2), vec!["FIELD_SCALAR_KIND_CHANGED at #/Order/2"]);
    }

    struct Example {
        original: &'static str,
        update: &'static str,
        original_refs: &'static [(&'static str, &'static str)],
        update_refs: &'static [(&'static str, &'static str)],
        changes: &'static [&'static str],
        compatible: bool,
    }

    const fn ex(
        original: &'static str,
        update: &'static str,
        changes: &'static [&'static str],
        compatible: bool,
    ) -> Example {
        Example { original, update, original_refs: &[], update_refs: &[], changes, compatible }
    }

    const GOOGLE: &str = "syntax = \"proto3\";\npackage io.confluent.cloud.demo.domain;\noption java_outer_classname = \"GoogleImpl\";\nmessage GoogleHome {\n  int32 deviceID = 1;\n  bool enabled = 2;\n}";
    const GOOGLE2_STRING: &str = "syntax = \"proto3\";\npackage io.confluent.cloud.demo.domain;\noption java_outer_classname = \"GoogleImpl2\";\nmessage GoogleHome {\n  string deviceID = 1;\n  bool enabled = 2;\n}";
    const GOOGLE2_PKG: &str = "syntax = \"proto3\";\npackage io.confluent.cloud.demo.domain2;\noption java_outer_classname = \"GoogleImpl2\";\nmessage GoogleHome {\n  int32 deviceID = 1;\n  bool enabled = 2;\n}";
    const OUTER: &str = "syntax = \"proto3\";\npackage io.confluent.cloud.demo.domain;\nmessage outer {\n  message GoogleHome {\n  int32 deviceID = 1;\n  bool enabled = 2;\n}\n}";
    const OUTER2: &str = "syntax = \"proto3\";\npackage io.confluent.cloud.demo.domain2;\nmessage outer {\n  message GoogleHome {\n  int32 deviceID = 1;\n  bool enabled = 2;\n}\n}";
    const OUTER2_STRING: &str = "syntax = \"proto3\";\npackage io.confluent.cloud.demo.domain2;\nmessage outer {\n  message GoogleHome {\n  string deviceID = 1;\n  bool enabled = 2;\n}\n}";

    /// Ported from Confluent's protobuf-provider/src/test/resources/diff-schema-examples.json (the cases that do
    /// not depend on schema metadata/reserved properties, which this module does not model).
    const EXAMPLES: &[Example] = &[
        ex("syntax = \"proto3\";\npackage foo;\nmessage TestMessage {\n    string test_string = 1;\n    .foo.TestMessage.Status test_int = 2;\n    message Status {\n    string test_string = 1;\n    }\n}",
           "syntax = \"proto3\";\npackage bar;\nmessage TestMessage {\n    string test_string = 1;\n    .bar.TestMessage.Status test_int = 2;\n    message Status {\n    string test_string = 1;\n    }\n}",
           &["PACKAGE_CHANGED #/"], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    Status test_int = 2;\n    message Status {\n    string test_string = 1;\n    }\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    .TestMessage.Status test_int = 2;\n    message Status {\n    string test_string = 1;\n    }\n}",
           &[], true),
        ex("syntax = \"proto3\";\npackage foo;\nmessage TestMessage {\n    string test_string = 1;\n    Status test_int = 2;\n    message Status {\n    string test_string = 1;\n    }\n}",
           "syntax = \"proto3\";\npackage foo;\nmessage TestMessage {\n    string test_string = 1;\n    .foo.TestMessage.Status test_int = 2;\n    message Status {\n    string test_string = 1;\n    }\n}",
           &[], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    string test_string2 = 2;\n}",
           &["FIELD_ADDED #/TestMessage/2"], true),
        ex("syntax = \"proto2\";\nmessage TestMessage {\n    optional string test_string = 1;\n}",
           "syntax = \"proto2\";\nmessage TestMessage {\n    optional string test_string = 1;\n    required string test_string2 = 2;\n}",
           &["REQUIRED_FIELD_ADDED #/TestMessage/2"], false),
        ex("syntax = \"proto3\";\nmessage Wrapper {\n    int32 wrapperInt = 1;\n    message TestMessage {\n    string test_string = 1;\n}\n}",
           "syntax = \"proto3\";\nmessage Wrapper {\n    int32 wrapperInt = 1;\n    message TestMessage {\n    string test_string = 1;\n    string test_string2 = 2;\n}\n}",
           &["FIELD_ADDED #/Wrapper/TestMessage/2"], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    string test_string2 = 2;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n}\n",
           &["FIELD_REMOVED #/TestMessage/2"], true),
        ex("syntax = \"proto2\";\nmessage TestMessage {\n    optional string test_string = 1;\n    required string test_string2 = 2;\n}",
           "syntax = \"proto2\";\nmessage TestMessage {\n    optional string test_string = 1;\n}\n",
           &["REQUIRED_FIELD_REMOVED #/TestMessage/2"], false),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 2;\n}",
           &["FIELD_REMOVED #/TestMessage/1", "FIELD_ADDED #/TestMessage/2"], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    int32 test_int = 2;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    int64 test_int = 2;\n}",
           &[], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    string test_string2 = 2;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    bytes test_string2 = 2;\n}",
           &[], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    int32 test_int = 2;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    Status test_int = 2;\n}\nenum Status {\n    ACTIVE = 0;\n    INACTIVE = 1;\n}",
           &["ENUM_ADDED #/Status"], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    Status test_int = 2;\n}\nenum Status {\n    ACTIVE = 0;\n    INACTIVE = 1;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    int32 test_int = 2;\n}",
           &["ENUM_REMOVED #/Status"], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    int32 test_int = 2;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    .TestMessage.Status test_int = 2;\n    message Status {\n    string test_string = 1;\n    }\n}\nenum Status {\n    ACTIVE = 0;\n    INACTIVE = 1;\n}",
           &["FIELD_KIND_CHANGED #/TestMessage/2", "MESSAGE_ADDED #/TestMessage/Status", "ENUM_ADDED #/Status"], false),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    .TestMessage.Status test_int = 2;\n    message Status {\n    string test_string = 1;\n    }\n}\nenum Status {\n    ACTIVE = 0;\n    INACTIVE = 1;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    int32 test_int = 2;\n}",
           &["FIELD_KIND_CHANGED #/TestMessage/2", "MESSAGE_REMOVED #/TestMessage/Status", "ENUM_REMOVED #/Status"], false),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    Status test_int = 2;\n}\nenum Status {\n    ACTIVE = 0;\n    INACTIVE = 1;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    Status test_int = 2;\n}\nenum Status {\n    ACTIVE = 0;\n    NOT_ACTIVE = 1;\n}",
           &["ENUM_CONST_CHANGED #/Status/1"], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    string test_string2 = 2;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    oneof new_oneof {\n        string test_string2 = 2;\n        int32 other_id = 3;\n}\n}",
           &["ONEOF_ADDED #/TestMessage/new_oneof"], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    string test_string2 = 2;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    oneof new_oneof {\n    string test_string = 1;\n    string test_string2 = 2;\n        int32 other_id = 3;\n}\n}",
           &["MULTIPLE_FIELDS_MOVED_TO_ONEOF #/TestMessage/new_oneof", "ONEOF_ADDED #/TestMessage/new_oneof"], false),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    oneof new_oneof {\n    string test_string = 1;\n    string test_string2 = 2;\n}\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    oneof new_oneof {\n    string test_string = 1;\n    string test_string2 = 2;\n        int32 other_id = 3;\n}\n}",
           &["ONEOF_FIELD_ADDED #/TestMessage/new_oneof/3"], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    oneof new_oneof {\n    string test_string = 1;\n    string test_string2 = 2;\n        int32 other_id = 3;\n}\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    oneof new_oneof {\n    string test_string = 1;\n    string test_string2 = 2;\n}\n}",
           &["ONEOF_FIELD_REMOVED #/TestMessage/new_oneof/3"], false),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    int32 test_int = 2;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    TestMessage2 test_int = 2;\n}\nmessage TestMessage2 {\n    string s1 = 1;\n}",
           &["MESSAGE_ADDED #/TestMessage2", "FIELD_KIND_CHANGED #/TestMessage/2"], false),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    int32 test_int = 2;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    string test_string2 = 2;\n}",
           &["FIELD_NAME_CHANGED #/TestMessage/2", "FIELD_SCALAR_KIND_CHANGED #/TestMessage/2"], false),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    TestMessage2 test_int = 2;\n}\nmessage TestMessage2 {\n    string s1 = 1;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    TestMessage3 test_int = 2;\n}\nmessage TestMessage3 {\n    string s1 = 1;\n}",
           &["MESSAGE_REMOVED #/TestMessage2", "MESSAGE_ADDED #/TestMessage3", "FIELD_NAMED_TYPE_CHANGED #/TestMessage/2"], false),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    map<string, int32> test_map_int = 2;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    map<string, string> test_map_string = 2;\n}",
           &["FIELD_NAME_CHANGED #/TestMessage/2", "FIELD_SCALAR_KIND_CHANGED #/TestMessage/2"], false),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    map<string, Status> test_map = 2;\n    message Status {\n    string test_string = 1;\n    }\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    map<string, TestMessage.Status> test_map = 2;\n    message Status {\n    string test_string = 1;\n    }\n}",
           &[], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    optional Status test_status = 2;\n    message Status {\n    string test_string = 1;\n    }\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n    repeated Status test_status = 2;\n    message Status {\n    string test_string = 1;\n    }\n}",
           &[], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    optional string test_string = 1;\n    Status test_status = 2;\n    message Status {\n    string test_string = 1;\n    }\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    repeated string test_string = 1;\n    Status test_status = 2;\n    message Status {\n    string test_string = 1;\n    }\n}",
           &["FIELD_STRING_OR_BYTES_LABEL_CHANGED #/TestMessage/1"], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    optional bytes test_bytes = 1;\n    Status test_status = 2;\n    message Status {\n    string test_string = 1;\n    }\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    repeated bytes test_bytes = 1;\n    Status test_status = 2;\n    message Status {\n    string test_string = 1;\n    }\n}",
           &["FIELD_STRING_OR_BYTES_LABEL_CHANGED #/TestMessage/1"], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    optional int32 test_int = 1;\n    Status test_status = 2;\n    message Status {\n    string test_string = 1;\n    }\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    repeated int32 test_int = 1;\n    Status test_status = 2;\n    message Status {\n    string test_string = 1;\n    }\n}",
           &["FIELD_NUMERIC_LABEL_CHANGED #/TestMessage/1"], false),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n}",
           "syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n}\nmessage TestMessage2 {\n    string test_string = 1;\n}",
           &["MESSAGE_ADDED #/TestMessage2"], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n}",
           "syntax = \"proto3\";\nmessage TestMessage2 {\n    string test_string = 1;\n}\nmessage TestMessage {\n    string test_string = 1;\n}",
           &["MESSAGE_ADDED #/TestMessage2", "MESSAGE_MOVED #/TestMessage"], true),
        ex("syntax = \"proto3\";\nmessage TestMessage {\n    string test_string = 1;\n}\nmessage TestMessage2 {\n    string test_string = 1;\n}",
           "syntax = \"proto3\";\nmessage TestMessage2 {\n    string test_string = 1;\n}\nmessage TestMessage {\n    string test_string = 1;\n}",
           &["MESSAGE_MOVED #/TestMessage2", "MESSAGE_MOVED #/TestMessage"], true),
        Example {
            original: "syntax = \"proto3\";\nimport \"google.proto\";\nmessage TestMessage {\n    .io.confluent.cloud.demo.domain.GoogleHome test_string = 1;\n    }",
            update: "syntax = \"proto3\";\nimport \"google2.proto\";\nmessage TestMessage {\n    .io.confluent.cloud.demo.domain.GoogleHome test_string = 1;\n    }",
            original_refs: &[("google.proto", GOOGLE)],
            update_refs: &[("google2.proto", GOOGLE2_STRING)],
            changes: &["FIELD_SCALAR_KIND_CHANGED #/GoogleHome/1", "FIELD_NAMED_TYPE_CHANGED #/TestMessage/1"],
            compatible: false,
        },
        Example {
            original: "syntax = \"proto3\";\nmessage TestMessage {\n    GoogleHome test_string = 1;\n    }\nmessage GoogleHome {\n  int32 deviceID = 1;\n  bool enabled = 2;\n}",
            update: "syntax = \"proto3\";\nimport \"google.proto\";\nmessage TestMessage {\n    .io.confluent.cloud.demo.domain.GoogleHome test_string = 1;\n    }",
            original_refs: &[],
            update_refs: &[("google.proto", GOOGLE)],
            changes: &["MESSAGE_REMOVED #/GoogleHome"],
            compatible: false,
        },
        Example {
            original: "syntax = \"proto3\";\nimport \"google.proto\";\nmessage TestMessage {\n    .io.confluent.cloud.demo.domain.GoogleHome test_string = 1;\n    }",
            update: "syntax = \"proto3\";\nmessage TestMessage {\n    GoogleHome test_string = 1;\n    }\nmessage GoogleHome {\n  int32 deviceID = 1;\n  bool enabled = 2;\n}",
            original_refs: &[("google.proto", GOOGLE)],
            update_refs: &[],
            changes: &["MESSAGE_ADDED #/GoogleHome"],
            compatible: true,
        },
        Example {
            original: "syntax = \"proto3\";\nimport \"google.proto\";\nmessage TestMessage {\n    .io.confluent.cloud.demo.domain.GoogleHome test_string = 1;\n    }",
            update: "syntax = \"proto3\";\nimport \"google2.proto\";\nmessage TestMessage {\n    .io.confluent.cloud.demo.domain2.GoogleHome test_string = 1;\n    }",
            original_refs: &[("google.proto", GOOGLE)],
            update_refs: &[("google2.proto", GOOGLE2_PKG)],
            changes: &[],
            compatible: true,
        },
        Example {
            original: "syntax = \"proto3\";\nimport \"google.proto\";\nmessage TestMessage {\n    .io.confluent.cloud.demo.domain.outer.GoogleHome test_string = 1;\n    }",
            update: "syntax = \"proto3\";\nimport \"google2.proto\";\nmessage TestMessage {\n    .io.confluent.cloud.demo.domain2.outer.GoogleHome test_string = 1;\n    }",
            original_refs: &[("google.proto", OUTER)],
            update_refs: &[("google2.proto", OUTER2)],
            changes: &[],
            compatible: true,
        },
        Example {
            original: "syntax = \"proto3\";\nimport \"google.proto\";\nmessage TestMessage {\n    .io.confluent.cloud.demo.domain.outer.GoogleHome test_string = 1;\n    }",
            update: "syntax = \"proto3\";\nimport \"google2.proto\";\nmessage TestMessage {\n    .io.confluent.cloud.demo.domain2.outer.GoogleHome test_string = 1;\n    }",
            original_refs: &[("google.proto", OUTER)],
            update_refs: &[("google2.proto", OUTER2_STRING)],
            changes: &["FIELD_SCALAR_KIND_CHANGED #/outer/GoogleHome/1", "FIELD_NAMED_TYPE_CHANGED #/TestMessage/1"],
            compatible: false,
        },
        Example {
            original: "syntax = \"proto3\";\nimport \"google.proto\";\nmessage TestMessage {\n    .io.confluent.cloud.demo.domain.outer.GoogleHome test_string = 1;\n    }",
            update: "syntax = \"proto3\";\nimport \"google.proto\";\nmessage TestMessage {\n    .io.confluent.cloud.demo.domain2.outer.GoogleHome test_string = 1;\n    }",
            original_refs: &[("google.proto", OUTER)],
            update_refs: &[("google.proto", OUTER2_STRING)],
            changes: &["FIELD_SCALAR_KIND_CHANGED #/outer/GoogleHome/1", "FIELD_NAMED_TYPE_CHANGED #/TestMessage/1"],
            compatible: false,
        },
    ];

    #[test]
    fn confluent_diff_examples() {
        let mut failures = Vec::new();
        for (i, e) in EXAMPLES.iter().enumerate() {
            let a = parse_with(e.original, e.original_refs);
            let b = parse_with(e.update, e.update_refs);
            let got = diff_strings(&a, &b);
            let want: BTreeSet<String> = e.changes.iter().map(|s| s.to_string()).collect();
            let compatible = incompatibilities(&a, &b).is_empty();
            if got != want || compatible != e.compatible {
                failures.push(format!("example {i}: got {got:?} (compatible {compatible}), want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    const RICH: &str = r#"
        syntax = "proto3";
        package shop.v1;
        import "google/protobuf/timestamp.proto";
        import "common/address.proto";
        option java_package = "com.example.shop";

        // An order.
        message Order {
            int64 id = 1;
            string customer_name = 2 [json_name = "customer"];
            repeated Line lines = 3;
            map<string, int32> tags = 4;
            google.protobuf.Timestamp created = 5;
            common.Address ship_to = 6;
            optional string note = 7;
            oneof payment { string card = 8; string iban = 9; }
            Status status = 10;
            message Line { string sku = 1; uint32 qty = 2; }
            enum Status { UNKNOWN = 0; PAID = 1; }
        }
        message Refund { int64 order_id = 1; }
    "#;
    const ADDRESS: &str =
        "syntax = \"proto3\";\npackage common;\nmessage Address { string street = 1; string city = 2; }\n";

    #[test]
    fn text_and_descriptor_share_canonical_form() {
        let text = parse_with(RICH, &[("common/address.proto", ADDRESS)]);
        let b64 = b64_of(RICH, "shop/order.proto", &[("common/address.proto", ADDRESS)]);
        let desc = parse_with(&b64, &[("common/address.proto", ADDRESS)]);
        assert_eq!(text.canonical(), desc.canonical());
        // The descriptor keeps the name the client gave it.
        assert_eq!(desc.main, "shop/order.proto");

        // serialized() parses back to the same schema, and the reference may itself be given as a descriptor.
        let address_b64 = b64_of(ADDRESS, "elsewhere.proto", &[]);
        let again = parse_with(&text.serialized(), &[("common/address.proto", &address_b64)]);
        assert_eq!(again.canonical(), text.canonical());
        assert!(incompatibilities(&text, &again).is_empty());

        // Line breaks inside the base64 (as some clients wrap it) are tolerated.
        let wrapped: String =
            b64.as_bytes().chunks(76).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("\n");
        assert_eq!(parse_with(&wrapped, &[("common/address.proto", ADDRESS)]).canonical(), text.canonical());

        // A different schema gets a different canonical string.
        let other = parse_with(&RICH.replace("uint32 qty", "uint64 qty"), &[("common/address.proto", ADDRESS)]);
        assert_ne!(other.canonical(), text.canonical());
    }

    #[test]
    fn canonical_resolves_relative_type_names() {
        let text = "syntax = \"proto3\"; package p; message A { B b = 1; } message B { int32 x = 1; }";
        let canonical = parse(text).canonical();
        let bytes = STANDARD.decode(b64_of(text, "a.proto", &[])).expect("b64");
        let mut fdp = FileDescriptorProto::decode(bytes.as_slice()).expect("decode");
        // Hand-made descriptors may use relative names and leave the type unset.
        let field = &mut fdp.message_type[0].field[0];
        field.type_name = Some("B".to_owned());
        field.r#type = None;
        let relative = ProtoSchema::parse(&STANDARD.encode(fdp.encode_to_vec()), &[]).expect("relative names");
        assert_eq!(relative.canonical(), canonical);
    }

    #[test]
    fn proto2_syntax_spelled_or_not_is_the_same_schema() {
        let a = parse("syntax = \"proto2\"; message M { optional int32 a = 1; }");
        let b = parse("message M { optional int32 a = 1; }");
        assert_eq!(a.canonical(), b.canonical());
    }

    #[test]
    fn imports_resolve_through_refs_and_well_known_files() {
        let s = parse_with(
            "syntax = \"proto3\"; import \"common/address.proto\"; import \"google/protobuf/any.proto\"; \
             import \"google/protobuf/wrappers.proto\"; \
             message P { common.Address home = 1; google.protobuf.Any extra = 2; google.protobuf.Int32Value n = 3; }",
            &[("common/address.proto", ADDRESS)],
        );
        assert_eq!(s.message_name(&[0]).as_deref(), Some("P"));

        // Transitive references resolve as well.
        let mid =
            "syntax = \"proto3\"; package mid; import \"common/address.proto\"; message Mid { common.Address a = 1; }";
        let top = parse_with(
            "syntax = \"proto3\"; import \"mid.proto\"; message Top { mid.Mid m = 1; }",
            &[("common/address.proto", ADDRESS), ("mid.proto", mid)],
        );
        assert_eq!(top.message_name(&[0]).as_deref(), Some("Top"));

        let missing = ProtoSchema::parse("syntax = \"proto3\"; import \"nope.proto\"; message A {}", &[]);
        assert!(missing.is_err());
        let unknown_type = ProtoSchema::parse("syntax = \"proto3\"; message A { Missing m = 1; }", &[]);
        assert!(unknown_type.is_err(), "{unknown_type:?}");
        let cycle = ProtoSchema::parse(
            "syntax = \"proto3\"; import \"a.proto\"; message M {}",
            &[
                ("a.proto".to_owned(), "syntax = \"proto3\"; import \"b.proto\"; message A {}".to_owned()),
                ("b.proto".to_owned(), "syntax = \"proto3\"; import \"a.proto\"; message B {}".to_owned()),
            ],
        );
        assert!(cycle.is_err());
    }

    const INDEXED: &str = r#"
        syntax = "proto3";
        package idx;
        message First {
            map<string, string> labels = 1;
            message X { int32 x = 1; }
            enum E { Z = 0; }
            message Y { string y = 1; }
        }
        enum Top { T = 0; }
        message Second { int64 id = 1; message Inner { bool b = 1; } }
    "#;

    #[test]
    fn message_index_paths() {
        let s = parse(INDEXED);
        assert_eq!(s.message_name(&[0]).as_deref(), Some("idx.First"));
        assert_eq!(s.message_name(&[1]).as_deref(), Some("idx.Second"));
        // The synthesized LabelsEntry and the enum do not take an index.
        assert_eq!(s.message_name(&[0, 0]).as_deref(), Some("idx.First.X"));
        assert_eq!(s.message_name(&[0, 1]).as_deref(), Some("idx.First.Y"));
        assert_eq!(s.message_name(&[1, 0]).as_deref(), Some("idx.Second.Inner"));
        assert_eq!(s.message_name(&[2]), None);
        assert_eq!(s.message_name(&[0, 2]), None);
        assert_eq!(s.message_name(&[-1]), None);
        assert_eq!(s.message_name(&[]), None);
        assert_eq!(s.message_name(&[1, 0, 0]), None);
    }

    fn encode(s: &ProtoSchema, name: &str, fields: &[(&str, Value)]) -> Vec<u8> {
        let desc = s.pool.get_message_by_name(name).expect("message");
        let mut msg = DynamicMessage::new(desc);
        for (field, value) in fields {
            msg.set_field_by_name(field, value.clone());
        }
        msg.encode_to_vec()
    }

    fn framed(indexes: &[u8], body: &[u8]) -> Vec<u8> {
        let mut v = indexes.to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn validate_payloads_by_index_path() {
        let s = parse(INDEXED);
        let mut labels = HashMap::new();
        labels.insert(prost_reflect::MapKey::String("k".into()), Value::String("v".into()));
        let first = encode(&s, "idx.First", &[("labels", Value::Map(labels))]);
        // [0] is written as the single byte 0.
        assert_eq!(s.validate(&framed(&[0x00], &first)), Ok("idx.First".to_owned()));
        // [0] written in long form (count 1, index 0) is the same.
        assert_eq!(s.validate(&framed(&[0x02, 0x00], &first)), Ok("idx.First".to_owned()));

        let second = encode(&s, "idx.Second", &[("id", Value::I64(42))]);
        assert_eq!(s.validate(&framed(&[0x02, 0x02], &second)), Ok("idx.Second".to_owned()));

        let y = encode(&s, "idx.First.Y", &[("y", Value::String("hello".into()))]);
        assert_eq!(s.validate(&framed(&[0x04, 0x00, 0x02], &y)), Ok("idx.First.Y".to_owned()));
        // An empty message body is a valid (all-default) message.
        assert_eq!(s.validate(&[0x00]), Ok("idx.First".to_owned()));

        // Bytes that are not a Y: field 1 as a varint where Y wants a string.
        assert!(s.validate(&framed(&[0x04, 0x00, 0x02], &[0x08, 0x01])).is_err());
        // Invalid UTF-8 in a string field.
        assert!(s.validate(&framed(&[0x04, 0x00, 0x02], &[0x0a, 0x02, 0xff, 0xfe])).is_err());
        // Length prefix beyond the end.
        assert!(s.validate(&framed(&[0x00], &[0x0a, 0x7f, 0x01])).is_err());
        // Indexes that name no message.
        assert!(s.validate(&framed(&[0x02, 0x06], &second)).is_err());
        assert!(s.validate(&framed(&[0x02, 0x01], &second)).is_err(), "negative index");
    }

    #[test]
    fn validate_rejects_malformed_index_arrays() {
        let s = parse(INDEXED);
        assert!(s.validate(&[]).is_err(), "empty");
        assert!(s.validate(&[0x01]).is_err(), "count -1");
        assert!(s.validate(&[0x80]).is_err(), "truncated varint");
        assert!(s.validate(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err(), "overlong");
        // count 100001 is over Confluent's limit; count 100000 with too few bytes is truncated, not allocated.
        let mut over = Vec::new();
        prost::encoding::encode_varint(200_002, &mut over);
        assert!(s.validate(&over).unwrap_err().contains("count"));
        let mut big = Vec::new();
        prost::encoding::encode_varint(200_000, &mut big);
        assert!(s.validate(&big).unwrap_err().contains("truncated"));
        // A long but legal array that walks off the schema.
        let mut deep = Vec::new();
        prost::encoding::encode_varint(2 * 50_000, &mut deep);
        deep.extend(std::iter::repeat_n(0u8, 50_000));
        assert!(s.validate(&deep).unwrap_err().contains("no message"));
    }

    #[test]
    fn validate_survives_hostile_payloads() {
        let s = parse("syntax = \"proto3\"; message R { R child = 1; int32 v = 2; }");
        // 10_000 levels of nested R: must be refused by the recursion limit, not overflow the stack.
        let mut body = vec![0x10, 0x01];
        for _ in 0..10_000 {
            let mut outer = vec![0x0a];
            prost::encoding::encode_varint(body.len() as u64, &mut outer);
            outer.extend_from_slice(&body);
            body = outer;
        }
        assert!(s.validate(&framed(&[0x00], &body)).is_err());
        // Deeply nested unknown groups.
        let mut groups = vec![0x1bu8; 100_000];
        groups.extend(std::iter::repeat_n(0x1cu8, 100_000));
        assert!(s.validate(&framed(&[0x00], &groups)).is_err());
        // Random garbage never panics.
        let mut seed = 0x1234_5678u32;
        for len in 0..512usize {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            let _ = s.validate(&data);
        }
    }

    #[test]
    fn malformed_schemas_are_errors() {
        for bad in [
            "message {",
            "syntax = \"proto3\"; message A { int32 a = 0; }",
            "syntax = \"proto3\"; message A { int32 a = 1; int32 b = 1; }",
            "syntax = \"proto4\"; message A {}",
            "this is not a schema",
            "QUJD", // valid base64, not a descriptor, not .proto
            "!!!!",
            "\u{0}\u{1}\u{2}",
        ] {
            assert!(ProtoSchema::parse(bad, &[]).is_err(), "accepted: {bad:?}");
        }
        // Truncated descriptor.
        let b64 = b64_of(RICH, "o.proto", &[("common/address.proto", ADDRESS)]);
        let bytes = STANDARD.decode(&b64).expect("b64");
        for cut in [1, 7, bytes.len() / 2, bytes.len() - 1] {
            let truncated = STANDARD.encode(&bytes[..cut]);
            assert!(ProtoSchema::parse(&truncated, &[("common/address.proto".into(), ADDRESS.into())]).is_err());
        }
        // Descriptor with a reference that is missing.
        assert!(ProtoSchema::parse(&b64, &[]).is_err());
        // Deep nesting in text.
        let deep = format!("{}{}", "message A { ".repeat(10_000), "}".repeat(10_000));
        assert!(ProtoSchema::parse(&deep, &[]).is_err());
        let deep_option = format!(
            "syntax = \"proto3\"; import \"google/protobuf/descriptor.proto\"; \
             extend google.protobuf.MessageOptions {{ Opt opt = 50000; }} message Opt {{ Opt o = 1; }} \
             message A {{ option (opt) = {}{}; }}",
            "{ o ".repeat(5_000),
            "}".repeat(5_000)
        );
        assert!(ProtoSchema::parse(&deep_option, &[]).is_err());
        // Too large.
        assert!(ProtoSchema::parse(&" ".repeat(MAX_SCHEMA_LEN + 1), &[]).is_err());
        // Deep nesting in a descriptor.
        let mut msg = DescriptorProto { name: Some("N".into()), ..Default::default() };
        for _ in 0..1_000 {
            msg = DescriptorProto { name: Some("N".into()), nested_type: vec![msg], ..Default::default() };
        }
        let fdp = FileDescriptorProto { name: Some("d.proto".into()), message_type: vec![msg], ..Default::default() };
        assert!(ProtoSchema::parse(&STANDARD.encode(fdp.encode_to_vec()), &[]).is_err());
    }

    #[test]
    fn strings_and_comments_do_not_count_as_nesting() {
        let text = format!(
            "syntax = \"proto3\"; // {}\n/* {} */ message A {{ string s = 1 [json_name = \"{}\"]; }}",
            "{".repeat(500),
            "[".repeat(500),
            "(".repeat(500)
        );
        assert!(ProtoSchema::parse(&text, &[]).is_ok());
    }

    /// A chain of message types in an import, each referencing the next twice. Confluent re-walks shared types at
    /// every use (2^depth); the memo keeps this linear.
    fn diamond(depth: usize, leaf: &str) -> String {
        let mut s = String::from("syntax = \"proto3\"; package d;\n");
        for i in 0..depth {
            s.push_str(&format!("message T{i} {{ T{n} a = 1; T{n} b = 2; }}\n", n = i + 1));
        }
        s.push_str(&format!("message T{depth} {{ {leaf} v = 1; }}\n"));
        s
    }

    #[test]
    fn diff_of_shared_imported_types_is_fast() {
        let main = "syntax = \"proto3\"; import \"d.proto\"; message M { d.T0 t = 1; }";
        let a = parse_with(main, &[("d.proto", &diamond(40, "int32"))]);
        let b = parse_with(main, &[("d.proto", &diamond(40, "string"))]);
        let start = std::time::Instant::now();
        let found = incompatibilities(&a, &b);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        assert!(found.contains(&"FIELD_SCALAR_KIND_CHANGED at #/T40/1".to_owned()), "{found:?}");
        assert!(found.contains(&"FIELD_NAMED_TYPE_CHANGED at #/M/1".to_owned()), "{found:?}");
        // Identical imports are not walked at all.
        let c = parse_with(main, &[("d.proto", &diamond(40, "int32"))]);
        assert!(incompatibilities(&a, &c).is_empty());
    }

    #[test]
    fn very_long_type_chains_stop_at_the_depth_limit() {
        let main = "syntax = \"proto3\"; import \"d.proto\"; message M { d.T0 t = 1; }";
        let a = parse_with(main, &[("d.proto", &diamond(300, "int32"))]);
        let b = parse_with(main, &[("d.proto", &diamond(300, "sint32"))]);
        let found = incompatibilities(&a, &b);
        assert!(found.iter().any(|r| r.starts_with("NESTING_TOO_DEEP")), "{found:?}");
    }

    #[test]
    fn recursive_types_terminate() {
        let dep1 = "syntax = \"proto3\"; package r; message Node { repeated Node kids = 1; int32 v = 2; }";
        let dep2 = "syntax = \"proto3\"; package r; message Node { repeated Node kids = 1; string v = 2; }";
        let main = "syntax = \"proto3\"; import \"r.proto\"; message M { r.Node root = 1; }";
        let a = parse_with(main, &[("r.proto", dep1)]);
        let b = parse_with(main, &[("r.proto", dep2)]);
        let found = incompatibilities(&a, &b);
        assert!(found.contains(&"FIELD_SCALAR_KIND_CHANGED at #/Node/2".to_owned()), "{found:?}");
        let local = parse("syntax = \"proto3\"; message Node { repeated Node kids = 1; }");
        assert!(incompatibilities(&local, &local).is_empty());
    }
}

#[cfg(test)]
mod fuzzish {
    use super::*;

    #[test]
    fn mutated_descriptors_and_text_never_panic() {
        let rich = "syntax = \"proto3\"; package p; import \"google/protobuf/timestamp.proto\"; \
            message A { int64 id = 1; map<string, B> m = 2; oneof o { string s = 3; B b = 4; } optional int32 n = 5; \
            google.protobuf.Timestamp t = 6; enum E { X = 0; Y = 1; } E e = 7; } message B { repeated A a = 1; }";
        let schema = ProtoSchema::parse(rich, &[]).expect("rich");
        let bytes = STANDARD.decode(schema.serialized()).expect("b64");
        let mut seed = 0x9e37_79b9u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let (mut caught, mut accepted) = (0usize, 0usize);
        for _ in 0..6000 {
            let mut b = bytes.clone();
            for _ in 0..(1 + next() % 4) {
                let i = next() as usize % b.len();
                b[i] = next() as u8;
            }
            // Public entry point: prost-reflect has panics in its own error reporting for some corrupt
            // descriptors, which the guard must turn into errors.
            let parsed = ProtoSchema::parse(&STANDARD.encode(&b), &[]);
            if matches!(&parsed, Err(e) if e.starts_with("internal error")) {
                caught += 1;
            }
            if let Ok(s) = parsed {
                accepted += 1;
                let _ = differences(&schema, &s);
                let _ = differences(&s, &schema);
                for payload in [&[0u8, 8, 1][..], &[0, 0x12, 4, 0x0a, 0, 0x12, 0], &[2, 2, 0x0a, 2, 0x12, 0]] {
                    let _ = s.validate_inner(payload);
                }
            }
        }
        eprintln!("mutated descriptors: {accepted} accepted, {caught} library panics caught");
        assert_eq!(caught, 0, "a known prost-reflect panic came back");
        let text = rich.as_bytes();
        for _ in 0..6000 {
            let mut b = text.to_vec();
            for _ in 0..(1 + next() % 3) {
                let i = next() as usize % b.len();
                b[i] = b"{}[]()<>;=\"'/*.0aZ \n"[next() as usize % 20];
            }
            if let Ok(t) = std::str::from_utf8(&b) {
                if let Ok(s) = ProtoSchema::parse_inner(t, &[]) {
                    let _ = differences(&schema, &s);
                    let _ = differences(&s, &schema);
                }
            }
        }
    }
}

#[cfg(test)]
mod structured_fuzz {
    use super::*;
    use prost_types::{EnumDescriptorProto, EnumValueDescriptorProto, MessageOptions, OneofDescriptorProto};

    struct Rng(u32);
    impl Rng {
        fn next(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            self.next() as usize % n.max(1)
        }
    }

    fn mutate_message(m: &mut DescriptorProto, r: &mut Rng) {
        match r.below(12) {
            0 => m.options = Some(MessageOptions { map_entry: Some(r.below(2) == 0), ..Default::default() }),
            1 => m
                .oneof_decl
                .push(OneofDescriptorProto { name: Some(["o", "_a", "x"][r.below(3)].into()), ..Default::default() }),
            2 => {
                let copy = m.clone();
                m.nested_type.push(copy);
            }
            3 => m.name = Some(["A", "B", "AEntry", "", "a.b"][r.below(5)].into()),
            4 => m.enum_type.push(EnumDescriptorProto {
                name: Some("E".into()),
                value: if r.below(2) == 0 {
                    vec![]
                } else {
                    vec![EnumValueDescriptorProto {
                        name: Some("Z".into()),
                        number: Some(r.below(3) as i32),
                        options: None,
                    }]
                },
                ..Default::default()
            }),
            _ => {
                if m.field.is_empty() {
                    m.field.push(FieldDescriptorProto {
                        name: Some("f".into()),
                        number: Some(1),
                        ..Default::default()
                    });
                }
                let i = r.below(m.field.len());
                let f = &mut m.field[i];
                match r.below(8) {
                    0 => f.number = Some([0, -1, 1, 2, 536_870_911, 19_000, i32::MAX][r.below(7)]),
                    1 => f.label = Some(r.below(5) as i32),
                    2 => f.r#type = Some(r.below(20) as i32),
                    3 => {
                        f.type_name = Some(
                            [".p.A", ".p.B", "A", ".p.A.MEntry", ".", "", ".p.E", ".google.protobuf.Timestamp"]
                                [r.below(8)]
                            .into(),
                        )
                    }
                    4 => f.oneof_index = Some(r.below(4) as i32 - 1),
                    5 => f.proto3_optional = Some(r.below(2) == 0),
                    6 => f.name = Some(["f", "key", "value", "a", ""][r.below(5)].into()),
                    _ => f.default_value = Some(["1", "x", "-", "1e999"][r.below(4)].into()),
                }
            }
        }
    }

    #[test]
    fn structurally_mutated_descriptors_never_panic() {
        let rich = "syntax = \"proto3\"; package p; import \"google/protobuf/timestamp.proto\"; \
            message A { int64 id = 1; map<string, B> m = 2; oneof o { string s = 3; B b = 4; } optional int32 n = 5; \
            google.protobuf.Timestamp t = 6; enum E { X = 0; Y = 1; } E e = 7; } message B { repeated A a = 1; }";
        let schema = ProtoSchema::parse(rich, &[]).expect("rich");
        let bytes = STANDARD.decode(schema.serialized()).expect("b64");
        let base = FileDescriptorProto::decode(bytes.as_slice()).expect("fdp");
        let mut r = Rng(0x2545_f491);
        let (mut accepted, mut caught) = (0usize, 0usize);
        for _ in 0..6000 {
            let mut f = base.clone();
            for _ in 0..(1 + r.below(3)) {
                if r.below(10) == 0 {
                    f.syntax = [None, Some("proto2".to_owned()), Some("proto3".to_owned())][r.below(3)].clone();
                    continue;
                }
                let top = r.below(f.message_type.len());
                let m = &mut f.message_type[top];
                if !m.nested_type.is_empty() && r.below(2) == 0 {
                    let n = r.below(m.nested_type.len());
                    mutate_message(&mut m.nested_type[n], &mut r);
                } else {
                    mutate_message(m, &mut r);
                }
            }
            let parsed = ProtoSchema::parse(&STANDARD.encode(f.encode_to_vec()), &[]);
            if matches!(&parsed, Err(e) if e.starts_with("internal error")) {
                caught += 1;
            }
            if let Ok(s) = parsed {
                accepted += 1;
                let _ = differences(&schema, &s);
                let _ = differences(&s, &schema);
                let _ = s.canonical();
                for path in [&[0i32][..], &[1], &[0, 0], &[0, 1]] {
                    let _ = s.message_name(path);
                }
                for payload in
                    [&[0u8, 8, 1][..], &[0, 0x12, 4, 0x0a, 0, 0x12, 0], &[2, 2, 0x0a, 2, 0x12, 0], &[0, 0x28, 5]]
                {
                    let _ = s.validate_inner(payload);
                }
            }
        }
        eprintln!("structured mutations: {accepted} accepted, {caught} library panics caught");
        assert_eq!(caught, 0, "prost-reflect panicked on a descriptor the guard had to catch");
    }
}
