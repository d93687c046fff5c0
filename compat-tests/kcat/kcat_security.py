#!/usr/bin/env python3
"""kcat against its own broker with a secured listener (issue 16), run by security.sh,
security-ssl.sh, security-sasl-ssl.sh, security-scram.sh and security-oauthbearer.sh with
system python3 (stdlib only): `kcat_security.py sasl_plaintext|ssl|sasl_ssl|scram|oauthbearer`.

- sasl_plaintext (`security`): lib/broker.py `sasl_plain_broker()`, one SASL_PLAINTEXT
  listener with PLAIN, users alice and bob. Every kcat call gets `-X
  security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=PLAIN -X sasl.username=U -X
  sasl.password=P`.
- ssl (`security-ssl`): `ssl_broker()`, one SSL listener with `ssl.client.auth=required`
  (certificates from lib/certs.py). kcat gets `-X security.protocol=SSL -X
  ssl.ca.location=<test CA>` and, as alice, `-X ssl.certificate.location -X
  ssl.key.location`; hostname verification on (`ssl.endpoint.identification.algorithm=https`,
  librdkafka 2.0's default, set anyway); bootstrap localhost:<port>, then the advertised
  127.0.0.1.
- sasl_ssl (`security-sasl-ssl`): `sasl_ssl_broker()`, one SASL_SSL listener with PLAIN,
  server authentication only; kcat gets the SASL settings and `ssl.ca.location` as above.
- scram (`security-scram`): `scram_broker()`, one SASL_PLAINTEXT listener with PLAIN (for
  the CLI's admin only), SCRAM-SHA-256 and SCRAM-SHA-512; `strom user scram set` gives
  alice a SCRAM-SHA-512 and bob a SCRAM-SHA-256 credential first. kcat gets `-X
  sasl.mechanisms=SCRAM-SHA-512` (or -256) and `sasl.username`/`sasl.password`.
  Unsupported with librdkafka < 2.6.1 (Debian's kcat has 2.0.2): its client-final
  message repeats the client nonce, which Strom (as Kafka 4) refuses; scram_nonce_probe()
  checks that this is why alice's first login fails.
- oauthbearer (`security-oauthbearer`): `oauth_broker()`, one SASL_PLAINTEXT listener with
  OAUTHBEARER (unsecured validator, required scope `kafka`). kcat gets `-X
  sasl.mechanisms=OAUTHBEARER -X enable.sasl.oauthbearer.unsecure.jwt=true -X
  sasl.oauthbearer.config="principal=alice scope=kafka"`: librdkafka makes the unsecured
  JWT itself.

Every kcat call is bounded.

1. alice: `kcat -P` 20 keyed records to a new topic (auto-created, 1 partition; kcat has
   no CreateTopics); `kcat -L -J` shows it; `kcat -C -e` reads exactly the 20 back at
   offsets 0..19; a `kcat -G` member reads 6 (`-c 6`: librdkafka commits offset 6 on
   close) and a second member of the group (`-e`) resumes at offset 6 and reads 6..19.
   SASL modes: bob, the second user, gets the topic's metadata (scram: with SCRAM-SHA-256).
2. SASL modes: alice with a wrong password: `kcat -L` exits non-zero with librdkafka's SASL
   authentication error within 20 s; `kcat -P` of 5 records fails with the same error on
   stderr (its records time out undelivered). An unknown user: the same.
   scram: also alice on SCRAM-SHA-256 (she has no such credential), and bob after `strom
   user scram delete bob --mechanism SCRAM-SHA-256`; the broker must log each refusal
   with its reason.
   oauthbearer: a token without the scope `kafka` (`principal=mallory`) is refused the
   same way (broker: "the token lacks the required scope kafka"). No expired token:
   librdkafka's unsecured-token builder (kcat's only token source: it has no token
   callback) makes tokens that expire `lifeSeconds` from now and renews them before then;
   with lifeSeconds=0 or below it makes none and kcat never connects.
   ssl: a client without a certificate, one with mallory's certificate (signed by a CA
   the broker does not trust) and a PLAINTEXT client on the SSL port: `kcat -L` exits
   non-zero within 20 s, `kcat -P` of 5 records delivers none, and the broker logs "TLS
   handshake failed" for each.
   sasl_ssl: also alice's credentials on a client that trusts only another CA
   (ssl.ca.location the rogue CA): refused the same way, by the client.
3. alice reads the topic again: exactly her 20 records.
"""

