//! Generates the message codec from `schema/*.schema` (see `schema/README.md` for the format).
//!
//! Generation happens at build time rather than into committed files so the generated
//! code can never drift from the schema (ADR 0001). The output is straight-line Rust:
//! one struct per message and nested struct, with `encode`/`decode` taking a version.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let schema_dir = Path::new("schema");
    println!("cargo:rerun-if-changed=schema");
    println!("cargo:rerun-if-changed=build.rs");
    let mut files: Vec<_> = std::fs::read_dir(schema_dir)
        .expect("schema dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "schema"))
        .collect();
    files.sort();
    let mut messages = Vec::new();
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(path).expect("read schema");
        match parse_file(&text) {
            Ok(mut m) => messages.append(&mut m),
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
    let out = generate(&messages);
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("generated.rs");
    std::fs::write(dest, out).expect("write generated.rs");
}

// ---------------------------------------------------------------- schema model

#[derive(Clone, Copy, Debug, PartialEq)]
struct Range {
    lo: i16,
    hi: Option<i16>,
}

impl Range {
    const NONE: Range = Range { lo: i16::MAX, hi: Some(-1) };

    fn parse(s: &str) -> Result<Range, String> {
        if s == "none" {
            return Ok(Range::NONE);
        }
        let num = |x: &str| x.parse::<i16>().map_err(|_| format!("bad version range {s:?}"));
        if let Some(lo) = s.strip_suffix('+') {
            return Ok(Range { lo: num(lo)?, hi: None });
        }
        if let Some((lo, hi)) = s.split_once('-') {
            return Ok(Range { lo: num(lo)?, hi: Some(num(hi)?) });
        }
        let v = num(s)?;
        Ok(Range { lo: v, hi: Some(v) })
    }

    fn is_none(&self) -> bool {
        matches!(self.hi, Some(h) if h < self.lo)
    }

    /// A Rust boolean expression over `version`, simplified against the message's valid range.
    fn cond(&self, valid: Range) -> String {
        if self.is_none() {
            return "false".into();
        }
        let lo_needed = self.lo > valid.lo;
        let hi_needed = match (self.hi, valid.hi) {
            (None, _) => false,
            (Some(h), Some(vh)) => h < vh,
            (Some(_), None) => true,
        };
        match (lo_needed, hi_needed) {
            (false, false) => "true".into(),
            (true, false) => format!("version >= {}", self.lo),
            (false, true) => format!("version <= {}", self.hi.unwrap_or(i16::MAX)),
            (true, true) => format!("({}..={}).contains(&version)", self.lo, self.hi.unwrap_or(i16::MAX)),
        }
    }
}

#[derive(Clone, Debug)]
struct Field {
    name: String,
    ty: String,
    versions: Range,
    nullable: Option<Range>,
    tag: Option<(u32, Range)>,
    default: Option<String>,
    children: Vec<Field>,
}

#[derive(Debug)]
struct Message {
    kind: String,
    name: String,
    key: i16,
    versions: Range,
    flexible: Range,
    fields: Vec<Field>,
    common: Vec<(String, Vec<Field>)>,
}

fn parse_file(text: &str) -> Result<Vec<Message>, String> {
    let mut messages: Vec<Message> = Vec::new();
    // Stack of (indent, field-list path) while reading nested fields.
    let mut lines = text.lines().enumerate().filter(|(_, l)| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    });
    let mut pending: Vec<(usize, usize, String)> = Vec::new();
    for (no, line) in lines.by_ref() {
        pending.push((no + 1, line.len() - line.trim_start().len(), line.trim().to_string()));
    }
    let mut i = 0;
    while i < pending.len() {
        let (no, indent, ref l) = pending[i];
        if indent != 0 {
            return Err(format!("line {no}: expected a top-level declaration"));
        }
        let words: Vec<&str> = l.split_whitespace().collect();
        let kw = |k: &str| -> Result<String, String> {
            words
                .iter()
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .map(str::to_string)
                .ok_or_else(|| format!("line {no}: missing {k}="))
        };
        i += 1;
        let (fields, next) = parse_fields(&pending, i, 2)?;
        i = next;
        match words.first().copied() {
            Some("request") | Some("response") => messages.push(Message {
                kind: words[0].to_string(),
                name: words.get(1).ok_or(format!("line {no}: missing name"))?.to_string(),
                key: kw("key")?.parse().map_err(|_| format!("line {no}: bad key"))?,
                versions: Range::parse(&kw("versions")?)?,
                flexible: Range::parse(&kw("flexible")?)?,
                fields,
                common: Vec::new(),
            }),
            Some("struct") => {
                let m = messages.last_mut().ok_or(format!("line {no}: struct before any message"))?;
                let name = words.get(1).ok_or(format!("line {no}: missing struct name"))?;
                m.common.push((name.to_string(), fields));
            }
            _ => return Err(format!("line {no}: unknown declaration {l:?}")),
        }
    }
    Ok(messages)
}

