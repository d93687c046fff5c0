//! Connecting with TLS and SASL (issue 16), configured the way Kafka's clients are: a
//! client properties file (`--command-config`) with `security.protocol`,
//! `ssl.truststore.*`, `ssl.keystore.*` (PEM), `ssl.endpoint.identification.algorithm`,
//! `sasl.mechanism` and `sasl.jaas.config`.
//!
//! [`Security::open`] gives a byte stream that has done its TLS handshake and SASL
//! authentication, so the rest of the client (and `strom bench`, which pipelines raw
//! frames) is the same over every security protocol.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use strom_protocol::{SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// A connection's byte stream: plain TCP or TLS over TCP.
#[allow(clippy::large_enum_variant)]
pub enum Stream {
    /// PLAINTEXT and SASL_PLAINTEXT.
    Plain(TcpStream),
    /// SSL and SASL_SSL.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// SASL credentials (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
#[derive(Clone)]
pub struct Sasl {
    /// `sasl.mechanism`.
    pub mechanism: String,
    /// The user name.
    pub username: String,
    /// The password (never printed: `Debug` hides it).
    pub password: String,
}

impl std::fmt::Debug for Sasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sasl").field("mechanism", &self.mechanism).field("username", &self.username).finish()
    }
}

/// How to connect: TLS (with its configuration) and SASL, or neither.
#[derive(Clone, Default)]
pub struct Security {
    /// The TLS client configuration for SSL and SASL_SSL.
    pub tls: Option<Arc<ClientConfig>>,
    /// SASL credentials for SASL_PLAINTEXT and SASL_SSL.
    pub sasl: Option<Sasl>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security").field("tls", &self.tls.is_some()).field("sasl", &self.sasl).finish()
    }
}

/// Where Debian (and most distributions) keep the system's CA bundle, used when a TLS
/// configuration names no truststore (the Java client would use the JVM's).
const SYSTEM_CA_BUNDLES: &[&str] =
    &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

impl Security {
    /// PLAINTEXT.
    pub fn plaintext() -> Security {
        Security::default()
    }

    /// The security protocol, as Kafka names it.
    pub fn protocol(&self) -> &'static str {
        match (self.sasl.is_some(), self.tls.is_some()) {
            (false, false) => "PLAINTEXT",
            (false, true) => "SSL",
            (true, false) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        }
    }

    /// From Kafka client properties (`key=value` lines, `#` comments); keys that are not
    /// about security (producer or consumer settings) are left alone.
    pub fn from_properties(text: &str) -> anyhow::Result<Security> {
        let props: Props = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
            .filter_map(|l| {
                let (k, v) = l.split_once(['=', ':'])?;
                Some((k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        Security::from_map(&props)
    }

    /// From Kafka client settings already split into keys and values (inline PEM values
    /// may hold newlines); what [`Security::from_properties`] reads.
    pub fn from_map(props: &std::collections::BTreeMap<String, String>) -> anyhow::Result<Security> {
        let props: &Props = props;
        let get = |k: &str| prop(props, k);
        let protocol = get("security.protocol").to_ascii_uppercase();
        let (tls, sasl) = match protocol.as_str() {
            "" | "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => bail!("security.protocol={other} (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)"),
        };
        // Kafka's default, https, checks the broker's name against its certificate; an
        // explicitly empty value checks only that the certificate chains to the truststore.
        let check_name = !props.contains_key("ssl.endpoint.identification.algorithm")
            || get("ssl.endpoint.identification.algorithm").eq_ignore_ascii_case("https");
        let tls = if tls { Some(Arc::new(tls_config(props, check_name)?)) } else { None };
        let sasl = if sasl { Some(sasl_config(props)?) } else { None };
        Ok(Security { tls, sasl })
    }

    /// Opens a connection to `addr` (`host:port`) and, as configured, does its TLS
    /// handshake and SASL authentication, all within `timeout`.
    pub async fn open(&self, addr: &str, timeout: Duration) -> anyhow::Result<Stream> {
        tokio::time::timeout(timeout, self.open_unbounded(addr))
            .await
            .map_err(|_| anyhow!("connecting to {addr}: timed out after {timeout:?}"))?
    }

    async fn open_unbounded(&self, addr: &str) -> anyhow::Result<Stream> {
        let tcp = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        let _ = tcp.set_nodelay(true);
        let mut stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some(config) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
                let name = ServerName::try_from(host.to_string()).map_err(|e| anyhow!("server name {host:?}: {e}"))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .with_context(|| format!("TLS handshake with {addr}"))?;
                Stream::Tls(Box::new(tls))
            }
        };
        if let Some(sasl) = &self.sasl {
            authenticate(&mut stream, sasl).await.with_context(|| format!("SASL authentication with {addr}"))?;
        }
        Ok(stream)
    }
}

/// Client properties by key.
type Props = std::collections::BTreeMap<String, String>;

fn prop<'a>(props: &'a Props, key: &str) -> &'a str {
    props.get(key).map(String::as_str).unwrap_or("")
}

