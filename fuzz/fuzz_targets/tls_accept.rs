#![no_main]
//! The TLS entry points of SSL and SASL_SSL listeners (issue 16), on outside bytes:
//! - a rustls server connection (ring provider, TLS 1.2 and 1.3, client certificates
//!   requested, as Strom's listeners build it) fed the input as the client's records;
//! - the client certificate's subject as the broker writes it for the mapping rules
//!   (`src/tls/subject.rs`, included as it is);
//! - `ssl.principal.mapping.rules` parsing and mapping (`src/config/ssl.rs`).
//! The first input byte picks the entry point. None may panic.

use std::io::Read;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[allow(dead_code)]
#[path = "../../src/tls/subject.rs"]
mod subject;

#[allow(dead_code)]
#[path = "../../src/config/ssl.rs"]
mod ssl;

/// A throwaway key and certificate made for this target (never used elsewhere).
const KEYSTORE: &str = include_str!("../tls-fuzz-keystore.pem");

fn server_config() -> Arc<rustls::ServerConfig> {
    static CONFIG: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let key = PrivateKeyDer::from_pem_slice(KEYSTORE.as_bytes()).expect("key");
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(KEYSTORE.as_bytes()).map(|c| c.expect("cert")).collect();
            let mut roots = rustls::RootCertStore::empty();
            roots.add(chain[0].clone()).expect("root");
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .expect("verifier");
            let config = rustls::ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .expect("versions")
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)
                .expect("config");
            Arc::new(config)
        })
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 3 {
        0 => {
            let Ok(mut conn) = rustls::ServerConnection::new(server_config()) else { return };
            // Fed in uneven pieces, as a socket delivers them.
            for piece in rest.chunks(97) {
                let mut cursor: &[u8] = piece;
                while !cursor.is_empty() {
                    match conn.read_tls(&mut cursor) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    if conn.process_new_packets().is_err() {
                        return;
                    }
                    let mut plain = [0u8; 4096];
                    let _ = conn.reader().read(&mut plain);
                    let mut out = Vec::new();
                    let _ = conn.write_tls(&mut out);
                }
            }
            let _ = conn.peer_certificates();
        }
        1 => {
            if let Ok(dn) = subject::subject_rfc2253(rest) {
                let rules = ssl::parse_rules("RULE:^CN=(.*?),OU=(.*?)(,.*)?$/$1@$2/L,DEFAULT").expect("rules");
                let _ = ssl::map_principal(&rules, &dn);
            }
        }
        _ => {
            let text = String::from_utf8_lossy(rest);
            let (rules, dn) = text.split_once('\n').unwrap_or((&text, "CN=alice,OU=eng,O=Strom"));
            if let Ok(rules) = ssl::parse_rules(rules) {
                let _ = ssl::map_principal(&rules, dn);
            }
        }
    }
});