fn parse_fields(lines: &[(usize, usize, String)], mut i: usize, indent: usize) -> Result<(Vec<Field>, usize), String> {
    let mut out = Vec::new();
    while i < lines.len() && lines[i].1 >= indent {
        let (no, ind, ref l) = lines[i];
        if ind != indent {
            return Err(format!("line {no}: unexpected indentation"));
        }
        let (name, rest) = l.split_once(':').ok_or(format!("line {no}: expected `name: type versions`"))?;
        let words: Vec<&str> = rest.split_whitespace().collect();
        if words.len() < 2 {
            return Err(format!("line {no}: expected `name: type versions`"));
        }
        let mut f = Field {
            name: name.trim().to_string(),
            ty: words[0].to_string(),
            versions: Range::parse(words[1])?,
            nullable: None,
            tag: None,
            default: None,
            children: Vec::new(),
        };
        let mut tag_no = None;
        let mut tagged = None;
        for w in &words[2..] {
            let (k, v) = w.split_once('=').ok_or(format!("line {no}: bad attribute {w:?}"))?;
            match k {
                "nullable" => f.nullable = Some(Range::parse(v)?),
                "tag" => tag_no = Some(v.parse::<u32>().map_err(|_| format!("line {no}: bad tag"))?),
                "tagged" => tagged = Some(Range::parse(v)?),
                "default" => f.default = Some(v.to_string()),
                _ => return Err(format!("line {no}: unknown attribute {k}")),
            }
        }
        match (tag_no, tagged) {
            (Some(t), Some(r)) => f.tag = Some((t, r)),
            (None, None) => {}
            _ => return Err(format!("line {no}: tag= and tagged= go together")),
        }
        let (children, next) = parse_fields(lines, i + 1, indent + 2)?;
        f.children = children;
        i = next;
        out.push(f);
    }
    Ok((out, i))
}

// ---------------------------------------------------------------- generation

const KEYWORDS: &[&str] = &["type", "match", "ref", "self", "loop", "move", "fn", "mod", "use", "where", "async"];

fn ident(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower = i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_uppercase())) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn primitive(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "bool" => "bool",
        "i8" => "i8",
        "i16" => "i16",
        "i32" => "i32",
        "i64" => "i64",
        "u16" => "u16",
        "u32" => "u32",
        "f64" => "f64",
        "uuid" => "crate::Uuid",
        "string" => "String",
        "bytes" | "records" => "bytes::Bytes",
        _ => return None,
    })
}

struct Gen<'a> {
    msg: &'a Message,
    out: String,
    /// Struct definitions to emit: name → fields.
    structs: BTreeMap<String, Vec<Field>>,
}

impl Field {
    fn is_array(&self) -> bool {
        self.ty.starts_with("[]")
    }
    fn elem(&self) -> &str {
        self.ty.trim_start_matches("[]")
    }
    fn is_nullable(&self) -> bool {
        self.nullable.is_some_and(|r| !r.is_none())
    }
    fn base_rust_type(&self) -> String {
        let e = self.elem();
        let inner = primitive(e).map(str::to_string).unwrap_or_else(|| e.to_string());
        if self.is_array() {
            format!("Vec<{inner}>")
        } else {
            inner
        }
    }
    fn rust_type(&self) -> String {
        if self.is_nullable() {
            format!("Option<{}>", self.base_rust_type())
        } else {
            self.base_rust_type()
        }
    }
    fn default_expr(&self) -> String {
        let d = self.default.as_deref();
        let base = if self.is_array() {
            "Vec::new()".to_string()
        } else {
            match self.elem() {
                "bool" => d.unwrap_or("false").to_string(),
                "i8" | "i16" | "i32" | "i64" | "u16" | "u32" => {
                    let v = d.unwrap_or("0");
                    if v.starts_with('-') {
                        format!("{v}_{}", self.elem())
                    } else {
                        format!("{v}{}", self.elem())
                    }
                }
                "f64" => format!("{}f64", d.unwrap_or("0.0")),
                "uuid" => "crate::Uuid::ZERO".into(),
                "string" => match d {
                    Some("null") | None | Some("\"\"") => "String::new()".into(),
                    Some(s) => format!("String::from({s:?})"),
                },
                "bytes" | "records" => "bytes::Bytes::new()".into(),
                other => format!("{other}::default()"),
            }
        };
        if self.is_nullable() {
            // Kafka's convention: records and explicit `default=null` start out null.
            if d == Some("null") || self.elem() == "records" {
                "None".into()
            } else {
                format!("Some({base})")
            }
        } else {
            base
        }
    }
}