/// SaslHandshake v1 then SaslAuthenticate v1 (KIP-152).
async fn authenticate(stream: &mut Stream, sasl: &Sasl) -> anyhow::Result<()> {
    let handshake = SaslHandshakeRequest { mechanism: sasl.mechanism.clone(), ..Default::default() };
    let frame = crate::encode_request(&handshake, 1, 1, "strom-cli")?.concat();
    stream.write_all(&frame).await?;
    let resp: SaslHandshakeResponse = crate::decode_response(crate::read_frame(stream).await?, 1, 1)?;
    if resp.error_code != 0 {
        bail!("SaslHandshake: {} (the broker offers {:?})", crate::error_name(resp.error_code), resp.mechanisms);
    }
    match sasl.mechanism.as_str() {
        "PLAIN" => {
            let token = format!("\0{}\0{}", sasl.username, sasl.password).into_bytes();
            sasl_authenticate(stream, token, 2).await?;
        }
        m => {
            let Some(sha512) = scram_mechanism(m) else {
                bail!("sasl.mechanism={m} is not supported by this client (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 are)");
            };
            let scram = ScramClient::new(sha512, &sasl.username, &sasl.password);
            let server_first = sasl_authenticate(stream, scram.client_first().into_bytes(), 2).await?;
            let (client_final, expected) = scram.client_final(&server_first)?;
            let server_final = sasl_authenticate(stream, client_final.into_bytes(), 3).await?;
            if server_final != expected.as_bytes() {
                bail!("the broker's SCRAM server signature does not verify (not the broker holding the credential)");
            }
        }
    }
    Ok(())
}

/// One SaslAuthenticate v1 round trip: the broker's token.
async fn sasl_authenticate(stream: &mut Stream, token: Vec<u8>, correlation_id: i32) -> anyhow::Result<bytes::Bytes> {
    let auth = SaslAuthenticateRequest { auth_bytes: token.into(), ..Default::default() };
    let frame = crate::encode_request(&auth, 1, correlation_id, "strom-cli")?.concat();
    stream.write_all(&frame).await?;
    let resp: SaslAuthenticateResponse = crate::decode_response(crate::read_frame(stream).await?, 1, correlation_id)?;
    crate::check(resp.error_code, "SaslAuthenticate", resp.error_message.as_deref())?;
    Ok(resp.auth_bytes)
}

/// `Some(true)` for SCRAM-SHA-512, `Some(false)` for SCRAM-SHA-256.
fn scram_mechanism(name: &str) -> Option<bool> {
    match name {
        "SCRAM-SHA-256" => Some(false),
        "SCRAM-SHA-512" => Some(true),
        _ => None,
    }
}

/// The client side of a SCRAM exchange (RFC 5802, without channel binding).
pub struct ScramClient {
    sha512: bool,
    user: String,
    password: String,
    nonce: String,
}

