//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka serves them (KIP-84):
//! the server side of the exchange over stored credentials (salt, iterations, StoredKey,
//! ServerKey — never the password), with the checks the RFC asks for: the nonce the
//! client finishes with must be the one the server extended, the channel-binding
//! attribute must repeat the GS2 header (Kafka supports no channel binding), the proof
//! is compared in constant time, and any failure ends the exchange. Pure functions over
//! bytes, so they are fuzzed and checked against the RFC's test vector.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2};

/// Kafka's bounds on a credential's iteration count.
pub const MIN_ITERATIONS: u32 = 4096;
/// See [`MIN_ITERATIONS`].
pub const MAX_ITERATIONS: u32 = 16384;

/// The two SCRAM mechanisms Kafka defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    /// SCRAM-SHA-256 (Kafka's ScramMechanism 1).
    Sha256,
    /// SCRAM-SHA-512 (Kafka's ScramMechanism 2).
    Sha512,
}

impl Mechanism {
    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// From a SASL mechanism name.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        match name {
            "SCRAM-SHA-256" => Some(Mechanism::Sha256),
            "SCRAM-SHA-512" => Some(Mechanism::Sha512),
            _ => None,
        }
    }

    /// Kafka's numeric code (DescribeUserScramCredentials / AlterUserScramCredentials).
    pub fn code(self) -> i8 {
        match self {
            Mechanism::Sha256 => 1,
            Mechanism::Sha512 => 2,
        }
    }

    /// From Kafka's numeric code.
    pub fn from_code(code: i8) -> Option<Mechanism> {
        match code {
            1 => Some(Mechanism::Sha256),
            2 => Some(Mechanism::Sha512),
            _ => None,
        }
    }

    fn hmac_alg(self) -> hmac::Algorithm {
        match self {
            Mechanism::Sha256 => hmac::HMAC_SHA256,
            Mechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn pbkdf2_alg(self) -> pbkdf2::Algorithm {
        match self {
            Mechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Mechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn digest_alg(self) -> &'static digest::Algorithm {
        match self {
            Mechanism::Sha256 => &digest::SHA256,
            Mechanism::Sha512 => &digest::SHA512,
        }
    }

    fn len(self) -> usize {
        match self {
            Mechanism::Sha256 => 32,
            Mechanism::Sha512 => 64,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac_alg(), key), data).as_ref().to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_alg(), data).as_ref().to_vec()
    }
}

/// A stored credential: what the broker keeps instead of the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// H(ClientKey).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

/// SaltedPassword = Hi(password, salt, iterations) (PBKDF2 with the mechanism's HMAC):
/// what AlterUserScramCredentials carries.
pub fn salted_password(mechanism: Mechanism, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut salted = vec![0u8; mechanism.len()];
    let rounds = std::num::NonZeroU32::new(iterations.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
    pbkdf2::derive(mechanism.pbkdf2_alg(), rounds, salt, password, &mut salted);
    salted
}

impl Credential {
    /// The credential for `password` with `salt` (Kafka's AlterUserScramCredentials sends
    /// the salted password already: see [`Credential::from_salted_password`]).
    pub fn new(mechanism: Mechanism, password: &[u8], salt: &[u8], iterations: u32) -> Credential {
        let salted = salted_password(mechanism, password, salt, iterations);
        Credential::from_salted_password(mechanism, &salted, salt, iterations)
    }

    /// The credential from SaltedPassword = Hi(password, salt, iterations).
    pub fn from_salted_password(mechanism: Mechanism, salted: &[u8], salt: &[u8], iterations: u32) -> Credential {
        let client_key = mechanism.hmac(salted, b"Client Key");
        Credential {
            salt: salt.to_vec(),
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted, b"Server Key"),
        }
    }
}

/// Why an exchange failed (for the log; the client gets one generic message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The message does not follow RFC 5802's grammar.
    Malformed(&'static str),
    /// Channel binding was asked for (Kafka supports none).
    ChannelBinding,
    /// No credential for this user and mechanism.
    UnknownUser(String),
    /// The client-final nonce is not the one the server extended.
    WrongNonce,
    /// The channel-binding attribute does not repeat the GS2 header.
    WrongChannelBinding,
    /// The proof does not verify.
    WrongProof,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Malformed(what) => write!(f, "malformed SCRAM message: {what}"),
            Refusal::ChannelBinding => write!(f, "channel binding is not supported"),
            Refusal::UnknownUser(u) => write!(f, "no SCRAM credential for user {u:?}"),
            Refusal::WrongNonce => write!(f, "client-final nonce differs from the server's"),
            Refusal::WrongChannelBinding => write!(f, "channel-binding attribute does not match the GS2 header"),
            Refusal::WrongProof => write!(f, "wrong client proof (wrong password)"),
        }
    }
}