fn generate(messages: &[Message]) -> String {
    let mut out = String::from("// @generated by protocol/build.rs from protocol/schema. Do not edit.\n\n");
    for m in messages {
        let mut g = Gen { msg: m, out: String::new(), structs: BTreeMap::new() };
        for (name, fields) in &m.common {
            g.collect(name, fields);
        }
        g.collect(&m.name, &m.fields);
        let module = snake(&m.name);
        writeln!(
            out,
            "/// `{}` (API key {}, versions {}..={}).",
            m.name,
            m.key,
            m.versions.lo,
            m.versions.hi.unwrap_or(i16::MAX)
        )
        .ok();
        writeln!(out, "pub mod {module} {{").ok();
        writeln!(
            out,
            "    #![allow(clippy::all, unused_variables, unused_mut, unused_imports, unused_parens, missing_docs)]"
        )
        .ok();
        writeln!(
            out,
            "    use crate::codec::{{Reader, Writer}};\n    use crate::error::{{DecodeError, EncodeError}};\n"
        )
        .ok();
        let structs = std::mem::take(&mut g.structs);
        for (name, fields) in &structs {
            g.emit_struct(name, fields, name == &m.name);
        }
        out.push_str(&g.out);
        writeln!(out, "}}\npub use {module}::{};\n", m.name).ok();
        writeln!(
            out,
            "impl crate::Message for {module}::{n} {{\n    const API_KEY: i16 = {n}::API_KEY;\n    const MIN_VERSION: i16 = {n}::MIN_VERSION;\n    const MAX_VERSION: i16 = {n}::MAX_VERSION;\n    fn encode(&self, w: &mut crate::Writer, version: i16) -> Result<(), crate::EncodeError> {{ {n}::encode(self, w, version) }}\n    fn decode(r: &mut crate::Reader, version: i16) -> Result<Self, crate::DecodeError> {{ {n}::decode(r, version) }}\n}}\n",
            n = m.name
        )
        .ok();
    }
    // The API table: one row per API key, from the request schemas.
    out.push_str("/// Every API described by the schema: (key, name, request versions, flexible-from).\n");
    out.push_str("pub const API_SCHEMAS: &[crate::ApiSchema] = &[\n");
    let mut reqs: Vec<&Message> = messages.iter().filter(|m| m.kind == "request").collect();
    reqs.sort_by_key(|m| m.key);
    for m in reqs {
        let flex = if m.flexible.is_none() { "None".to_string() } else { format!("Some({})", m.flexible.lo) };
        writeln!(
            out,
            "    crate::ApiSchema {{ key: {}, name: {:?}, min_version: {}, max_version: {}, flexible_from: {flex} }},",
            m.key,
            m.name.trim_end_matches("Request"),
            m.versions.lo,
            m.versions.hi.unwrap_or(i16::MAX)
        )
        .ok();
    }
    out.push_str("];\n");
    out
}