import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import compat  # noqa: E402
from broker import (OAUTH_SCOPE, SASL_USERS, SCRAM_USERS, create_scram_users, delete_scram_user,  # noqa: E402
                    oauth_broker, sasl_plain_broker, sasl_ssl_broker, scram_broker, ssl_broker)
from compat import fail, log, passed  # noqa: E402

AUTH_WAIT = 20  # seconds for a refused client's error to surface
NPART = 1  # the auto-created topic
MODES = {"sasl_plaintext": ("SASL_PLAINTEXT", sasl_plain_broker), "ssl": ("SSL", ssl_broker),
         "sasl_ssl": ("SASL_SSL", sasl_ssl_broker), "scram": ("SASL_PLAINTEXT", scram_broker),
         "oauthbearer": ("SASL_PLAINTEXT", oauth_broker)}
WHAT = {"sasl_plaintext": "PLAIN", "ssl": "ssl.client.auth=required", "sasl_ssl": "PLAIN",
        "scram": "PLAIN for admin, SCRAM-SHA-256/512", "oauthbearer": "OAUTHBEARER, required scope %s" % OAUTH_SCOPE}

MODE = sys.argv[1] if len(sys.argv) > 1 else "sasl_plaintext"
if MODE not in MODES:
    fail("kcat_security.py: unknown mode %r (%s)" % (MODE, ", ".join(MODES)))
PROTOCOL, make_broker = MODES[MODE]
SASL = PROTOCOL.startswith("SASL")
TLS = PROTOCOL.endswith("SSL")
own = make_broker().close_at_verdict().start()
log("own broker (%s, %s) on %s, data in %s" % (PROTOCOL, WHAT[MODE], own.bootstrap, own.dir))
BOOTSTRAP = own.bootstrap_localhost if TLS else own.bootstrap
TOPIC = compat.topic()
GROUP = compat.topic("-group")


def sasl(user, password, ca=None, mechanism="PLAIN"):
    """The -X settings of a SASL identity (over TLS on sasl_ssl, trusting `ca`)."""
    return tls_trust(ca) + ["-X", "sasl.mechanisms=%s" % mechanism, "-X", "sasl.username=%s" % user,
                          "-X", "sasl.password=%s" % password]


def scram(user):
    """A SCRAM_USERS identity with its mechanism."""
    mechanism, password = SCRAM_USERS[user]
    return sasl(user, password, mechanism=mechanism)


def oauth(config):
    """OAUTHBEARER with librdkafka's own unsecured JWT, made from `config`
    (sasl.oauthbearer.config: principal=…, scope=…)."""
    return ["-X", "sasl.mechanisms=OAUTHBEARER", "-X", "enable.sasl.oauthbearer.unsecure.jwt=true",
            "-X", "sasl.oauthbearer.config=%s" % config]


def tls_trust(ca=None):
    """-X settings that verify the broker's certificate (TLS modes; nothing otherwise)."""
    if not TLS:
        return []
    return ["-X", "ssl.ca.location=%s" % (ca or own.certs.ca_pem), "-X", "ssl.endpoint.identification.algorithm=https"]


def tls_cert(cert, key):
    return tls_trust() + ["-X", "ssl.certificate.location=%s" % cert, "-X", "ssl.key.location=%s" % key]


if MODE == "scram":
    ALICE = scram("alice")
elif MODE == "oauthbearer":
    ALICE = oauth("principal=alice scope=%s" % OAUTH_SCOPE)
elif SASL:
    ALICE = sasl("alice", SASL_USERS["alice"])
else:
    ALICE = tls_cert(own.certs.alice_crt, own.certs.alice_key)


def kcat(ident, args, what, stdin=b"", timeout=60, protocol=PROTOCOL):
    """Runs kcat with the -X settings `ident`; returns (exit code, stdout bytes, stderr text, seconds)."""
    argv = ["kcat", "-b", BOOTSTRAP, "-X", "security.protocol=%s" % protocol] + ident + list(args)
    t0 = time.monotonic()
    try:
        r = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        fail("%s: kcat did not exit within %ds; stderr: %s" % (
            what, timeout, said((e.stderr or b"").decode("utf-8", "replace"))))
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace"), time.monotonic() - t0


