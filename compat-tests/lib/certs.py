#!/usr/bin/env python3
"""Test certificates for the TLS scenarios (issue 16), made with the `openssl` command
(stdlib only; Debian's openssl package).

`generate(directory)` writes, fresh for every run (RSA 2048, valid 30 days, all
X.509 v3: rustls/webpki refuses v1 certificates, which `openssl x509 -req` makes unless
it is given extensions):

  ca.pem, ca.key                 the test CA (CN=strom-test-ca), the broker's truststore
                                 and the clients' ssl.ca.location
  broker.key, broker.crt         CN=localhost, subjectAltName DNS:localhost, IP:127.0.0.1,
                                 extendedKeyUsage serverAuth, signed by the CA
  broker.pem                     broker.key + broker.crt: the broker's PEM keystore
                                 (ssl.keystore.location)
  alice.key, alice.crt           client certificate /C=SE/O=Strom/OU=eng/CN=alice
                                 (extendedKeyUsage clientAuth), signed by the CA
  alice.pem                      alice.key + alice.crt (for clients taking one file)
  rogue-ca.pem, rogue-ca.key     a second CA the broker does not trust: an impostor with the
                                 test CA's name (CN=strom-test-ca) and its own key, so only
                                 the signature tells them apart (see below)
  mallory.key, mallory.crt       /C=SE/O=Strom/OU=eng/CN=mallory, signed by the rogue CA
  mallory.pem                    mallory.key + mallory.crt

Why the rogue CA has the real one's name: when the broker asks for a client certificate
it names the CAs it trusts, and librdkafka 2.16 (confluent-kafka) then sends a
certificate only if its issuer is among them ("No matching issuer found in server trusted
certificate authorities, not sending any client certificates"): a rogue CA with a name of
its own would only repeat the no-certificate case. With the same name the certificate is
sent and the broker has to refuse it on its signature.

Run as a script (`python3 certs.py DIR`) it generates into DIR and prints the paths as
JSON: kafkajs/broker.js uses it that way.
"""

import json
import os
import subprocess
import sys

DAYS = "30"
CA_NAME = "strom-test-ca"
BROKER_SUBJECT = "/CN=localhost"
BROKER_SAN = "DNS:localhost,IP:127.0.0.1"
ALICE_SUBJECT = "/C=SE/O=Strom/OU=eng/CN=alice"
MALLORY_SUBJECT = "/C=SE/O=Strom/OU=eng/CN=mallory"
# The client certificates' subjects as Kafka writes them (RFC 2253, last RDN first): the
# principal an ssl.principal.mapping.rules DEFAULT rule gives.
ALICE_DN = "CN=alice,OU=eng,O=Strom,C=SE"


class Certs:
    """Paths of the generated files (attributes named as the files, `-` as `_`)."""

    def __init__(self, directory):
        self.dir = directory
        for name in ("ca.pem", "ca.key", "broker.key", "broker.crt", "broker.pem", "alice.key", "alice.crt",
                     "alice.pem", "rogue-ca.pem", "rogue-ca.key", "mallory.key", "mallory.crt", "mallory.pem"):
            setattr(self, name.replace(".", "_").replace("-", "_"), os.path.join(directory, name))

    def as_dict(self):
        return {k: v for k, v in vars(self).items() if k != "dir"}


def _openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                           r.stdout.decode("utf-8", "replace")[-800:]))


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _cat(out, *parts):
    with open(out, "wb") as o:
        for p in parts:
            with open(p, "rb") as f:
                o.write(f.read())


def _ca(d, name, cn):
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".pem",
             "-days", DAYS, "-subj", "/CN=" + cn, cwd=d)


def _leaf(d, name, subject, ca, extensions):
    """A key and a CSR for `subject`, signed by CA `ca` (files ca.pem/ca.key) with the
    given v3 extensions; name.pem = key + certificate."""
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
             "-subj", subject, cwd=d)
    _write(os.path.join(d, name + ".ext"), "\n".join(extensions) + "\n")
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key", "-CAcreateserial",
             "-out", name + ".crt", "-days", DAYS, "-sha256", "-extfile", name + ".ext", cwd=d)
    _cat(os.path.join(d, name + ".pem"), os.path.join(d, name + ".key"), os.path.join(d, name + ".crt"))


def generate(directory):
    """Generates the files listed in the module doc into `directory` (created if needed);
    returns a Certs with their paths. Raises RuntimeError when openssl fails."""
    os.makedirs(directory, exist_ok=True)
    d = directory
    _ca(d, "ca", CA_NAME)
    _ca(d, "rogue-ca", CA_NAME)  # the impostor: same name, own key
    _leaf(d, "broker", BROKER_SUBJECT, "ca", [
        "basicConstraints=CA:FALSE",
        "keyUsage=digitalSignature,keyEncipherment",
        "extendedKeyUsage=serverAuth",
        "subjectAltName=" + BROKER_SAN,
    ])
    client = ["basicConstraints=CA:FALSE", "keyUsage=digitalSignature,keyEncipherment", "extendedKeyUsage=clientAuth"]
    _leaf(d, "alice", ALICE_SUBJECT, "ca", client)
    _leaf(d, "mallory", MALLORY_SUBJECT, "rogue-ca", client)
    return Certs(d)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: certs.py DIR  (generates the test certificates into DIR, prints their paths as JSON)")
    print(json.dumps(generate(sys.argv[1]).as_dict()))