impl Gen<'_> {
    fn collect(&mut self, name: &str, fields: &[Field]) {
        for f in fields {
            if !f.children.is_empty() {
                self.collect(f.elem(), &f.children);
            }
        }
        self.structs.entry(name.to_string()).or_insert_with(|| fields.to_vec());
    }

    fn flex_cond(&self) -> String {
        self.msg.flexible.cond(self.msg.versions)
    }

    fn emit_struct(&mut self, name: &str, fields: &[Field], top: bool) {
        let m = self.msg;
        let o = &mut self.out;
        writeln!(o, "    #[derive(Debug, Clone, PartialEq)]").ok();
        writeln!(o, "    pub struct {name} {{").ok();
        for f in fields {
            writeln!(o, "        /// Versions {}.", range_doc(f.versions)).ok();
            writeln!(o, "        pub {}: {},", ident(&f.name), f.rust_type()).ok();
        }
        writeln!(o, "        /// Tagged fields this version of the schema does not know, kept verbatim.").ok();
        writeln!(o, "        pub unknown_tagged_fields: Vec<(u32, bytes::Bytes)>,").ok();
        writeln!(o, "    }}\n").ok();
        writeln!(o, "    impl Default for {name} {{\n        fn default() -> Self {{\n            Self {{").ok();
        for f in fields {
            writeln!(o, "                {}: {},", ident(&f.name), f.default_expr()).ok();
        }
        writeln!(o, "                unknown_tagged_fields: Vec::new(),\n            }}\n        }}\n    }}\n").ok();

        // ---- encode
        let flex = self.flex_cond();
        let o = &mut self.out;
        writeln!(o, "    impl {name} {{").ok();
        if top {
            writeln!(o, "        /// API key of this message.\n        pub const API_KEY: i16 = {};", m.key).ok();
            writeln!(
                o,
                "        /// Lowest version described.\n        pub const MIN_VERSION: i16 = {};",
                m.versions.lo
            )
            .ok();
            writeln!(
                o,
                "        /// Highest version described.\n        pub const MAX_VERSION: i16 = {};",
                m.versions.hi.unwrap_or(i16::MAX)
            )
            .ok();
            writeln!(o, "        /// Whether `version` uses the flexible (compact, tagged) encoding.").ok();
            writeln!(
                o,
                "        pub fn is_flexible(version: i16) -> bool {{ {} }}",
                if m.flexible.is_none() { "false".to_string() } else { format!("version >= {}", m.flexible.lo) }
            )
            .ok();
        }
        writeln!(o, "        /// Encodes this value at `version`.").ok();
        writeln!(o, "        pub fn encode(&self, w: &mut Writer, version: i16) -> Result<(), EncodeError> {{").ok();
        if top {
            writeln!(o, "            if !(Self::MIN_VERSION..=Self::MAX_VERSION).contains(&version) {{ return Err(EncodeError::UnsupportedVersion {{ api_key: Self::API_KEY, version }}); }}").ok();
        }
        writeln!(o, "            let flexible = {flex};").ok();
        for f in fields {
            let present = f.versions.cond(m.versions);
            if f.tag.is_some() {
                continue;
            }
            let body = encode_value(f, &format!("self.{}", ident(&f.name)), m.versions, 16);
            if present == "true" {
                writeln!(o, "            {{\n{body}            }}").ok();
            } else {
                writeln!(o, "            if {present} {{\n{body}            }}").ok();
            }
        }
        writeln!(o, "            if flexible {{").ok();
        writeln!(o, "                let mut tagged: Vec<(u32, bytes::Bytes)> = Vec::new();").ok();
        for f in fields {
            if let Some((tag, tr)) = f.tag {
                let v = format!("self.{}", ident(&f.name));
                let body = encode_value(f, &v, m.versions, 20);
                writeln!(o, "                if ({}) && {v} != {} {{", tr.cond(m.versions), f.default_expr()).ok();
                writeln!(o, "                    let mut tw = Writer::new();\n                    {{\n                    let w = &mut tw;\n{body}                    }}").ok();
                writeln!(o, "                    tagged.push(({tag}, tw.into_bytes()));\n                }}").ok();
            }
        }
        writeln!(o, "                w.tagged_fields(tagged, &self.unknown_tagged_fields)?;").ok();
        writeln!(o, "            }}\n            Ok(())\n        }}\n").ok();

        // ---- decode
        writeln!(o, "        /// Decodes a value at `version`, checking every length against the bytes left.").ok();
        writeln!(o, "        pub fn decode(r: &mut Reader, version: i16) -> Result<Self, DecodeError> {{").ok();
        if top {
            writeln!(o, "            if !(Self::MIN_VERSION..=Self::MAX_VERSION).contains(&version) {{ return Err(DecodeError::UnsupportedVersion {{ api_key: Self::API_KEY, version }}); }}").ok();
        }
        writeln!(o, "            let flexible = {flex};").ok();
        writeln!(o, "            let mut this = Self::default();").ok();
        for f in fields {
            if f.tag.is_some() {
                continue;
            }
            let present = f.versions.cond(m.versions);
            let expr = decode_value(f, m.versions);
            if present == "true" {
                writeln!(o, "            this.{} = {expr};", ident(&f.name)).ok();
            } else {
                writeln!(o, "            if {present} {{ this.{} = {expr}; }}", ident(&f.name)).ok();
            }
        }
        writeln!(o, "            if flexible {{").ok();
        writeln!(o, "                let n = r.tagged_count()?;").ok();
        writeln!(o, "                this.unknown_tagged_fields.reserve_exact(n as usize);").ok();
        writeln!(o, "                let mut last: Option<u32> = None;").ok();
        writeln!(o, "                for _ in 0..n {{").ok();
        writeln!(o, "                    let tag = r.uvarint()?;").ok();
        writeln!(o, "                    if last.is_some_and(|l| tag <= l) {{ return Err(r.invalid(\"tagged fields out of order\")); }}").ok();
        writeln!(o, "                    last = Some(tag);").ok();
        writeln!(o, "                    let size = r.uvarint()? as usize;").ok();
        writeln!(o, "                    let raw = r.take(size)?;").ok();
        writeln!(o, "                    match tag {{").ok();
        for f in fields {
            if let Some((tag, tr)) = f.tag {
                let expr = decode_value(f, m.versions);
                writeln!(
                    o,
                    "                        {tag} if {} => {{ let mut sub = r.sub(raw); {{ let r = &mut sub; this.{} = {expr}; }} r.rejoin(sub); }}",
                    tr.cond(m.versions),
                    ident(&f.name)
                )
                .ok();
            }
        }
        writeln!(o, "                        _ => this.unknown_tagged_fields.push((tag, raw)),").ok();
        writeln!(o, "                    }}\n                }}\n            }}").ok();
        writeln!(o, "            Ok(this)\n        }}\n").ok();

        // ---- random values for property tests: only fields present at `version`.
        writeln!(o, "        /// A random value valid at `version` (fields absent there keep their defaults).").ok();
        writeln!(o, "        #[cfg(feature = \"testing\")]").ok();
        writeln!(o, "        pub fn random(rng: &mut crate::testing::Rng, version: i16) -> Self {{").ok();
        writeln!(o, "            let mut this = Self::default();").ok();
        for f in fields {
            let present = match f.tag {
                Some((_, tr)) => tr.cond(m.versions),
                None => f.versions.cond(m.versions),
            };
            let nullable = f.nullable.map(|n| n.cond(m.versions)).unwrap_or_else(|| "false".into());
            let elem = random_scalar(f.elem());
            let base =
                if f.is_array() { format!("(0..rng.below(3)).map(|_| {elem}).collect::<Vec<_>>()") } else { elem };
            let value = if f.is_nullable() {
                format!("if ({nullable}) && rng.below(4) == 0 {{ None }} else {{ Some({base}) }}")
            } else {
                base
            };
            writeln!(o, "            if {present} {{ this.{} = {value}; }}", ident(&f.name)).ok();
        }
        writeln!(o, "            this\n        }}\n    }}\n").ok();
    }
}

