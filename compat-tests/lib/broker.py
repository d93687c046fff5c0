"""A strom broker owned by one scenario, for scenarios that restart the broker or
need a broker configured differently from the runner's (e.g. a SASL or TLS listener).

The runner passes the binary as STROM_BIN. Against an external broker
(--bootstrap) there is no binary, so such scenarios report "unsupported".
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import certs
import compat


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnBroker:
    """Starts strom on a fixed free port with its own data dir; restart keeps both.

    `listener`: the listener's scheme (security protocol), `PLAINTEXT` or e.g.
    `SASL_PLAINTEXT`; `overrides`: [(key, value)] (or a dict), each passed as
    `--override key=value` after the fixed `strom.http.listener` one; `extra_args`:
    further argv appended as given."""

    def __init__(self, extra_args=(), listener="PLAINTEXT", overrides=()):
        self.binary = os.environ.get("STROM_BIN")
        if not self.binary:
            compat.unsupported("needs its own broker (STROM_BIN), not available with --bootstrap")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="strom-own-")
        self.listener = listener
        self.overrides = list(overrides.items() if isinstance(overrides, dict) else overrides)
        self.extra = list(extra_args)
        self.proc = None
        self.hooked = False  # close_at_verdict() installed
        self.log = open(os.path.join(self.dir, "strom.log"), "ab")

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    @property
    def bootstrap_localhost(self):
        """localhost:<port>: TLS clients bootstrap by the name (the certificate's DNS SAN)
        and then connect to the advertised 127.0.0.1 (its IP SAN)."""
        return "localhost:%d" % self.port

    def command(self):
        cmd = [self.binary, "serve", "--listeners", "%s://127.0.0.1:%d" % (self.listener, self.port),
               "--log-dirs", os.path.join(self.dir, "data"),
               # Never the default 9644: other brokers (the runner's, a user's) may hold it.
               "--override", "strom.http.listener=127.0.0.1:0",
               # Nor the registry's 8081 (registry_broker() passes a free port).
               "--override", "strom.schema.registry.listener="]
        for key, value in self.overrides:
            cmd += ["--override", "%s=%s" % (key, value)]
        return cmd + self.extra

    def start(self, timeout=20):
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if not self.hooked:  # the hook prints it
                    self.print_log_tail()
                compat.fail("own broker exited with %s during startup (log %s)" % (self.proc.returncode, self.dir))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        compat.fail("own broker did not listen within %ds" % timeout)

    def stop(self, kill=False):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, kill=False):
        self.stop(kill=kill)
        return self.start()

    def close(self):
        self.stop()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n=40):
        try:
            with open(os.path.join(self.dir, "strom.log"), "rb") as f:
                return f.read().decode("utf-8", "replace").splitlines()[-n:]
        except OSError as e:
            return ["(cannot read strom.log: %s)" % e]

    def metric(self, name, timeout=10.0):
        """The value of counter or gauge `name` (no labels) in the broker's /metrics, read
        from the HTTP endpoint the broker logged it serves (`strom is serving … http=`)."""
        import re
        import urllib.request
        deadline = time.monotonic() + timeout
        addr = None
        while addr is None:
            for line in self.log_tail(2000):
                m = re.search(r"strom is serving .*http=(\S+)", line)
                if m:
                    addr = m.group(1)
            if addr is None:
                if time.monotonic() > deadline:
                    compat.fail("own broker did not log its HTTP address")
                time.sleep(0.1)
        text = urllib.request.urlopen("http://%s/metrics" % addr, timeout=10).read().decode()
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in (name, name + "_total"):
                return float(parts[1])
        compat.fail("metric %s not in the broker's /metrics" % name)

    def log_mark(self):
        """The broker log's current size: pass it to log_since()."""
        try:
            return os.path.getsize(os.path.join(self.dir, "strom.log"))
        except OSError:
            return 0

    def log_since(self, mark):
        """The broker log's lines written after log_mark() returned `mark`."""
        try:
            with open(os.path.join(self.dir, "strom.log"), "rb") as f:
                f.seek(mark)
                return f.read().decode("utf-8", "replace").splitlines()
        except OSError as e:
            return ["(cannot read strom.log: %s)" % e]

    def tls_refusals(self, mark, wait=5.0):
        """The broker's INFO lines for connections refused at TLS level since `mark` ("TLS
        handshake failed", "TLS client refused"), each shortened to its reason (`error=…`).
        Waits up to `wait` seconds for the first: the broker logs the refusal after sending
        its alert, so a client may have given up before the line is written."""
        deadline = time.monotonic() + wait
        while True:
            out = []
            for line in self.log_since(mark):
                if any(m in line for m in ("TLS handshake failed", "TLS client refused", "TLS handshake not completed")):
                    why = line.split(" error=", 1)[1] if " error=" in line else line.split(" reason=", 1)[-1]
                    out.append(why.strip())
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(0.1)

    def auth_refusals(self, mark, wait=5.0):
        """The broker's INFO lines for refused SASL logins since `mark` ("authentication
        failed … user=… mechanism=… reason=…"), each shortened to `user=… reason=…` (`reason=…`
        when the broker logged no user, as for a refused OAUTHBEARER token). Waits up
        to `wait` seconds for the first."""
        deadline = time.monotonic() + wait
        while True:
            out = []
            for line in self.log_since(mark):
                if "authentication failed" in line and " reason=" in line:
                    user = line.split(" user=", 1)[1].split(" ", 1)[0] if " user=" in line else ""
                    why = line.split(" reason=", 1)[1].strip()
                    out.append("user=%s reason=%s" % (user, why) if user else "reason=%s" % why)
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(0.1)

    def expect_auth_refusal(self, mark, reason, label):
        """The broker logged a refused SASL login whose reason contains `reason` since
        `mark` (else the scenario fails); returns that line's `user=… reason=…`."""
        logged = self.auth_refusals(mark)
        hit = next((r for r in logged if reason in r), None)
        if hit is None:
            compat.fail("%s: the broker logged no refused login with reason %r; it logged %s"
                        % (label, reason, logged[:5]))
        return hit

    def print_log_tail(self, n=40):
        print("---- last %d lines of the own broker's log %s/strom.log ----" % (n, self.dir), flush=True)
        for line in self.log_tail(n):
            print("  " + line, flush=True)

    def close_at_verdict(self):
        """compat.passed()/fail() end the process with os._exit(), which skips
        `finally` and atexit: hook os._exit so that the verdict also stops the broker.
        On success the data dir is removed; on failure (exit code != 0 and != 3) the
        broker log's tail is printed and the dir (strom.log, data/) kept. Returns self."""
        os_exit = os._exit

        def exit_closing_broker(code):
            try:
                if self.proc is not None and self.proc.poll() is not None:
                    print("own broker had exited by itself with status %s" % self.proc.returncode, flush=True)
                    if code == compat.EXIT_PASS:
                        print("FAIL: own broker exited during the scenario with status %s" % self.proc.returncode,
                              flush=True)
                        code = compat.EXIT_FAIL
                if code in (compat.EXIT_PASS, compat.EXIT_UNSUPPORTED):
                    self.close()
                else:
                    self.stop()
                    self.log.close()
                    self.print_log_tail()
                    print("kept %s (strom.log, data/)" % self.dir, flush=True)
            finally:
                os_exit(code)

        os._exit = exit_closing_broker
        self.hooked = True
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------
# SASL/PLAIN (issue 16): the users and the broker settings of the `security` scenario.

SASL_USERS = {"alice": "alice-secret", "bob": "bob-secret"}


def plain_jaas_config(users=None):
    """Kafka's PlainLoginModule JAAS line: one user_<name>="<password>" per user."""
    users = SASL_USERS if users is None else users
    return "org.apache.kafka.common.security.plain.PlainLoginModule required %s;" % " ".join(
        'user_%s="%s"' % (u, p) for u, p in users.items())


def sasl_plain_overrides(users=None):
    """Kafka's broker settings for one SASL_PLAINTEXT listener with PLAIN."""
    return [
        ("listener.security.protocol.map", "SASL_PLAINTEXT:SASL_PLAINTEXT"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config", plain_jaas_config(users)),
    ]


def sasl_plain_broker(users=None):
    """An OwnBroker with a single SASL_PLAINTEXT listener (PLAIN, SASL_USERS); not started."""
    return OwnBroker(listener="SASL_PLAINTEXT", overrides=sasl_plain_overrides(users))


# ACLs (issue 16): SASL/PLAIN as above plus Kafka's StandardAuthorizer, `admin` the
# super user, alice and bob ordinary users (scenario `security-acl`).

ACL_USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}


def acl_broker():
    """An OwnBroker with a SASL_PLAINTEXT listener (PLAIN, ACL_USERS) enforcing ACLs,
    super.users=User:admin; not started."""
    return OwnBroker(listener="SASL_PLAINTEXT", overrides=sasl_plain_overrides(ACL_USERS) + [
        ("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
        ("super.users", "User:admin"),
    ])


# ---------------------------------------------------------------------------
# TLS (issue 16): SSL and SASL_SSL listeners with the certificates of lib/certs.py,
# generated per broker into <dir>/tls (kept with the dir when a cell fails).


def _with_certs(own):
    try:
        own.certs = certs.generate(os.path.join(own.dir, "tls"))
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        compat.fail("cannot generate the test certificates with openssl into %s/tls: %s" % (own.dir, e))
    return own


def ssl_overrides(c, client_auth="required"):
    """Kafka's broker settings for one SSL listener: the PEM keystore (key + chain in one
    file) and truststore (the test CA), ssl.client.auth (mTLS with `required`)."""
    return [
        ("listener.security.protocol.map", "SSL:SSL"),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", c.broker_pem),
        ("ssl.truststore.type", "PEM"),
        ("ssl.truststore.location", c.ca_pem),
        ("ssl.client.auth", client_auth),
    ]


def ssl_broker(client_auth="required"):
    """An OwnBroker with a single SSL listener, `ssl.client.auth=required` by default
    (certificates in own.certs, a lib/certs.py Certs); not started."""
    own = _with_certs(OwnBroker(listener="SSL"))
    own.overrides = ssl_overrides(own.certs, client_auth)
    return own


def sasl_ssl_overrides(c, users=None):
    """Kafka's broker settings for one SASL_SSL listener with PLAIN, server authentication
    only: the keystore given for the listener (listener.name.sasl_ssl.ssl.…). The
    broker-wide `ssl.client.auth=required` (with a truststore) is there on purpose: Kafka
    (KIP-684) applies only a listener-prefixed ssl.client.auth to SASL_SSL listeners, so
    SASL clients without a certificate must still get in."""
    return [
        ("listener.security.protocol.map", "SASL_SSL:SASL_SSL"),
        ("listener.name.sasl_ssl.ssl.keystore.type", "PEM"),
        ("listener.name.sasl_ssl.ssl.keystore.location", c.broker_pem),
        ("ssl.truststore.type", "PEM"),
        ("ssl.truststore.location", c.ca_pem),
        ("ssl.client.auth", "required"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("listener.name.sasl_ssl.plain.sasl.jaas.config", plain_jaas_config(users)),
    ]


def sasl_ssl_broker(users=None):
    """An OwnBroker with a single SASL_SSL listener (PLAIN, SASL_USERS; certificates in
    own.certs); not started."""
    own = _with_certs(OwnBroker(listener="SASL_SSL"))
    own.overrides = sasl_ssl_overrides(own.certs, users)
    return own


# ---------------------------------------------------------------------------
# SCRAM (issue 16): one SASL_PLAINTEXT listener with SCRAM-SHA-256 and SCRAM-SHA-512, the
# credentials in the broker's metadata (AlterUserScramCredentials), set with the strom CLI
# before the clients run. PLAIN is enabled beside SCRAM for one user only, `admin`, whom
# the CLI logs in as (--command-config): the first credential needs a way in (Kafka's
# `kafka-storage format --add-scram` has no Strom equivalent), and alice and bob have no
# PLAIN password.

SCRAM_USERS = {"alice": ("SCRAM-SHA-512", "alice-secret"), "bob": ("SCRAM-SHA-256", "bob-secret")}
SCRAM_ADMIN = ("admin", "admin-secret")


def scram_overrides(listener="SASL_PLAINTEXT"):
    """Kafka's broker settings for one SASL_PLAINTEXT (or SASL_SSL) listener with PLAIN
    (admin only) and both SCRAM mechanisms."""
    return [
        ("listener.security.protocol.map", "%s:%s" % (listener, listener)),
        ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"),
        ("listener.name.%s.plain.sasl.jaas.config" % listener.lower(), plain_jaas_config(dict([SCRAM_ADMIN]))),
        # Without an authorizer only super users may set credentials.
        ("super.users", "User:%s" % SCRAM_ADMIN[0]),
    ]


def scram_broker(tls=False):
    """An OwnBroker with one SASL_PLAINTEXT listener (PLAIN for SCRAM_ADMIN, SCRAM-SHA-256,
    SCRAM-SHA-512), or with `tls` a SASL_SSL one (certificates in own.certs); not started.
    Start it, then create_scram_users(own)."""
    if not tls:
        return OwnBroker(listener="SASL_PLAINTEXT", overrides=scram_overrides())
    own = _with_certs(OwnBroker(listener="SASL_SSL"))
    own.overrides = scram_overrides("SASL_SSL") + [
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", own.certs.broker_pem),
    ]
    return own


def scram_cli(own, *args):
    """`strom user scram <args> -b <own> --command-config <admin.properties> -o json` as
    SCRAM_ADMIN (PLAIN); fails the scenario unless it exits 0. Returns its stdout."""
    props = os.path.join(own.dir, "admin.properties")
    if not os.path.exists(props):
        with open(props, "w") as f:
            f.write("security.protocol=%s\nsasl.mechanism=PLAIN\n"
                    "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
                    'username="%s" password="%s";\n' % ((own.listener,) + SCRAM_ADMIN))
            if own.listener == "SASL_SSL":
                f.write("ssl.truststore.location=%s\n" % own.certs.ca_pem)
    argv = [own.binary, "user", "scram"] + list(args) + ["-b", own.bootstrap, "--command-config", props, "-o", "json"]
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    except subprocess.TimeoutExpired:
        compat.fail("%s did not exit within 60 s" % " ".join(argv))
    if r.returncode != 0:
        compat.fail("%s exited with %d: %s %s" % (" ".join(argv), r.returncode,
                                                 r.stdout.decode("utf-8", "replace")[-300:],
                                                 r.stderr.decode("utf-8", "replace")[-600:]))
    return r.stdout.decode("utf-8", "replace")


def scram_list(own):
    """`strom user scram list`: {(user, mechanism): iterations}."""
    return {(e["user"], e["mechanism"]): e["iterations"] for e in json.loads(scram_cli(own, "list"))}


def create_scram_users(own, users=None):
    """Sets every SCRAM_USERS credential with `strom user scram set` (4096 iterations) and
    checks that `strom user scram list` shows exactly them. Returns a short description."""
    users = SCRAM_USERS if users is None else users
    for user, (mechanism, password) in users.items():
        scram_cli(own, "set", user, "--mechanism", mechanism, "--password", password)
    want = {(u, m): 4096 for u, (m, _) in users.items()}
    got = scram_list(own)
    if got != want:
        compat.fail("strom user scram list: %s, expected %s" % (got, want))
    compat.log("strom user scram set: %s; list shows them" % ", ".join("%s %s" % (u, m) for u, (m, _) in users.items()))
    return "credentials set with strom user scram set (%s)" % ", ".join("%s %s" % (u, m) for u, (m, _) in users.items())


def delete_scram_user(own, user, users=None):
    """`strom user scram delete <user> --mechanism <its mechanism>`; `list` must then show
    the other users only."""
    users = SCRAM_USERS if users is None else users
    scram_cli(own, "delete", user, "--mechanism", users[user][0])
    want = {(u, m): 4096 for u, (m, _) in users.items() if u != user}
    got = scram_list(own)
    if got != want:
        compat.fail("strom user scram list after deleting %s: %s, expected %s" % (user, got, want))
    compat.log("strom user scram delete %s --mechanism %s; list shows %s" % (user, users[user][0], sorted(got)))


# ---------------------------------------------------------------------------
# OAUTHBEARER (issue 16): one SASL_PLAINTEXT listener with OAUTHBEARER and Kafka's default
# unsecured validator (tokens are unsecured JWTs, alg "none"), which must find the scope
# OAUTH_SCOPE in every token (unsecuredValidatorRequiredScope).

OAUTH_SCOPE = "kafka"


def oauth_overrides():
    return [
        ("listener.security.protocol.map", "SASL_PLAINTEXT:SASL_PLAINTEXT"),
        ("sasl.enabled.mechanisms", "OAUTHBEARER"),
        ("listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config",
         "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
         'unsecuredValidatorRequiredScope="%s";' % OAUTH_SCOPE),
    ]


def oauth_broker():
    """An OwnBroker with one SASL_PLAINTEXT listener (OAUTHBEARER, unsecured validator,
    required scope OAUTH_SCOPE); not started."""
    return OwnBroker(listener="SASL_PLAINTEXT", overrides=oauth_overrides())


def unsecured_jwt(sub, lifetime=3600, scope=OAUTH_SCOPE, alg="none"):
    """An unsecured JWS (RFC 7515 appendix A.5) as Kafka's unsecured login module makes
    it: base64url({"alg":"none"}) "." base64url(claims) "." (empty signature); claims
    `sub`, `exp` (now + lifetime seconds: negative for an expired token), `iat` (a minute
    before the earlier of now and exp),
    `scope` (a JSON array, as librdkafka's and Kafka's builders write it; omitted if None)."""
    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"sub": sub, "iat": min(now, now + lifetime) - 60, "exp": now + lifetime}
    if scope is not None:
        claims["scope"] = [scope]
    return "%s.%s." % (b64({"alg": alg}), b64(claims))


# Schema registry (issue 18): the broker's Confluent-compatible REST listener on a free
# port (scenario `schema-registry`).

def registry_broker():
    """An OwnBroker serving the schema registry; its URL is `.registry_url`. Not started."""
    port = free_port()
    b = OwnBroker(overrides=[("strom.schema.registry.listener", "127.0.0.1:%d" % port)])
    b.registry_url = "http://127.0.0.1:%d" % port
    return b