/// The server's side of one exchange, between its first and its final message.
#[derive(Debug)]
pub struct ServerFirst {
    mechanism: Mechanism,
    /// The user name (`n=`, decoded).
    pub user: String,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    credential: Option<Credential>,
}

/// Decodes RFC 5802's saslname (`=2C` for `,`, `=3D` for `=`).
fn decode_saslname(s: &str) -> Result<String, Refusal> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(Refusal::Malformed("bad escape in user name")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Handles the client-first message: the user and the client nonce. `lookup` finds the
/// user's credential; an unknown user still gets a server-first message (with a salt and
/// iteration count that give nothing away) and fails at the proof, so the exchange does
/// not tell who exists. `server_nonce` is fresh randomness (printable, no comma).
pub fn server_first(
    mechanism: Mechanism,
    client_first: &[u8],
    server_nonce: &str,
    lookup: impl FnOnce(&str) -> Option<Credential>,
) -> Result<(ServerFirst, String), Refusal> {
    let text = std::str::from_utf8(client_first).map_err(|_| Refusal::Malformed("not UTF-8"))?;
    // gs2-header: gs2-cbind-flag "," [authzid] ","
    let (flag, rest) = text.split_once(',').ok_or(Refusal::Malformed("no GS2 header"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(Refusal::ChannelBinding),
        _ => return Err(Refusal::Malformed("bad channel-binding flag")),
    }
    let (authzid, bare) = rest.split_once(',').ok_or(Refusal::Malformed("no GS2 header"))?;
    let gs2_header = format!("{flag},{authzid},");
    let mut attrs = bare.split(',');
    let user = match attrs.next() {
        Some(n) if n.starts_with("n=") => decode_saslname(&n[2..])?,
        Some(m) if m.starts_with("m=") => return Err(Refusal::Malformed("mandatory extension")),
        _ => return Err(Refusal::Malformed("no user name")),
    };
    if user.is_empty() {
        return Err(Refusal::Malformed("empty user name"));
    }
    if let Some(a) = authzid.strip_prefix("a=") {
        if decode_saslname(a)? != user {
            return Err(Refusal::Malformed("authorization id differs from the user name"));
        }
    } else if !authzid.is_empty() {
        return Err(Refusal::Malformed("bad authorization id"));
    }
    let client_nonce = match attrs.next() {
        Some(r) if r.starts_with("r=") && r.len() > 2 => &r[2..],
        _ => return Err(Refusal::Malformed("no client nonce")),
    };
    if client_nonce.bytes().any(|b| !(0x21..=0x7e).contains(&b) || b == b',') {
        return Err(Refusal::Malformed("client nonce is not printable"));
    }
    // Extensions (Kafka's tokenauth=true for delegation tokens) are not served.
    if attrs.any(|a| !a.is_empty()) {
        return Err(Refusal::Malformed("unsupported extension"));
    }
    let credential = lookup(&user);
    let nonce = format!("{client_nonce}{server_nonce}");
    let (salt, iterations) = match &credential {
        Some(c) => (c.salt.clone(), c.iterations),
        // A salt derived from the user name: the same on every attempt, as a real one.
        None => (mechanism.hash(format!("strom-unknown-user:{user}").as_bytes())[..16].to_vec(), MIN_ITERATIONS),
    };
    let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
    let state = ServerFirst {
        mechanism,
        user,
        gs2_header,
        client_first_bare: bare.to_string(),
        server_first: server_first.clone(),
        nonce,
        credential,
    };
    Ok((state, server_first))
}

impl ServerFirst {
    /// Handles the client-final message; the server-final message (`v=…`) when the proof
    /// verifies.
    pub fn finish(self, client_final: &[u8]) -> Result<String, Refusal> {
        let text = std::str::from_utf8(client_final).map_err(|_| Refusal::Malformed("not UTF-8"))?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or(Refusal::Malformed("no proof"))?;
        let mut attrs = without_proof.split(',');
        let binding = match attrs.next() {
            Some(c) if c.starts_with("c=") => B64.decode(&c[2..]).map_err(|_| Refusal::Malformed("bad c="))?,
            _ => return Err(Refusal::Malformed("no channel binding attribute")),
        };
        let nonce = match attrs.next() {
            Some(r) if r.starts_with("r=") => &r[2..],
            _ => return Err(Refusal::Malformed("no nonce")),
        };
        if attrs.any(|a| !a.is_empty()) {
            return Err(Refusal::Malformed("unsupported extension"));
        }
        let proof = B64.decode(proof).map_err(|_| Refusal::Malformed("bad proof encoding"))?;
        if nonce != self.nonce {
            return Err(Refusal::WrongNonce);
        }
        if binding != self.gs2_header.as_bytes() {
            return Err(Refusal::WrongChannelBinding);
        }
        let Some(cred) = &self.credential else {
            return Err(Refusal::UnknownUser(self.user.clone()));
        };
        let m = self.mechanism;
        let auth_message = format!("{},{},{}", self.client_first_bare, self.server_first, without_proof);
        let client_signature = m.hmac(&cred.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(Refusal::WrongProof);
        }
        let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(a, b)| a ^ b).collect();
        if !super::plain::ct_eq(&m.hash(&client_key), &cred.stored_key) {
            return Err(Refusal::WrongProof);
        }
        let server_signature = m.hmac(&cred.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

/// A printable server nonce (base64 of 18 random bytes, which has no comma).
pub fn fresh_nonce() -> String {
    let mut bytes = [0u8; 18];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to the clock (still unique per exchange).
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        bytes[..16].copy_from_slice(&t.to_le_bytes());
    }
    B64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3: user "user", password "pencil".
    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_credential() -> Credential {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        Credential::new(Mechanism::Sha256, b"pencil", &salt, 4096)
    }

    fn start(client_first: &str) -> Result<(ServerFirst, String), Refusal> {
        server_first(Mechanism::Sha256, client_first.as_bytes(), SERVER_NONCE, |u| (u == "user").then(rfc_credential))
    }

    #[test]
    fn the_rfc_7677_exchange_verifies_and_yields_its_server_signature() {
        let (state, first) = start(CLIENT_FIRST).unwrap();
        assert_eq!(first, SERVER_FIRST);
        assert_eq!(state.finish(CLIENT_FINAL.as_bytes()).unwrap(), SERVER_FINAL);
    }

    #[test]
    fn wrong_nonce_wrong_proof_replays_and_unknown_users_are_refused() {
        // A nonce other than the server's (e.g. a client-final replayed into a new
        // exchange, whose server nonce differs).
        let (state, _) =
            server_first(Mechanism::Sha256, CLIENT_FIRST.as_bytes(), "another-nonce", |_| Some(rfc_credential()))
                .unwrap();
        assert_eq!(state.finish(CLIENT_FINAL.as_bytes()), Err(Refusal::WrongNonce));
        // A flipped proof bit.
        let (state, _) = start(CLIENT_FIRST).unwrap();
        let bad = CLIENT_FINAL.replace("p=dHzb", "p=dHzc");
        assert_eq!(state.finish(bad.as_bytes()), Err(Refusal::WrongProof));
        // Channel binding that does not repeat the GS2 header.
        let (state, _) = start(CLIENT_FIRST).unwrap();
        let bad = CLIENT_FINAL.replace("c=biws", "c=eSws");
        assert_eq!(state.finish(bad.as_bytes()), Err(Refusal::WrongChannelBinding));
        // An unknown user gets a plausible server-first, then fails.
        let (state, first) = start("n,,n=mallory,r=abc").unwrap();
        assert!(first.starts_with("r=abc") && first.ends_with(",i=4096"), "{first}");
        let (again, _) = start("n,,n=mallory,r=abc").unwrap();
        assert_eq!(first, again.server_first, "the same salt on every attempt");
        let final_msg = format!("c=biws,r=abc{SERVER_NONCE},p=AAAA");
        assert_eq!(state.finish(final_msg.as_bytes()), Err(Refusal::UnknownUser("mallory".into())));
        // Malformed and unsupported first messages.
        for bad in ["", "n,", "x,,n=user,r=a", "p=tls-unique,,n=user,r=a", "n,,r=a", "n,,n=user", "n,,n=us=er,r=a"] {
            assert!(start(bad).is_err(), "{bad:?}");
        }
        assert_eq!(start("p=tls-unique,,n=user,r=a").unwrap_err(), Refusal::ChannelBinding);
        assert!(start("n,a=other,n=user,r=a").is_err(), "authorization id of someone else");
        assert!(start("n,a=user,n=user,r=a").is_ok());
        assert_eq!(decode_saslname("a=2Cb=3Dc").unwrap(), "a,b=c");
    }

    #[test]
    fn sha512_round_trips_with_a_client_computed_proof() {
        let m = Mechanism::Sha512;
        let salt = b"0123456789abcdef";
        let cred = Credential::new(m, b"secret", salt, 4096);
        let (state, first) =
            server_first(m, b"n,,n=alice,r=clientnonce", "servernonce", |_| Some(cred.clone())).unwrap();
        // The client's side, from the password.
        let mut salted = vec![0u8; 64];
        pbkdf2::derive(m.pbkdf2_alg(), std::num::NonZeroU32::new(4096).unwrap(), salt, b"secret", &mut salted);
        let client_key = m.hmac(&salted, b"Client Key");
        let without_proof = "c=biws,r=clientnonceservernonce";
        let auth = format!("n=alice,r=clientnonce,{first},{without_proof}");
        let sig = m.hmac(&m.hash(&client_key), auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let server_final = state.finish(format!("{without_proof},p={}", B64.encode(proof)).as_bytes()).unwrap();
        let expected = m.hmac(&m.hmac(&salted, b"Server Key"), auth.as_bytes());
        assert_eq!(server_final, format!("v={}", B64.encode(expected)));
    }
}
