//! SASL/PLAIN (RFC 4616): the token checked against a listener's users, in time that
//! tells nothing about the passwords. Pure functions over outside bytes (fuzz target
//! `sasl_exchange`, which includes this file).

/// `a == b` in time that depends only on the lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// RFC 4616 PLAIN: `[authzid] NUL authcid NUL passwd`, checked against the listener's
/// users. The authorization id, if given, must be the user (as Kafka requires). Returns
/// the user name, or why it failed (for the log; the client gets one generic message).
pub fn plain(
    users: &std::collections::BTreeMap<String, String>,
    token: &[u8],
) -> Result<String, (String, &'static str)> {
    let mut parts = token.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(password), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err((String::new(), "malformed PLAIN message"));
    };
    let user = String::from_utf8_lossy(user).to_string();
    if user.is_empty() {
        return Err((user, "empty user name"));
    }
    if !authzid.is_empty() && authzid != user.as_bytes() {
        return Err((user, "authorization id differs from the user name"));
    }
    // Digests of equal length are compared, so the time taken tells nothing about the
    // expected password, not even its length; unknown users cost the same.
    let digest = |b: &[u8]| ring::digest::digest(&ring::digest::SHA256, b);
    let given = digest(password);
    match users.get(&user) {
        Some(expected) if ct_eq(digest(expected.as_bytes()).as_ref(), given.as_ref()) => Ok(user),
        Some(_) => Err((user, "wrong password")),
        None => {
            let _ = ct_eq(given.as_ref(), given.as_ref());
            Err((user, "unknown user"))
        }
    }
}
