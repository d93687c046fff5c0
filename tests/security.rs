//! Authentication on a SASL_PLAINTEXT listener (issue 16) over raw frames: what an
//! unauthenticated connection may send, the pre-authentication frame cap, PLAIN with
//! right and wrong credentials, SaslHandshake on a PLAINTEXT listener, and SCRAM with
//! credentials managed through Describe/AlterUserScramCredentials. Real clients
//! (confluent-kafka, kafka-python, aiokafka, kafkajs, kcat) run the compat scenario
//! `security`.

mod common;

use std::time::Duration;

use strom_client::Client;
use strom_protocol::alter_user_scram_credentials_request::{ScramCredentialDeletion, ScramCredentialUpsertion};
use strom_protocol::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse, MetadataRequest, MetadataResponse, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const JAAS: &str =
    "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\" user_bob=\"b\";";
const SASL_AUTHENTICATION_FAILED: i16 = 58;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const ILLEGAL_SASL_STATE: i16 = 34;
const RESOURCE_NOT_FOUND: i16 = 91;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const DUPLICATE_RESOURCE: i16 = 92;
const UNACCEPTABLE_CREDENTIAL: i16 = 93;

async fn sasl_broker(dir: &std::path::Path) -> common::Running {
    common::start(
        dir,
        &[
            ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
            ("listener.security.protocol.map", "SASL_PLAINTEXT:SASL_PLAINTEXT"),
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS),
        ],
    )
    .await
}

async fn handshake(c: &mut Client, mechanism: &str) -> SaslHandshakeResponse {
    c.call_at(1, &SaslHandshakeRequest { mechanism: mechanism.into(), ..Default::default() }).await.expect("handshake")
}

async fn authenticate(c: &mut Client, token: &[u8]) -> SaslAuthenticateResponse {
    let req = SaslAuthenticateRequest { auth_bytes: bytes::Bytes::copy_from_slice(token), ..Default::default() };
    c.call_at(2, &req).await.expect("authenticate")
}