fn range_doc(r: Range) -> String {
    if r.is_none() {
        "none".into()
    } else {
        match r.hi {
            None => format!("{}+", r.lo),
            Some(h) => format!("{}-{h}", r.lo),
        }
    }
}

fn pad(n: usize) -> String {
    " ".repeat(n)
}

/// Code that writes `v` (an expression of the field's Rust type) at the current version.
fn encode_value(f: &Field, v: &str, valid: Range, ind: usize) -> String {
    let p = pad(ind);
    let mut s = String::new();
    if f.is_nullable() {
        let nullable = f.nullable.map(|r| r.cond(valid)).unwrap_or_else(|| "false".into());
        writeln!(s, "{p}match &{v} {{").ok();
        writeln!(s, "{p}    None if {nullable} => {},", null_writer(f)).ok();
        writeln!(s, "{p}    None => return Err(EncodeError::NullNotAllowed {{ field: {:?} }}),", f.name).ok();
        writeln!(s, "{p}    Some(x) => {{").ok();
        s.push_str(&encode_nonnull(f, "x", ind + 8, true));
        writeln!(s, "{p}    }}\n{p}}}").ok();
    } else {
        s.push_str(&encode_nonnull(f, &format!("(&{v})"), ind, false));
    }
    s
}

fn null_writer(f: &Field) -> String {
    if f.is_array() {
        "w.null_array(flexible)".into()
    } else {
        match f.elem() {
            "string" => "w.null_string(flexible)".into(),
            "bytes" => "w.null_bytes(flexible)".into(),
            "records" => "w.null_records(flexible)".into(),
            _ => "w.i8(-1)".into(),
        }
    }
}

