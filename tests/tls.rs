//! TLS on SSL and SASL_SSL listeners (issue 16), with certificates made by rcgen and
//! Strom's own client configured from Kafka client properties: server authentication,
//! mTLS with principal mapping, certificate reload without a restart, a stalled handshake,
//! and SASL/PLAIN over TLS. Real clients (confluent-kafka, kafka-python, aiokafka,
//! kafkajs, kcat) run the compat scenarios `security-ssl` and `security-sasl-ssl`.

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use strom_client::{Client, Security};
use strom_protocol::{MetadataRequest, MetadataResponse};
use tokio::io::AsyncReadExt;

/// A CA that signs broker and client certificates.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// A key and certificate, PEM, for `dn` (`(type, value)` in DER order), valid for
    /// localhost and 127.0.0.1.
    fn issue(&self, dn: &[(DnType, &str)]) -> String {
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        // Not the default subject rcgen starts with (its CN would stay first).
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (t, v) in dn {
            params.distinguished_name.push(t.clone(), *v);
        }
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        format!("{}{}", key.serialize_pem(), cert.pem())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Client security from Kafka client properties.
fn props(lines: &[(&str, &str)]) -> Security {
    let text: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    Security::from_properties(&text).expect("client properties")
}

async fn metadata(addr: &str, security: &Security) -> anyhow::Result<MetadataResponse> {
    let mut c = Client::connect_with(addr, Duration::from_secs(10), security).await?;
    c.call_at(12, &MetadataRequest::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssl_listener_serves_clients_that_trust_its_ca_and_nobody_else() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("strom test ca");
    let other = Ca::new("another ca");
    let keystore = write(dir.path(), "broker.pem", &ca.issue(&[(DnType::CommonName, "localhost")]));
    let trusted = write(dir.path(), "ca.pem", &ca.pem);
    let untrusted = write(dir.path(), "other.pem", &other.pem);
    let b = common::start(
        &dir.path().join("data"),
        &[("listeners", "SSL://127.0.0.1:0"), ("ssl.keystore.type", "PEM"), ("ssl.keystore.location", &keystore)],
    )
    .await;
    let port = b.addr.rsplit_once(':').unwrap().1.to_string();

    // Trusting the CA, by IP and by name (both in the certificate): served, and the
    // broker advertises its SSL listener.
    let tls = props(&[("security.protocol", "SSL"), ("ssl.truststore.location", &trusted)]);
    let md = metadata(&b.addr, &tls).await.expect("metadata over TLS");
    assert_eq!(md.brokers.len(), 1);
    metadata(&format!("localhost:{port}"), &tls).await.expect("by host name");
    // TLS 1.2 only, as older clients: served too.
    let tls12 = Security {
        tls: Some(std::sync::Arc::new(
            rustls::ClientConfig::builder_with_provider(strom::tls::provider())
                .with_protocol_versions(&[&rustls::version::TLS12])
                .unwrap()
                .with_root_certificates({
                    let mut roots = rustls::RootCertStore::empty();
                    use rustls::pki_types::pem::PemObject;
                    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap()).unwrap();
                    roots
                })
                .with_no_client_auth(),
        )),
        sasl: None,
    };
    metadata(&b.addr, &tls12).await.expect("TLS 1.2");

    // A client trusting another CA refuses the broker; one that checks only the chain
    // (ssl.endpoint.identification.algorithm= empty) still needs the right CA.
    let wrong = props(&[("security.protocol", "SSL"), ("ssl.truststore.location", &untrusted)]);
    let err = metadata(&b.addr, &wrong).await.unwrap_err();
    assert!(format!("{err:#}").contains("TLS handshake"), "{err:#}");
    let no_name_check = props(&[
        ("security.protocol", "SSL"),
        ("ssl.truststore.location", &trusted),
        ("ssl.endpoint.identification.algorithm", ""),
    ]);
    metadata(&b.addr, &no_name_check).await.expect("chain-only check");
    let no_name_wrong_ca = props(&[
        ("security.protocol", "SSL"),
        ("ssl.truststore.location", &untrusted),
        ("ssl.endpoint.identification.algorithm", ""),
    ]);
    assert!(metadata(&b.addr, &no_name_wrong_ca).await.is_err());

    // A plaintext client gets no Kafka answer from a TLS port.
    assert!(metadata(&b.addr, &Security::plaintext()).await.is_err());
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_admits_only_trusted_certificates_that_a_mapping_rule_names() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("strom test ca");
    let rogue = Ca::new("rogue ca");
    let keystore = write(dir.path(), "broker.pem", &ca.issue(&[(DnType::CommonName, "localhost")]));
    let truststore = write(dir.path(), "ca.pem", &ca.pem);
    let person = |ca: &Ca, ou: &str, cn: &str| {
        ca.issue(&[(DnType::OrganizationName, "Strom"), (DnType::OrganizationalUnitName, ou), (DnType::CommonName, cn)])
    };
    let alice = write(dir.path(), "alice.pem", &person(&ca, "eng", "alice"));
    let carol = write(dir.path(), "carol.pem", &person(&ca, "ops", "carol"));
    let mallory = write(dir.path(), "mallory.pem", &person(&rogue, "eng", "mallory"));
    // The principal the broker derives for alice (what ACLs will see).
    let listener = strom::config::ssl::SslListener {
        keystore: vec![strom::config::ssl::Pem::File(keystore.clone().into())],
        truststore: Some(strom::config::ssl::Pem::File(truststore.clone().into())),
        client_auth: strom::config::ssl::ClientAuth::Required,
        principal_rules: strom::config::ssl::parse_rules("RULE:^CN=([a-z]+),OU=eng,O=Strom$/$1/U").unwrap(),
        tls12: true,
        tls13: true,
    };
    let der = rustls::pki_types::pem::PemObject::pem_slice_iter(std::fs::read(&alice).unwrap().as_slice())
        .next()
        .map(|c: Result<rustls::pki_types::CertificateDer<'static>, _>| c.unwrap())
        .unwrap();
    let dn = strom::tls::subject_rfc2253(der.as_ref()).unwrap();
    assert_eq!(dn, "CN=alice,OU=eng,O=Strom");
    assert_eq!(strom::config::ssl::map_principal(&listener.principal_rules, &dn).as_deref(), Some("ALICE"));
    let b = common::start(
        &dir.path().join("data"),
        &[
            ("listeners", "SSL://127.0.0.1:0"),
            ("ssl.keystore.location", &keystore),
            ("ssl.truststore.location", &truststore),
            ("ssl.client.auth", "required"),
            // Only engineers: no DEFAULT, so other subjects match no rule.
            ("ssl.principal.mapping.rules", "RULE:^CN=([a-z]+),OU=eng,O=Strom$/$1/U"),
        ],
    )
    .await;
    let client = |keystore: Option<&str>| {
        let mut p = vec![("security.protocol", "SSL"), ("ssl.truststore.location", truststore.as_str())];
        if let Some(k) = keystore {
            p.push(("ssl.keystore.location", k));
        }
        props(&p)
    };
    let failures = strom::metrics::TLS_HANDSHAKE_FAILURES.load(Ordering::Relaxed);
    metadata(&b.addr, &client(Some(&alice))).await.expect("alice: trusted certificate, mapped to ALICE");
    // No certificate, a certificate of another CA, a trusted one no rule maps: refused.
    for (who, keystore) in [("no certificate", None), ("rogue CA", Some(mallory.as_str())), ("ops", Some(&carol))] {
        assert!(metadata(&b.addr, &client(keystore)).await.is_err(), "{who} was served");
    }
    assert!(strom::metrics::TLS_HANDSHAKE_FAILURES.load(Ordering::Relaxed) >= failures + 3);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_a_restart_and_a_broken_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let old_ca = Ca::new("old ca");
    let new_ca = Ca::new("new ca");
    let keystore = write(dir.path(), "broker.pem", &old_ca.issue(&[(DnType::CommonName, "localhost")]));
    let trusts_new = props(&[
        ("security.protocol", "SSL"),
        ("ssl.truststore.location", &write(dir.path(), "new-ca.pem", &new_ca.pem)),
    ]);
    let b = common::start(
        &dir.path().join("data"),
        &[
            ("listeners", "SSL://127.0.0.1:0"),
            ("ssl.keystore.location", &keystore),
            ("strom.ssl.reload.interval.ms", "100"),
        ],
    )
    .await;
    assert!(metadata(&b.addr, &trusts_new).await.is_err(), "served by the old certificate");

    // The renewed certificate is written in place: new connections get it.
    let reloads = strom::metrics::TLS_RELOADS.load(Ordering::Relaxed);
    write(dir.path(), "broker.pem", &new_ca.issue(&[(DnType::CommonName, "localhost")]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while metadata(&b.addr, &trusts_new).await.is_err() {
        assert!(Instant::now() < deadline, "the renewed certificate was not served within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(strom::metrics::TLS_RELOADS.load(Ordering::Relaxed) > reloads);

    // A half-written file is not loaded: the broker keeps serving the last good one.
    let failures = strom::metrics::TLS_RELOAD_FAILURES.load(Ordering::Relaxed);
    write(dir.path(), "broker.pem", "-----BEGIN CERTIFICATE-----\ngarbage");
    let deadline = Instant::now() + Duration::from_secs(20);
    while strom::metrics::TLS_RELOAD_FAILURES.load(Ordering::Relaxed) == failures {
        assert!(Instant::now() < deadline, "the broken file was not noticed within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    metadata(&b.addr, &trusts_new).await.expect("still served with the last good certificate");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_is_closed_and_sasl_ssl_logs_in_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("strom test ca");
    let keystore = write(dir.path(), "broker.pem", &ca.issue(&[(DnType::CommonName, "localhost")]));
    let truststore = write(dir.path(), "ca.pem", &ca.pem);
    let b = common::start(
        &dir.path().join("data"),
        &[
            ("listeners", "SASL_SSL://127.0.0.1:0"),
            ("ssl.keystore.location", &keystore),
            ("sasl.enabled.mechanisms", "PLAIN"),
            (
                "listener.name.sasl_ssl.plain.sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\";",
            ),
            ("strom.request.read.timeout.ms", "500"),
        ],
    )
    .await;
    let login = |password: &str| {
        props(&[
            ("security.protocol", "SASL_SSL"),
            ("ssl.truststore.location", &truststore),
            ("sasl.mechanism", "PLAIN"),
            (
                "sasl.jaas.config",
                &format!(
                    "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" \
                     password=\"{password}\";"
                ),
            ),
        ])
    };
    metadata(&b.addr, &login("alice-secret")).await.expect("alice logs in over TLS");
    let err = metadata(&b.addr, &login("wrong")).await.unwrap_err();
    assert!(format!("{err:#}").contains("SASL_AUTHENTICATION_FAILED"), "{err:#}");

    // A client that connects and never starts its handshake is closed once
    // strom.request.read.timeout.ms has passed (it holds nothing until then).
    let failures = strom::metrics::TLS_HANDSHAKE_FAILURES.load(Ordering::Relaxed);
    let mut silent = tokio::net::TcpStream::connect(&b.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut buf))
        .await
        .expect("closed within 20 s")
        .unwrap_or(0);
    assert_eq!(n, 0, "the broker sent something to a client that never said hello");
    assert!(strom::metrics::TLS_HANDSHAKE_FAILURES.load(Ordering::Relaxed) > failures);
    b.stop().await;
}