/// Whether the broker closed `c`'s connection: the next request fails.
async fn closed(c: &mut Client) -> bool {
    tokio::time::timeout(Duration::from_secs(10), c.call_at::<_, MetadataResponse>(12, &MetadataRequest::default()))
        .await
        .expect("an answer or a close within 10 s")
        .is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_logs_in_the_right_user_and_closes_on_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let b = sasl_broker(dir.path()).await;

    // The right password: then the connection is served.
    let mut c = Client::connect(&b.addr, Duration::from_secs(10)).await.expect("ApiVersions is served before login");
    let h = handshake(&mut c, "PLAIN").await;
    assert_eq!((h.error_code, h.mechanisms.clone()), (0, vec!["PLAIN".to_string()]));
    let a = authenticate(&mut c, b"\0alice\0alice-secret").await;
    assert_eq!(a.error_code, 0, "{:?}", a.error_message);
    let md: MetadataResponse = c.call_at(12, &MetadataRequest::default()).await.expect("metadata after login");
    assert_eq!(md.brokers.len(), 1);
    // A second handshake on an authenticated connection is out of place.
    assert_eq!(handshake(&mut c, "PLAIN").await.error_code, ILLEGAL_SASL_STATE);

    // A wrong password, an unknown user, an authorization id of someone else: refused
    // with Kafka's one message, then the connection is closed.
    for token in [&b"\0alice\0wrong"[..], b"\0mallory\0alice-secret", b"bob\0alice\0alice-secret"] {
        let mut c = Client::connect(&b.addr, Duration::from_secs(10)).await.expect("connect");
        assert_eq!(handshake(&mut c, "PLAIN").await.error_code, 0);
        let a = authenticate(&mut c, token).await;
        assert_eq!(a.error_code, SASL_AUTHENTICATION_FAILED);
        assert_eq!(a.error_message.as_deref(), Some("Authentication failed: Invalid username or password"));
        assert!(closed(&mut c).await, "the connection stays open after a failed login");
    }

    // A mechanism that is not enabled is refused and the list offered.
    let mut c = Client::connect(&b.addr, Duration::from_secs(10)).await.expect("connect");
    let h = handshake(&mut c, "SCRAM-SHA-512").await;
    assert_eq!((h.error_code, h.mechanisms), (UNSUPPORTED_SASL_MECHANISM, vec!["PLAIN".to_string()]));

    // Anything but ApiVersions and the SASL exchange before login closes the connection.
    let mut c = Client::connect(&b.addr, Duration::from_secs(10)).await.expect("connect");
    assert!(closed(&mut c).await, "Metadata was served before login");
    // So does SaslAuthenticate before SaslHandshake.
    let mut c = Client::connect(&b.addr, Duration::from_secs(10)).await.expect("connect");
    let req = SaslAuthenticateRequest {
        auth_bytes: bytes::Bytes::from_static(b"\0alice\0alice-secret"),
        ..Default::default()
    };
    assert!(c.call_at::<_, SaslAuthenticateResponse>(2, &req).await.is_err());
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_before_login_are_capped_at_sasl_server_max_receive_size() {
    let dir = tempfile::tempdir().unwrap();
    let b = sasl_broker(dir.path()).await;
    // A 1 MiB frame announced before login: the broker closes without reading it.
    let mut s = TcpStream::connect(&b.addr).await.unwrap();
    s.write_all(&(1i32 << 20).to_be_bytes()).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "answered a 1 MiB pre-login frame: {n:?}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_listener_answers_the_sasl_apis_with_illegal_sasl_state() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]).await;
    let mut c = Client::connect(&b.addr, Duration::from_secs(10)).await.expect("connect");
    assert_eq!(handshake(&mut c, "PLAIN").await.error_code, ILLEGAL_SASL_STATE);
    assert_eq!(authenticate(&mut c, b"\0alice\0x").await.error_code, ILLEGAL_SASL_STATE);
    let _: MetadataResponse = c.call_at(12, &MetadataRequest::default()).await.expect("still served");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_handshake_v0_takes_a_bare_token_as_older_clients_send_it() {
    let dir = tempfile::tempdir().unwrap();
    let b = sasl_broker(dir.path()).await;
    for (password, accepted) in [("alice-secret", true), ("wrong", false)] {
        let mut s = TcpStream::connect(&b.addr).await.unwrap();
        let req = SaslHandshakeRequest { mechanism: "PLAIN".into(), ..Default::default() };
        for chunk in strom_client::encode_request(&req, 0, 1, "v0-client").unwrap() {
            s.write_all(&chunk).await.unwrap();
        }
        let frame = strom_client::read_frame(&mut s).await.unwrap();
        let resp: SaslHandshakeResponse = strom_client::decode_response(frame, 0, 1).unwrap();
        assert_eq!(resp.error_code, 0);
        // The token alone, size-prefixed: no request header.
        let token = format!("\0alice\0{password}");
        s.write_all(&(token.len() as i32).to_be_bytes()).await.unwrap();
        s.write_all(token.as_bytes()).await.unwrap();
        let mut answer = [0u8; 4];
        let got = tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut answer)).await.expect("in time");
        if accepted {
            got.expect("an empty token back");
            assert_eq!(answer, [0; 4]);
            // Then the connection is served.
            for chunk in strom_client::encode_request(&MetadataRequest::default(), 12, 2, "v0-client").unwrap() {
                s.write_all(&chunk).await.unwrap();
            }
            let frame = strom_client::read_frame(&mut s).await.unwrap();
            let md: MetadataResponse = strom_client::decode_response(frame, 12, 2).unwrap();
            assert_eq!(md.brokers.len(), 1);
        } else {
            assert!(got.is_err(), "a wrong password got an answer: {answer:?}");
        }
    }
    b.stop().await;
}

const ALICE_PLAIN: &[u8] = b"\0alice\0alice-secret";

/// A SASL_PLAINTEXT listener with PLAIN (alice, who administers) and SCRAM.
async fn scram_broker(dir: &std::path::Path) -> common::Running {
    common::start(
        dir,
        &[
            ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
            ("listener.security.protocol.map", "SASL_PLAINTEXT:SASL_PLAINTEXT"),
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS),
            ("super.users", "User:alice"),
        ],
    )
    .await
}

async fn as_alice(addr: &str) -> Client {
    let mut c = Client::connect(addr, Duration::from_secs(10)).await.expect("connect");
    assert_eq!(handshake(&mut c, "PLAIN").await.error_code, 0);
    assert_eq!(authenticate(&mut c, ALICE_PLAIN).await.error_code, 0);
    c
}