def said(err, n=3):
    """The last n lines kcat printed on stderr, joined (for failure messages)."""
    return " | ".join(line.strip() for line in err.strip().splitlines()[-n:])[-600:]


def alice(args, what, **kw):
    return kcat(ALICE, args, what, **kw)


def lines_in(records):
    return b"".join(b"%s\t%s\n" % (k, v) for _, k, v in records)


def parse(out, what, group=False):
    """'%p %o %k %s' lines (ASCII keys/values without spaces) -> {partition: [(offset, key, value)]}."""
    got = {}
    for line in out.decode("utf-8", "replace").splitlines():
        if group:
            if not line.startswith("MSG "):
                continue
            line = line[4:]
        parts = line.split(" ")
        if len(parts) != 4:
            fail("%s: unparseable kcat output line %r" % (what, line))
        got.setdefault(int(parts[0]), []).append((int(parts[1]), parts[2].encode(), parts[3].encode()))
    return got


def read_all(what):
    rc, out, err, _ = alice(["-C", "-t", TOPIC, "-o", "beginning", "-e", "-q", "-f", "%p %o %k %s\\n"], what)
    if rc != 0:
        fail("%s: kcat -C exited with %d: %s" % (what, rc, said(err)))
    return parse(out, what)


def auth_line(err):
    return next((line for line in err.splitlines() if compat.names_auth_failure(line)), None)


def error_line(err):
    """The first librdkafka error/failure line kcat printed (`%3|…|FAIL|…`, `% ERROR: …`)."""
    return next((line for line in err.splitlines() if "|FAIL|" in line or "ERROR" in line), None)


def refused(label, who, ident, protocol=PROTOCOL, own_check=False, reason=None):
    """kcat -L and kcat -P as `ident`: both fail. With own_check (refusals at TLS level)
    the broker must have logged a TLS refusal; otherwise kcat must name the SASL failure,
    and with `reason` the broker must have logged the refused login with that reason."""
    backoff = ["-X", "reconnect.backoff.ms=500", "-X", "reconnect.backoff.max.ms=2000"]
    mark = own.log_mark()
    rc, out, err, secs = kcat(ident, ["-L", "-J", "-t", TOPIC, "-m", "10"] + backoff,
                              "%s: kcat -L" % label, timeout=AUTH_WAIT + 10, protocol=protocol)
    line = error_line(err) if own_check else auth_line(err)
    log("%s (%s): kcat -L exited with %d after %.1fs; %s" % (label, who, rc, secs, line or said(err)))
    if rc == 0:
        fail("%s (%s): kcat -L exited 0: %s" % (label, who, out.decode("utf-8", "replace")[-300:]))
    if line is None:
        fail("%s (%s): kcat -L failed without %s: %s" % (
            label, who, "an error line" if own_check else "an authentication error", said(err)))
    if secs > AUTH_WAIT:
        fail("%s (%s): kcat -L took %.1fs (> %ds)" % (label, who, secs, AUTH_WAIT))
    rc2, _, err2, secs2 = kcat(ident, ["-P", "-t", TOPIC, "-K", "\t", "-X", "message.timeout.ms=8000"] + backoff,
                               "%s: kcat -P" % label, stdin=lines_in(compat.intruder_records(who, NPART)),
                               timeout=AUTH_WAIT + 10, protocol=protocol)
    line2 = error_line(err2) if own_check else auth_line(err2)
    undelivered = sum(1 for ln in err2.splitlines() if "delivery failed" in ln.lower())
    log("%s (%s): kcat -P exited with %d after %.1fs, %d delivery failure(s); %s" % (
        label, who, rc2, secs2, undelivered, line2 or said(err2)))
    if line2 is None:
        fail("%s (%s): kcat -P reported no %s: %s" % (
            label, who, "error" if own_check else "authentication error", said(err2)))
    if rc2 == 0 and undelivered < compat.SECURITY_INTRUDER:
        fail("%s (%s): kcat -P exited 0 with %d/%d delivery failures: %s" % (
            label, who, undelivered, compat.SECURITY_INTRUDER, said(err2)))
    what = "kcat -L exit %d after %.1fs, kcat -P exit %d (%d undelivered): %s" % (
        rc, secs, rc2, undelivered, line.split("|")[-1].strip()[:160])
    if own_check:
        broker = own.tls_refusals(mark)
        if not broker:
            fail("%s (%s): the broker logged no TLS refusal (\"TLS handshake failed\"); kcat: %s" % (label, who, line))
        log("%s (%s): broker: %d TLS refusal(s), first: %s" % (label, who, len(broker), broker[0]))
        what += "; broker: %s" % broker[0]
    if reason is not None:
        what += "; broker: %s" % own.expect_auth_refusal(mark, reason, "%s (%s)" % (label, who))
    return what


