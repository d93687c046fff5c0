//! A client certificate's subject as the principal mapping rules see it: the way Java's
//! `X500Principal.getName()` writes it (RFC 2253), so rules written for Kafka match.
//! Parses outside bytes (the peer's certificate), so it is fuzzed (`tls_accept`).

/// A certificate's subject as Java's `X500Principal.getName()` (RFC 2253) writes it.
pub fn subject_rfc2253(der: &[u8]) -> Result<String, String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("client certificate does not parse: {e}"))?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        let mut avas = Vec::new();
        for ava in rdn.iter() {
            let oid = ava.attr_type().to_id_string();
            let keyword = match oid.as_str() {
                "2.5.4.3" => Some("CN"),
                "2.5.4.6" => Some("C"),
                "2.5.4.7" => Some("L"),
                "2.5.4.8" => Some("ST"),
                "2.5.4.10" => Some("O"),
                "2.5.4.11" => Some("OU"),
                "2.5.4.9" => Some("STREET"),
                "0.9.2342.19200300.100.1.25" => Some("DC"),
                "0.9.2342.19200300.100.1.1" => Some("UID"),
                _ => None,
            };
            match (keyword, ava.as_str()) {
                (Some(k), Ok(v)) => avas.push(format!("{k}={}", escape_rfc2253(v))),
                // Java writes other attribute types by OID, their value as hex DER.
                _ => {
                    let raw = ava.attr_value();
                    let mut der = Vec::new();
                    der.push(raw.header.tag().0 as u8);
                    let data = raw.data;
                    encode_der_len(&mut der, data.len());
                    der.extend_from_slice(data);
                    let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
                    avas.push(format!("{oid}=#{hex}"));
                }
            }
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

fn encode_der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

/// An attribute value escaped as Java's `X500Principal.getName()` escapes it: the
/// characters `,=+<>#;"\` anywhere, NUL as `\00`, and every leading and trailing space.
pub(crate) fn escape_rfc2253(v: &str) -> String {
    let chars: Vec<char> = v.chars().collect();
    let lead = chars.iter().take_while(|c| **c == ' ').count();
    let trail = chars.iter().rev().take_while(|c| **c == ' ').count().min(chars.len() - lead);
    let mut out = String::with_capacity(v.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '\0' => out.push_str("\\00"),
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i < lead || i >= chars.len() - trail => out.push_str("\\ "),
            _ => out.push(c),
        }
    }
    out
}