fn upsert(user: &str, mechanism: i8, password: &str, iterations: i32) -> ScramCredentialUpsertion {
    let m =
        strom::security::scram::Mechanism::from_code(mechanism).unwrap_or(strom::security::scram::Mechanism::Sha256);
    let salt = format!("salt-of-{user}").into_bytes();
    let salted = strom::security::scram::salted_password(m, password.as_bytes(), &salt, iterations.max(1) as u32);
    ScramCredentialUpsertion {
        name: user.into(),
        mechanism,
        iterations,
        salt: salt.into(),
        salted_password: salted.into(),
        ..Default::default()
    }
}

async fn alter(c: &mut Client, req: AlterUserScramCredentialsRequest) -> Vec<(String, i16)> {
    let r: AlterUserScramCredentialsResponse = c.call_at(0, &req).await.expect("alter");
    r.results.into_iter().map(|r| (r.user, r.error_code)).collect()
}

/// A SCRAM login over `Client`: the server-final message, or the error code.
async fn scram_login(addr: &str, sha512: bool, user: &str, password: &str) -> Result<Client, i16> {
    let mut c = Client::connect(addr, Duration::from_secs(10)).await.expect("connect");
    let mechanism = if sha512 { "SCRAM-SHA-512" } else { "SCRAM-SHA-256" };
    assert_eq!(handshake(&mut c, mechanism).await.error_code, 0);
    let scram = strom_client::security::ScramClient::new(sha512, user, password);
    let first = authenticate(&mut c, scram.client_first().as_bytes()).await;
    if first.error_code != 0 {
        return Err(first.error_code);
    }
    let (client_final, expected) = scram.client_final(&first.auth_bytes).expect("server-first");
    let last = authenticate(&mut c, client_final.as_bytes()).await;
    if last.error_code != 0 {
        return Err(last.error_code);
    }
    assert_eq!(&last.auth_bytes[..], expected.as_bytes(), "the server signature verifies");
    Ok(c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_credentials_are_managed_with_kip_554_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = scram_broker(dir.path()).await;
    let mut admin = as_alice(&b.addr).await;

    // Only super users may touch credentials (until ACLs): bob, logged in with PLAIN, may not.
    let mut bob_plain = Client::connect(&b.addr, Duration::from_secs(10)).await.unwrap();
    assert_eq!(handshake(&mut bob_plain, "PLAIN").await.error_code, 0);
    assert_eq!(authenticate(&mut bob_plain, b"\0bob\0b").await.error_code, 0);
    let req =
        AlterUserScramCredentialsRequest { upsertions: vec![upsert("alice", 2, "stolen", 4096)], ..Default::default() };
    assert_eq!(alter(&mut bob_plain, req).await, vec![("alice".to_string(), CLUSTER_AUTHORIZATION_FAILED)]);
    let d: DescribeUserScramCredentialsResponse =
        bob_plain.call_at(0, &DescribeUserScramCredentialsRequest::default()).await.unwrap();
    assert_eq!(d.error_code, CLUSTER_AUTHORIZATION_FAILED);

    // Kafka's per-user checks.
    let req = AlterUserScramCredentialsRequest {
        upsertions: vec![
            upsert("bob", 2, "bob-secret", 4096),
            upsert("carol", 1, "carol-secret", 8192),
            upsert("weak", 1, "w", 1000),
            upsert("odd", 9, "o", 4096),
            upsert("twice", 1, "t", 4096),
            upsert("twice", 1, "t2", 4096),
        ],
        deletions: vec![ScramCredentialDeletion { name: "nobody".into(), mechanism: 1, ..Default::default() }],
        ..Default::default()
    };
    let results: std::collections::BTreeMap<String, i16> = alter(&mut admin, req).await.into_iter().collect();
    assert_eq!(results["bob"], 0);
    assert_eq!(results["carol"], 0);
    assert_eq!(results["weak"], UNACCEPTABLE_CREDENTIAL, "fewer than 4096 iterations");
    assert_eq!(results["odd"], UNSUPPORTED_SASL_MECHANISM);
    assert_eq!(results["twice"], DUPLICATE_RESOURCE);
    assert_eq!(results["nobody"], RESOURCE_NOT_FOUND);

    let d: DescribeUserScramCredentialsResponse =
        admin.call_at(0, &DescribeUserScramCredentialsRequest { users: None, ..Default::default() }).await.unwrap();
    let described: Vec<(String, i8, i32)> = d
        .results
        .iter()
        .flat_map(|r| r.credential_infos.iter().map(|i| (r.user.clone(), i.mechanism, i.iterations)))
        .collect();
    assert_eq!(described, vec![("bob".into(), 2, 4096), ("carol".into(), 1, 8192)]);

    // bob logs in with SCRAM-SHA-512, carol with SCRAM-SHA-256; then requests are served.
    let mut bob = scram_login(&b.addr, true, "bob", "bob-secret").await.expect("bob");
    let md: MetadataResponse = bob.call_at(12, &MetadataRequest::default()).await.expect("metadata after SCRAM");
    assert_eq!(md.brokers.len(), 1);
    scram_login(&b.addr, false, "carol", "carol-secret").await.expect("carol");
    // Wrong password, wrong mechanism, unknown user: refused at the proof.
    assert_eq!(scram_login(&b.addr, true, "bob", "wrong").await.err(), Some(SASL_AUTHENTICATION_FAILED));
    assert_eq!(scram_login(&b.addr, false, "bob", "bob-secret").await.err(), Some(SASL_AUTHENTICATION_FAILED));
    assert_eq!(scram_login(&b.addr, true, "mallory", "x").await.err(), Some(SASL_AUTHENTICATION_FAILED));

    // A client-final replayed into a new exchange (whose server nonce differs) is refused.
    let mut c = Client::connect(&b.addr, Duration::from_secs(10)).await.unwrap();
    assert_eq!(handshake(&mut c, "SCRAM-SHA-512").await.error_code, 0);
    let scram = strom_client::security::ScramClient::new(true, "bob", "bob-secret");
    let first = authenticate(&mut c, scram.client_first().as_bytes()).await;
    let (client_final, _) = scram.client_final(&first.auth_bytes).unwrap();
    assert_eq!(authenticate(&mut c, client_final.as_bytes()).await.error_code, 0);
    let mut again = Client::connect(&b.addr, Duration::from_secs(10)).await.unwrap();
    assert_eq!(handshake(&mut again, "SCRAM-SHA-512").await.error_code, 0);
    assert_eq!(authenticate(&mut again, scram.client_first().as_bytes()).await.error_code, 0);
    let replayed = authenticate(&mut again, client_final.as_bytes()).await;
    assert_eq!(replayed.error_code, SASL_AUTHENTICATION_FAILED);
    assert!(closed(&mut again).await);

    // Deleted: carol can no longer log in. The rest survives a restart.
    let req = AlterUserScramCredentialsRequest {
        deletions: vec![ScramCredentialDeletion { name: "carol".into(), mechanism: 1, ..Default::default() }],
        ..Default::default()
    };
    assert_eq!(alter(&mut admin, req).await, vec![("carol".to_string(), 0)]);
    assert_eq!(scram_login(&b.addr, false, "carol", "carol-secret").await.err(), Some(SASL_AUTHENTICATION_FAILED));
    drop((admin, bob, c, again));
    b.stop().await;
    let b = scram_broker(dir.path()).await;
    scram_login(&b.addr, true, "bob", "bob-secret").await.expect("bob after a restart");
    assert!(scram_login(&b.addr, false, "carol", "carol-secret").await.is_err());

    // The client library logs in from Kafka client properties too (what the CLI and
    // strom bench use).
    let props = "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n\
                 sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"bob\" password=\"bob-secret\";\n";
    let security = strom_client::Security::from_properties(props).unwrap();
    Client::connect_with(&b.addr, Duration::from_secs(10), &security).await.expect("SCRAM from properties");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauthbearer_accepts_unsecured_tokens_as_kafkas_default_validator_does() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(
        dir.path(),
        &[
            ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
            ("listener.security.protocol.map", "SASL_PLAINTEXT:SASL_PLAINTEXT"),
            ("sasl.enabled.mechanisms", "OAUTHBEARER"),
            (
                "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
                 unsecuredValidatorRequiredScope=\"kafka\";",
            ),
        ],
    )
    .await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let token = |header: &str, claims: String| {
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("n,,\u{1}auth=Bearer {}.{}.\u{1}\u{1}", e(header), e(&claims))
    };
    let login = |message: String| {
        let addr = b.addr.clone();
        async move {
            let mut c = Client::connect(&addr, Duration::from_secs(10)).await.expect("connect");
            assert_eq!(handshake(&mut c, "OAUTHBEARER").await.error_code, 0);
            let a = authenticate(&mut c, message.as_bytes()).await;
            (a.error_code, c)
        }
    };
    let good = token(r#"{"alg":"none"}"#, format!(r#"{{"sub":"alice","exp":{},"scope":"kafka"}}"#, now + 60));
    let (code, mut c) = login(good).await;
    assert_eq!(code, 0);
    let md: MetadataResponse = c.call_at(12, &MetadataRequest::default()).await.expect("metadata after login");
    assert_eq!(md.brokers.len(), 1);
    let refused = [
        token(r#"{"alg":"none"}"#, format!(r#"{{"sub":"alice","exp":{},"scope":"kafka"}}"#, now - 1)),
        token(r#"{"alg":"HS256"}"#, format!(r#"{{"sub":"alice","exp":{},"scope":"kafka"}}"#, now + 60)),
        token(r#"{"alg":"none"}"#, format!(r#"{{"exp":{},"scope":"kafka"}}"#, now + 60)),
        token(r#"{"alg":"none"}"#, format!(r#"{{"sub":"alice","exp":{}}}"#, now + 60)),
        "n,,\u{1}auth=Basic YWxpY2U=\u{1}\u{1}".to_string(),
    ];
    for message in refused {
        let (code, mut c) = login(message.clone()).await;
        assert_eq!(code, SASL_AUTHENTICATION_FAILED, "{message:?}");
        assert!(closed(&mut c).await);
    }
    b.stop().await;
}

async fn login(c: &mut Client, token: &[u8]) -> SaslAuthenticateResponse {
    assert_eq!(handshake(c, "PLAIN").await.error_code, 0);
    authenticate(c, token).await
}

async fn metadata_ok(c: &mut Client) -> bool {
    c.call_at::<_, MetadataResponse>(12, &MetadataRequest::default()).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_after_connections_max_reauth_ms_unless_the_client_reauthenticates() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(
        dir.path(),
        &[
            ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
            ("listener.security.protocol.map", "SASL_PLAINTEXT:SASL_PLAINTEXT"),
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS),
            ("connections.max.reauth.ms", "400"),
        ],
    )
    .await;

    // The session lifetime is told to the client (SaslAuthenticate v1+).
    let mut c = Client::connect(&b.addr, Duration::from_secs(10)).await.unwrap();
    let a = login(&mut c, ALICE_PLAIN).await;
    assert_eq!(a.error_code, 0);
    assert!(a.session_lifetime_ms > 0 && a.session_lifetime_ms <= 400, "{}", a.session_lifetime_ms);
    // Re-authenticating as the same user renews it, again and again, past the first expiry.
    let reauths = || strom::metrics::SASL_REAUTHENTICATIONS.load(std::sync::atomic::Ordering::Relaxed);
    let before = reauths();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(login(&mut c, ALICE_PLAIN).await.error_code, 0);
        assert!(metadata_ok(&mut c).await, "served after re-authentication");
    }
    assert!(reauths() >= before + 3, "re-authentications counted for operators");
    // Re-authenticating as someone else is refused and closes the connection.
    assert_eq!(login(&mut c, b"\0bob\0b").await.error_code, SASL_AUTHENTICATION_FAILED);
    assert!(closed(&mut c).await);

    // A session left to expire: the next request closes the connection.
    let mut idle = Client::connect(&b.addr, Duration::from_secs(10)).await.unwrap();
    assert_eq!(login(&mut idle, ALICE_PLAIN).await.error_code, 0);
    assert!(metadata_ok(&mut idle).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(closed(&mut idle).await, "an expired session was still served");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_authorizer_the_acl_apis_answer_security_disabled_as_kafka_does() {
    use strom_protocol::{
        create_acls_request, CreateAclsRequest, CreateAclsResponse, DescribeAclsRequest, DescribeAclsResponse,
    };
    const SECURITY_DISABLED: i16 = 54;
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]).await;
    let mut c = Client::connect(&b.addr, Duration::from_secs(10)).await.unwrap();
    let create = CreateAclsRequest {
        creations: vec![create_acls_request::AclCreation {
            resource_type: 2,
            resource_name: "orders".into(),
            resource_pattern_type: 3,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: 3,
            permission_type: 3,
            ..Default::default()
        }],
        ..Default::default()
    };
    let r: CreateAclsResponse = c.call_at(3, &create).await.unwrap();
    assert_eq!(r.results.iter().map(|r| r.error_code).collect::<Vec<_>>(), vec![SECURITY_DISABLED]);
    let d: DescribeAclsResponse = c
        .call_at(
            3,
            &DescribeAclsRequest {
                resource_type_filter: 1,
                pattern_type_filter: 1,
                operation: 1,
                permission_type: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(d.error_code, SECURITY_DISABLED);
    b.stop().await;
}