def bob_sees(ident, what):
    rc, out, err, _ = kcat(ident, ["-L", "-J", "-t", TOPIC, "-m", "10"], "%s: kcat -L" % what)
    if rc != 0 or not any(t.get("topic") == TOPIC and not t.get("error")
                          for t in json.loads(out or b"{}").get("topics", [])):
        fail("%s: kcat -L exited with %d: %s %s" % (what, rc, out[-300:], said(err)))
    log("%s sees %s" % (what, TOPIC))


def librdkafka_version():
    """kcat's librdkafka version as a tuple (from `kcat -V`), or None."""
    try:
        out = subprocess.run(["kcat", "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(rb"librdkafka (\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in m.groups()) if m else None


def scram_nonce_probe():
    """librdkafka before 2.6.1 repeats the client nonce in SCRAM's client-final message
    (`r=<client nonce><client nonce><server nonce>`; confluentinc/librdkafka#4895). Kafka
    3.8.1-3.9 accepted that (the nonce only had to end with the server's), Kafka 4 and
    Strom want exactly the nonce they sent (RFC 5802), so no SCRAM login of such a kcat
    succeeds. When alice's first `kcat -L` fails for that reason (the broker logs it) and
    kcat's librdkafka is older than 2.6.1, the cell is unsupported; otherwise it goes on
    (and fails at alice's produce if her login fails for another reason)."""
    mark = own.log_mark()
    rc, _, err, _ = alice(["-L", "-m", "5", "-X", "reconnect.backoff.ms=500"], "alice: kcat -L (SCRAM probe)",
                          timeout=AUTH_WAIT + 10)
    if rc == 0:
        return
    version = librdkafka_version()
    nonce = [r for r in own.auth_refusals(mark, wait=2) if "client-final nonce differs" in r]
    if nonce and version is not None and version < (2, 6, 1):
        compat.unsupported(
            "kcat's librdkafka %s sends SCRAM's client-final message with the client nonce repeated "
            "(r=<client nonce><client nonce><server nonce>, fixed in librdkafka 2.6.1: confluentinc/librdkafka#4895); "
            "Strom, like Kafka 4, requires exactly the nonce of its server-first message (RFC 5802), so no SCRAM "
            "login of this kcat succeeds (broker: %s; kcat: %s)"
            % (".".join(map(str, version)), nonce[0],
               "SASL authentication error: "
               + (auth_line(err) or said(err, 1)).split("authentication error: ")[-1][:200]))


def main():
    if MODE == "scram":
        created = create_scram_users(own)
        scram_nonce_probe()
    recs = compat.security_records(NPART)
    rc, _, err, _ = alice(["-P", "-t", TOPIC, "-K", "\t"], "alice: kcat -P", stdin=lines_in(recs))
    if rc != 0 or "delivery failed" in err.lower():
        fail("alice: kcat -P exited with %d: %s" % (rc, said(err)))
    rc, out, err, _ = alice(["-L", "-J", "-t", TOPIC, "-m", "10"], "alice: kcat -L")
    if rc != 0:
        fail("alice: kcat -L exited with %d: %s" % (rc, said(err)))
    md = json.loads(out)
    parts = [t for t in md.get("topics", []) if t.get("topic") == TOPIC]
    if not parts or len(parts[0].get("partitions", [])) != NPART or parts[0].get("error"):
        fail("alice: metadata of %s: %s" % (TOPIC, parts))
    log("alice produced %d records to %s (auto-created, %d partition)" % (len(recs), TOPIC, NPART))
    compat.check_security_log(read_all("alice's read"), "alice's read", NPART)
    log("alice read her %d records back" % len(recs))

    group_args = ["-G", GROUP, "-f", "MSG %p %o %k %s\\n", "-X", "auto.offset.reset=earliest", "-X", "log_level=3"]
    n = compat.SECURITY_COMMIT[0]
    rc, out, err, _ = alice(group_args + ["-c", str(n), TOPIC], "first group member")
    first = parse(out, "first group member", group=True)
    if rc != 0 or [o for o, _, _ in first.get(0, [])] != list(range(n)):
        fail("first group member (kcat -G -c %d, exit %d) read %s, expected offsets 0..%d: %s" % (
            n, rc, first, n - 1, said(err)))
    rc, out, err, _ = alice(group_args + ["-e", TOPIC], "second group member")
    second = parse(out, "second group member", group=True)
    d = compat.first_diff(list(range(n, compat.SECURITY_COUNT)), [o for o, _, _ in second.get(0, [])], "offset")
    if rc != 0 or d:
        fail("second group member (kcat -G -e, exit %d) should resume at the committed offset %d: %s; %s" % (
            rc, n, d, said(err)))
    log("group %s: kcat -G -c %d committed offset %d on close; the next member resumed there" % (GROUP, n, n))

    done = "alice: kcat -P (auto-created topic) %d records, kcat -C read back, kcat -G -c %d commit resumed by a " \
           "second member" % (compat.SECURITY_COUNT, n)
    if MODE == "scram":
        bob_sees(scram("bob"), "bob (SCRAM-SHA-256)")
        alice_mech, alice_pw = SCRAM_USERS["alice"]
        wrong = refused("wrong password", "alice", sasl("alice", "not-" + alice_pw, mechanism=alice_mech),
                        reason="wrong client proof")
        unknown = refused("unknown user", "mallory", sasl("mallory", "mallory-secret", mechanism=alice_mech),
                          reason='no SCRAM credential for user "mallory"')
        other = refused("alice on SCRAM-SHA-256 (no credential)", "alice",
                        sasl("alice", alice_pw, mechanism="SCRAM-SHA-256"),
                        reason='no SCRAM credential for user "alice"')
        delete_scram_user(own, "bob")
        deleted = refused("bob after strom user scram delete", "bob", scram("bob"),
                          reason='no SCRAM credential for user "bob"')
        done = "%s; %s; bob (SCRAM-SHA-256) gets metadata; wrong password: %s; unknown user: %s; alice on " \
               "SCRAM-SHA-256: %s; bob after strom user scram delete: %s" % (
                   created, done, wrong, unknown, other, deleted)
    elif MODE == "oauthbearer":
        bob_sees(oauth("principal=bob scope=%s" % OAUTH_SCOPE), "bob")
        noscope = refused("token without the scope %s" % OAUTH_SCOPE, "mallory", oauth("principal=mallory"),
                          reason="the token lacks the required scope %s" % OAUTH_SCOPE)
        done += "; bob gets metadata; token without the scope: %s; no expired-token check (kcat cannot send " \
                "one: librdkafka's unsecured-token builder only makes unexpired tokens)" % noscope
    elif SASL:
        bob_sees(sasl("bob", SASL_USERS["bob"]), "bob")
        wrong = refused("wrong password", "alice", sasl("alice", "not-" + SASL_USERS["alice"]))
        unknown = refused("unknown user", "mallory", sasl("mallory", "mallory-secret"))
        done += "; bob gets metadata; wrong password: %s; unknown user: %s" % (wrong, unknown)
    if MODE == "sasl_ssl":
        untrusted = refused("broker certificate not trusted", "alice",
                            sasl("alice", SASL_USERS["alice"], ca=own.certs.rogue_ca_pem), own_check=True)
        done += "; client trusting another CA: %s" % untrusted
    if MODE == "ssl":
        nocert = refused("no client certificate", "anonymous", tls_trust(), own_check=True)
        rogue = refused("certificate of an untrusted CA", "mallory",
                        tls_cert(own.certs.mallory_crt, own.certs.mallory_key), own_check=True)
        plain = refused("PLAINTEXT client on the SSL port", "plaintext", [], protocol="PLAINTEXT", own_check=True)
        done += "; no certificate: %s; untrusted CA: %s; PLAINTEXT: %s" % (nocert, rogue, plain)

    compat.check_security_log(read_all("alice's read after the refused clients"),
                              "alice's read after the refused clients", NPART)
    passed(done + "; nothing of theirs in the topic")


try:
    main()
except SystemExit:
    raise
except BaseException as e:  # noqa: BLE001 - an unexpected error is a failure (and stops the broker)
    import traceback
    traceback.print_exc()
    fail("unexpected error: %r" % (e,))
fail("scenario ended without a verdict")