/// `v` is a reference expression to a non-null value.
fn encode_nonnull(f: &Field, v: &str, ind: usize, nullable_struct: bool) -> String {
    let p = pad(ind);
    let mut s = String::new();
    if f.is_array() {
        writeln!(s, "{p}w.array_len({v}.len(), flexible)?;").ok();
        writeln!(s, "{p}for e in {v}.iter() {{").ok();
        writeln!(s, "{p}    {}", encode_scalar(f.elem(), "e")).ok();
        writeln!(s, "{p}}}").ok();
    } else {
        if nullable_struct && primitive(f.elem()).is_none() {
            writeln!(s, "{p}w.i8(1);").ok();
        }
        writeln!(s, "{p}{}", encode_scalar(f.elem(), v)).ok();
    }
    s
}

fn encode_scalar(ty: &str, v: &str) -> String {
    match ty {
        "bool" | "i8" | "i16" | "i32" | "i64" | "u16" | "u32" | "f64" | "uuid" => format!("w.{ty}(*{v});"),
        "string" => format!("w.string({v}, flexible)?;"),
        "bytes" => format!("w.bytes({v}, flexible)?;"),
        "records" => format!("w.records({v}, flexible)?;"),
        _ => format!("{v}.encode(w, version)?;"),
    }
}

/// An expression of the field's Rust type read from `r`.
fn decode_value(f: &Field, valid: Range) -> String {
    let inner = if f.is_array() {
        let elem = decode_scalar(f.elem());
        format!("{{ let n = r.array_len(flexible)?; match n {{ None => None, Some(n) => {{ let mut v = r.alloc_vec(n)?; for _ in 0..n {{ v.push({elem}); }} Some(v) }} }} }}")
    } else {
        match f.elem() {
            "string" => "r.nullable_string(flexible)?".into(),
            "bytes" => "r.nullable_bytes(flexible)?".into(),
            "records" => "r.nullable_records(flexible)?".into(),
            t if primitive(t).is_some() => format!("Some({})", decode_scalar(t)),
            t => format!("if {nullable} {{ if r.i8()? < 0 {{ None }} else {{ Some({t}::decode(r, version)?) }} }} else {{ Some({t}::decode(r, version)?) }}", nullable = if f.is_nullable() { f.nullable.map(|n| n.cond(valid)).unwrap_or_default() } else { "false".into() }),
        }
    };
    if f.is_nullable() {
        let nullable = f.nullable.map(|r| r.cond(valid)).unwrap_or_else(|| "false".into());
        format!("{{ let x = {inner}; if x.is_none() && !({nullable}) {{ return Err(r.invalid(\"null in a non-nullable version: {}\")); }} x }}", f.name)
    } else {
        format!("({inner}).ok_or_else(|| r.invalid(\"null in a non-nullable field: {}\"))?", f.name)
    }
}

fn random_scalar(ty: &str) -> String {
    match ty {
        "bool" | "i8" | "i16" | "i32" | "i64" | "u16" | "u32" | "f64" | "uuid" | "string" | "bytes" | "records" => {
            format!("rng.{ty}()")
        }
        t => format!("{t}::random(rng, version)"),
    }
}

fn decode_scalar(ty: &str) -> String {
    match ty {
        "bool" | "i8" | "i16" | "i32" | "i64" | "u16" | "u32" | "f64" | "uuid" => format!("r.{ty}()?"),
        "string" => "r.string(flexible)?".into(),
        "bytes" => "r.bytes(flexible)?".into(),
        "records" => "r.nullable_records(flexible)?.unwrap_or_default()".into(),
        t => format!("{t}::decode(r, version)?"),
    }
}