impl ScramClient {
    /// A client for `user` with a fresh nonce; `sha512` picks SCRAM-SHA-512 over -256.
    pub fn new(sha512: bool, user: &str, password: &str) -> ScramClient {
        use base64::Engine;
        let mut bytes = [0u8; 18];
        let _ = getrandom::fill(&mut bytes);
        let nonce = base64::engine::general_purpose::STANDARD.encode(bytes);
        ScramClient { sha512, user: user.to_string(), password: password.to_string(), nonce }
    }

    /// The client-first message.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.first_bare())
    }

    fn first_bare(&self) -> String {
        format!("n={},r={}", self.user.replace('=', "=3D").replace(',', "=2C"), self.nonce)
    }

    /// The client-final message for `server_first` and the server-final message a broker
    /// holding the credential must answer with.
    pub fn client_final(&self, server_first: &[u8]) -> anyhow::Result<(String, String)> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let text = std::str::from_utf8(server_first).context("server-first message is not UTF-8")?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attr in text.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(b64.decode(v).context("server-first salt")?),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            bail!("malformed server-first message {text:?}");
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            bail!("the server's nonce does not extend ours");
        }
        // Kafka's bounds: fewer iterations would make the password cheap to guess from a
        // recorded exchange, far more would stall this client (a hostile server).
        if !(4096..=16384).contains(&iterations) {
            bail!("the server asks for {iterations} SCRAM iterations (Kafka's range is 4096..=16384)");
        }
        let (hmac_alg, pbkdf2_alg, digest_alg, len) = if self.sha512 {
            (ring::hmac::HMAC_SHA512, ring::pbkdf2::PBKDF2_HMAC_SHA512, &ring::digest::SHA512, 64)
        } else {
            (ring::hmac::HMAC_SHA256, ring::pbkdf2::PBKDF2_HMAC_SHA256, &ring::digest::SHA256, 32)
        };
        let rounds = std::num::NonZeroU32::new(iterations).context("zero iterations")?;
        let mut salted = vec![0u8; len];
        ring::pbkdf2::derive(pbkdf2_alg, rounds, &salt, self.password.as_bytes(), &mut salted);
        let hmac = |key: &[u8], data: &[u8]| ring::hmac::sign(&ring::hmac::Key::new(hmac_alg, key), data);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = ring::digest::digest(digest_alg, client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.first_bare());
        let signature = hmac(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.as_ref().iter().zip(signature.as_ref()).map(|(a, b)| a ^ b).collect();
        let server_key = hmac(&salted, b"Server Key");
        let server_signature = hmac(server_key.as_ref(), auth_message.as_bytes());
        Ok((format!("{without_proof},p={}", b64.encode(proof)), format!("v={}", b64.encode(server_signature.as_ref()))))
    }
}

fn sasl_config(props: &Props) -> anyhow::Result<Sasl> {
    let get = |k: &str| prop(props, k);
    let mechanism = get("sasl.mechanism").to_ascii_uppercase();
    let mechanism = if mechanism.is_empty() { "GSSAPI".to_string() } else { mechanism };
    if mechanism != "PLAIN" && scram_mechanism(&mechanism).is_none() {
        bail!("sasl.mechanism={mechanism}: this client supports PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512");
    }
    // librdkafka's sasl.username / sasl.password, or the Java client's JAAS line.
    let (mut username, mut password) = (get("sasl.username").to_string(), get("sasl.password").to_string());
    let jaas = get("sasl.jaas.config");
    if !jaas.is_empty() {
        for (k, v) in jaas_options(jaas) {
            match k.as_str() {
                "username" => username = v,
                "password" => password = v,
                _ => {}
            }
        }
    }
    if username.is_empty() {
        bail!("SASL needs a user: sasl.jaas.config=<LoginModule> required username=\"…\" password=\"…\";");
    }
    Ok(Sasl { mechanism, username, password })
}

