//! TLS on SSL and SASL_SSL listeners (issue 16), with rustls: TLS 1.2 and 1.3 only,
//! the ring crypto provider, PEM keys and certificates.
//!
//! Each TLS listener keeps its current `ServerConfig` behind a lock; new connections take
//! the one current when they arrive. The key, chain and truststore files are re-read every
//! `strom.ssl.reload.interval.ms` and a change builds a new configuration, so a renewed
//! certificate is served without a restart (connections already open keep theirs). A file
//! that is missing or does not parse leaves the previous configuration in place and is
//! logged, so a half-written certificate never takes a listener down.
//!
//! The principal of an SSL connection is the client certificate's subject, written as
//! Java's `X500Principal.getName()` writes it (RFC 2253: the last RDN first, `CN=…,OU=…`),
//! mapped by `ssl.principal.mapping.rules`; a connection without a client certificate
//! (`ssl.client.auth=none|requested`) is `User:ANONYMOUS`, as in Kafka.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::{bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::RootCertStore;

use crate::config::ssl::{map_principal, ClientAuth, Pem, SslListener};

// Without crate dependencies, so the fuzz target `tls_accept` includes it as it is.
mod subject;
pub use subject::subject_rfc2253;

/// The crypto provider every TLS configuration uses (ring: no C toolchain beyond cc).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// One TLS listener's current configuration and what it was built from.
pub struct TlsListener {
    /// The listener's name (for logs).
    pub name: String,
    settings: SslListener,
    current: RwLock<Arc<ServerConfig>>,
    /// The PEM texts `current` was built from (keystore parts, then the truststore).
    loaded: Mutex<Vec<String>>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener").field("name", &self.name).finish_non_exhaustive()
    }
}

/// What a TLS connection's client certificate says about who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerIdentity {
    /// No client certificate: `User:ANONYMOUS`.
    Anonymous,
    /// The mapped principal name (`User:<name>`).
    User(String),
}

impl TlsListener {
    /// Loads the listener's key, chain and truststore; fails on anything unusable.
    pub fn load(name: &str, settings: &SslListener) -> anyhow::Result<TlsListener> {
        let texts = read_texts(settings)?;
        let config = build(settings, &texts).with_context(|| format!("listener {name}"))?;
        Ok(TlsListener {
            name: name.to_string(),
            settings: settings.clone(),
            current: RwLock::new(Arc::new(config)),
            loaded: Mutex::new(texts),
        })
    }

    /// The acceptor for a new connection (the configuration current now).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self.current.read().unwrap_or_else(|p| p.into_inner()).clone();
        tokio_rustls::TlsAcceptor::from(config)
    }

    /// Re-reads the files; builds and installs a new configuration when they changed.
    /// `Ok(true)`: reloaded; an error leaves the previous configuration serving.
    pub fn reload(&self) -> anyhow::Result<bool> {
        let texts = read_texts(&self.settings)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if *loaded == texts {
            return Ok(false);
        }
        let config = build(&self.settings, &texts)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        *loaded = texts;
        crate::metrics::TLS_RELOADS.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Who the peer of a completed handshake is, or why it may not connect (no mapping
    /// rule applies to its certificate's subject).
    pub fn identity(&self, conn: &rustls::ServerConnection) -> Result<PeerIdentity, String> {
        let Some(cert) = conn.peer_certificates().and_then(|c| c.first()) else {
            return Ok(PeerIdentity::Anonymous);
        };
        let dn = subject_rfc2253(cert.as_ref())?;
        map_principal(&self.settings.principal_rules, &dn)
            .map(PeerIdentity::User)
            .ok_or_else(|| format!("no ssl.principal.mapping.rules rule applies to {dn:?}"))
    }
}

/// The texts the configuration is built from: keystore parts, then the truststore (if any).
fn read_texts(s: &SslListener) -> anyhow::Result<Vec<String>> {
    let mut texts: Vec<String> = s.keystore.iter().map(Pem::read).collect::<anyhow::Result<_>>()?;
    if let Some(t) = &s.truststore {
        texts.push(t.read()?);
    }
    Ok(texts)
}

/// Builds a rustls server configuration from PEM texts (keystore parts, then truststore).
fn build(s: &SslListener, texts: &[String]) -> anyhow::Result<ServerConfig> {
    let keystore_parts = s.keystore.len().min(texts.len());
    let keystore = texts[..keystore_parts].join("\n");
    if keystore.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        bail!(
            "the private key is encrypted; Strom reads unencrypted PEM keys (decrypt it with `openssl pkcs8 -in \
             key.pem -out plain.pem` and protect the file's permissions instead)"
        );
    }
    let key = PrivateKeyDer::from_pem_slice(keystore.as_bytes())
        .context("the keystore has no private key (PKCS#8, PKCS#1 or SEC1 PEM)")?;
    let chain = CertificateDer::pem_slice_iter(keystore.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("the keystore's certificate chain is not valid PEM")?;
    if chain.is_empty() {
        bail!("the keystore has no certificate");
    }
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if s.tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if s.tls12 {
        versions.push(&rustls::version::TLS12);
    }
    let builder = ServerConfig::builder_with_provider(provider()).with_protocol_versions(&versions)?;
    let builder = match s.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Requested | ClientAuth::Required => {
            let trust = texts.get(keystore_parts).context("ssl.client.auth needs a truststore")?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(trust.as_bytes()) {
                roots.add(cert.context("the truststore is not valid PEM")?).context("a truststore certificate")?;
            }
            if roots.is_empty() {
                bail!("the truststore holds no certificate");
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier =
                if s.client_auth == ClientAuth::Requested { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build()?)
        }
    };
    builder.with_single_cert(chain, key).context("the private key does not match the certificate")
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::subject::escape_rfc2253;

    #[test]
    fn subjects_are_written_as_java_writes_them() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "SE");
        dn.push(rcgen::DnType::OrganizationName, "Strom, Inc");
        dn.push(rcgen::DnType::OrganizationalUnitName, "eng");
        dn.push(rcgen::DnType::CommonName, "alice");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(subject_rfc2253(cert.der()).unwrap(), r"CN=alice,OU=eng,O=Strom\, Inc,C=SE");
        assert!(subject_rfc2253(b"not a certificate").is_err());
        assert_eq!(escape_rfc2253("  #a+b=c\0 "), r"\ \ \#a\+b\=c\00\ ");
        assert_eq!(escape_rfc2253("   "), r"\ \ \ ");
    }
}
