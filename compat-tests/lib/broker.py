"""A strom broker owned by one scenario, for scenarios that restart the broker.

The runner passes the binary as STROM_BIN. Against an external broker
(--bootstrap) there is no binary, so such scenarios report "unsupported".
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import compat


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnBroker:
    """Starts strom on a fixed free port with its own data dir; restart keeps both."""

    def __init__(self, extra_args=()):
        self.binary = os.environ.get("STROM_BIN")
        if not self.binary:
            compat.unsupported("needs its own broker (STROM_BIN), not available with --bootstrap")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="strom-own-")
        self.extra = list(extra_args)
        self.proc = None
        self.log = open(os.path.join(self.dir, "strom.log"), "ab")

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=20):
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--listeners", "PLAINTEXT://127.0.0.1:%d" % self.port,
             "--log-dirs", os.path.join(self.dir, "data"),
             # Never the default 9644: other brokers (the runner's, a user's) may hold it.
             "--override", "strom.http.listener=127.0.0.1:0"] + self.extra,
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
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

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