/// The `key="value"` options of a JAAS line (`<module> required k="v" …;`).
fn jaas_options(jaas: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = jaas.trim().trim_end_matches(';');
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].split_whitespace().last().unwrap_or("").to_string();
        let after = rest[eq + 1..].trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (q[..end].to_string(), &q[end + 1..]),
                None => (q.to_string(), ""),
            }
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.push((key, value));
        rest = next;
    }
    out
}

fn read_pem(props: &Props, location: &str, inline: &str) -> anyhow::Result<Option<String>> {
    let get = |k: &str| prop(props, k);
    match (get(location), get(inline)) {
        ("", "") => Ok(None),
        (path, "") => Ok(Some(std::fs::read_to_string(path).with_context(|| format!("{location}={path}"))?)),
        ("", text) => Ok(Some(text.replace("\\n", "\n"))),
        _ => bail!("give {location} or {inline}, not both"),
    }
}

fn tls_config(props: &Props, check_name: bool) -> anyhow::Result<ClientConfig> {
    let get = |k: &str| prop(props, k);
    for key in ["ssl.truststore.type", "ssl.keystore.type"] {
        let t = get(key);
        if !t.is_empty() && !t.eq_ignore_ascii_case("PEM") {
            bail!("{key}={t}: this client reads PEM files");
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let trust = match read_pem(props, "ssl.truststore.location", "ssl.truststore.certificates")? {
        Some(t) => t,
        None => {
            let bundle = SYSTEM_CA_BUNDLES.iter().find(|p| std::path::Path::new(p).exists()).ok_or_else(|| {
                anyhow!("no ssl.truststore.location and no system CA bundle to check the broker's certificate with")
            })?;
            std::fs::read_to_string(bundle).with_context(|| format!("reading {bundle}"))?
        }
    };
    for cert in CertificateDer::pem_slice_iter(trust.as_bytes()) {
        // A system bundle may hold certificates webpki cannot use; skip those.
        let _ = roots.add(cert.context("the truststore is not valid PEM")?);
    }
    if roots.is_empty() {
        bail!("the truststore holds no usable certificate");
    }
    let roots = Arc::new(roots);
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = if check_name {
        builder.with_root_certificates(roots)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly { roots, provider }))
    };
    let key_pem = match read_pem(props, "ssl.keystore.location", "ssl.keystore.key")? {
        Some(k) => {
            let chain = get("ssl.keystore.certificate.chain").replace("\\n", "\n");
            Some(format!("{k}\n{chain}"))
        }
        None => None,
    };
    Ok(match key_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).context("the keystore has no private key")?;
            let chain = CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
            builder.with_client_auth_cert(chain, key).context("the keystore's key and certificate")?
        }
    })
}

/// Checks that the broker's certificate chains to the truststore, not its name
/// (`ssl.endpoint.identification.algorithm=` empty).
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_lines_give_their_options() {
        let o = jaas_options(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="a b=c";"#,
        );
        assert_eq!(o, vec![("username".into(), "alice".into()), ("password".into(), "a b=c".into())]);
    }

    #[test]
    fn properties_choose_the_protocol() {
        let s = Security::from_properties(
            "# admin\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=bob\nsasl.password=pw\nacks=all\n",
        )
        .unwrap();
        assert_eq!(s.protocol(), "SASL_PLAINTEXT");
        assert_eq!(s.sasl.as_ref().map(|s| s.username.as_str()), Some("bob"));
        assert!(format!("{s:?}").contains("bob") && !format!("{s:?}").contains("pw"), "Debug hides the password");
        assert!(Security::from_properties("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=GSSAPI\n").is_err());
        assert!(Security::from_properties("security.protocol=SSL\nssl.truststore.type=JKS\n").is_err());
        assert_eq!(Security::from_properties("").unwrap().protocol(), "PLAINTEXT");
    }
}
