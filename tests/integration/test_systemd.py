"""SPEC section 5 "Under systemd it reports readiness and stopping", and packaging.

* config/kvs.service: its settings, and `systemd-analyze verify` (skipped
  when systemd-analyze is not installed: `apt-get install systemd`).
* sd_notify: the node is started with NOTIFY_SOCKET naming a unix datagram
  socket the test owns, playing systemd: READY=1 once /health answers,
  STOPPING=1 at SIGTERM, WATCHDOG=1 at least every half WATCHDOG_USEC.
* `make install DESTDIR=... PREFIX=/usr` and `make uninstall`.
"""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from conftest import REPO

UNIT = REPO / "config" / "kvs.service"
EXAMPLE_CONFIG = REPO / "config" / "kvs.yaml"


# ---------------------------------------------------------------- helpers


def unit_settings(text):
    """{(section, key): [values]} of a unit file (comments and blanks skipped)."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        out.setdefault((section, key.strip()), []).append(value.strip())
    return out


class NotifySocket:
    """A unix datagram socket standing in for systemd's notify socket.

    Keeps every datagram received as a dict {"time", "fields"} where fields
    maps each VAR of "VAR=value" lines to its value (a repeated VAR keeps
    the last one, as systemd does).
    """

    def __init__(self):
        # sun_path holds 108 bytes: pytest's tmp_path can be longer than that.
        self.dir = tempfile.mkdtemp(prefix="kvsn-", dir="/tmp")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        fields = {}
        for line in data.decode("utf-8", "replace").split("\n"):
            if "=" in line:
                k, _, v = line.partition("=")
                fields[k] = v
        msg = {"time": time.monotonic(), "fields": fields, "raw": data}
        self.messages.append(msg)
        return msg

    def wait_for(self, var, value=None, timeout=10.0):
        """The first message (already received or arriving within timeout)
        setting var (to value, if given); AssertionError at the deadline."""
        def match(m):
            return var in m["fields"] and (value is None or m["fields"][var] == value)

        for m in self.messages:
            if match(m):
                return m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {var}{'=' + value if value else ''} within {timeout}s; "
                                     f"got {[m['raw'] for m in self.messages]}")
            m = self._recv(left)
            if m is not None and match(m):
                return m

    def collect(self, seconds):
        """Receives for seconds; returns the messages that arrived meanwhile."""
        start = len(self.messages)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._recv(left)
        return self.messages[start:]


@pytest.fixture
def notify_socket():
    ns = NotifySocket()
    yield ns
    ns.close()


def notify_node(node_factory, notify_socket, **env):
    """A node (not started) whose environment holds only the notify variables given."""
    n = node_factory.create("n1")
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        n.env.pop(k, None)  # whatever the test runner itself was started with
    n.env["NOTIFY_SOCKET"] = notify_socket.path
    n.env.update(env)
    return n


# ---------------------------------------------------------------- the unit file


def test_unit_settings():
    s = unit_settings(UNIT.read_text())
    svc = lambda k: s.get(("Service", k))  # noqa: E731
    assert svc("Type") == ["notify"]
    assert svc("NotifyAccess") == ["main"]
    assert svc("ExecStart") == ["/usr/local/bin/kvs /etc/kvs/kvs.yaml"]
    assert svc("WatchdogSec") == ["30"]
    assert svc("Restart") == ["on-failure"]
    assert svc("KillSignal") == ["SIGTERM"]
    assert svc("DynamicUser") == ["yes"]
    assert svc("StateDirectory") == ["kvs"]
    assert svc("ConfigurationDirectory") == ["kvs"]
    assert svc("WorkingDirectory") == ["/var/lib/kvs"]
    assert svc("ProtectSystem") == ["strict"]
    assert "AF_UNIX" in svc("RestrictAddressFamilies")[0].split()  # the notify socket
    assert s.get(("Install", "WantedBy")) == ["multi-user.target"]


def test_unit_verifies(tmp_path, kvs_bin):
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze not installed (Debian package `systemd`): "
                    "config/kvs.service not verified")
    cfg = tmp_path / "kvs.yaml"
    shutil.copy(EXAMPLE_CONFIG, cfg)
    # verify insists that ExecStart's binary exists: point it at the build.
    text = re.sub(r"(?m)^ExecStart=.*$", f"ExecStart={kvs_bin} {cfg}", UNIT.read_text())
    unit = tmp_path / "kvs.service"
    unit.write_text(text)
    r = subprocess.run([exe, "verify", "--man=no", str(unit)], capture_output=True,
                       text=True, timeout=60)
    # verify exits 0 on unknown keys and bad values, only warning on stderr:
    # any line naming the unit counts as a failure.
    about_unit = [line for line in (r.stdout + r.stderr).splitlines()
                  if "kvs.service" in line or str(tmp_path) in line]
    assert r.returncode == 0 and not about_unit, \
        f"systemd-analyze verify: rc={r.returncode}\n{r.stdout}{r.stderr}"


# ---------------------------------------------------------------- sd_notify


def test_notify_ready_and_stopping(node_factory, notify_socket):
    n = notify_node(node_factory, notify_socket)
    n.start(wait=False)
    ready = notify_socket.wait_for("READY", "1", timeout=15.0)
    # READY=1 promises a serving node: /health must answer at once, no retry.
    r = requests.get(n.url("/health"), timeout=5.0)
    assert r.status_code == 200, r.text
    mode = r.json()["mode"]
    assert ready["fields"].get("STATUS") == f"serving, mode {mode}", ready["raw"]
    assert n.running()

    os.kill(n.pid, signal.SIGTERM)
    stopping = notify_socket.wait_for("STOPPING", "1", timeout=10.0)
    assert stopping["time"] >= ready["time"]
    assert n.wait_exit(15.0) == 0, n.log_tail()
    assert len([m for m in notify_socket.messages if "READY" in m["fields"]]) == 1


def test_notify_read_only_mode_in_status(node_factory, notify_socket):
    n = notify_node(node_factory, notify_socket)
    n.config["read_only"] = True
    n.start()
    ready = notify_socket.wait_for("READY", "1", timeout=10.0)
    assert ready["fields"].get("STATUS") == "serving, mode read-only", ready["raw"]
    assert n.stop() == 0


def test_notify_socket_missing_is_harmless(node_factory, tmp_path):
    """A NOTIFY_SOCKET nobody listens on: the node serves and stops as usual."""
    n = node_factory.create("n1")
    for k in ("WATCHDOG_USEC", "WATCHDOG_PID"):
        n.env.pop(k, None)
    n.env["NOTIFY_SOCKET"] = str(tmp_path / "nobody-listens")
    n.start()
    n.put_json("a", 1)
    assert n.get_json("a") == 1
    assert n.stop() == 0


@pytest.mark.timeout_s(60)
def test_watchdog_pings(node_factory, notify_socket):
    """WATCHDOG_USEC=2 s: a ping at least every second, so >= 2 within 4 s.

    WATCHDOG_PID is left unset: it must equal the node's PID, unknown before
    exec, and sd_watchdog_enabled() accepts its absence."""
    n = notify_node(node_factory, notify_socket, WATCHDOG_USEC="2000000")
    n.start()
    notify_socket.wait_for("READY", "1", timeout=10.0)
    got = notify_socket.collect(4.0)
    pings = [m for m in got if m["fields"].get("WATCHDOG") == "1"]
    assert len(pings) >= 2, f"{len(pings)} WATCHDOG=1 in 4 s; got {[m['raw'] for m in got]}"
    # never more than half the interval apart (+ slack for a loaded machine)
    times = [m["time"] for m in pings]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g <= 1.5 for g in gaps), gaps
    assert n.stop() == 0


def test_watchdog_for_another_pid_is_ignored(node_factory, notify_socket):
    """WATCHDOG_PID naming another process: the variables are not for us."""
    n = notify_node(node_factory, notify_socket, WATCHDOG_USEC="2000000",
                    WATCHDOG_PID=str(os.getpid()))
    n.start()
    notify_socket.wait_for("READY", "1", timeout=10.0)
    got = notify_socket.collect(2.5)
    assert not [m for m in got if "WATCHDOG" in m["fields"]], [m["raw"] for m in got]
    assert n.stop() == 0


# ---------------------------------------------------------------- make install


def make(*args, kvs_bin):
    """Runs make in the repository against the binary under test, never rebuilding it
    (-o: other files of the tree may be mid-edit)."""
    build = Path(kvs_bin).parent
    cmd = ["make", "--no-print-directory", "-C", str(REPO), f"BUILD={build}",
           "-o", str(build / "kvs")] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{' '.join(cmd)}: rc={r.returncode}\n{r.stdout}{r.stderr}"
    return r


def mode_of(p):
    return stat.S_IMODE(p.stat().st_mode)


def test_make_install_and_uninstall(tmp_path, kvs_bin):
    if Path(kvs_bin).name != "kvs":
        pytest.skip(f"make install needs a binary named kvs, KVS_BIN is {kvs_bin}")
    root = tmp_path / "root"
    args = [f"DESTDIR={root}", "PREFIX=/usr"]
    make("install", *args, kvs_bin=kvs_bin)

    binary = root / "usr/bin/kvs"
    unit = root / "lib/systemd/system/kvs.service"
    example = root / "usr/share/doc/kvs/kvs.yaml.example"
    etc_cfg = root / "etc/kvs/kvs.yaml"
    manpage = root / "usr/share/man/man1/kvs.1"

    assert binary.read_bytes() == Path(kvs_bin).read_bytes()
    assert manpage.read_text() == (REPO / "man" / "kvs.1").read_text()
    assert mode_of(binary) == 0o755
    assert mode_of(unit) == 0o644

    # the unit is the shipped one with ExecStart moved to PREFIX, nothing else
    src, dst = UNIT.read_text().splitlines(), unit.read_text().splitlines()
    assert len(src) == len(dst)
    changed = [(a, b) for a, b in zip(src, dst) if a != b]
    assert changed == [("ExecStart=/usr/local/bin/kvs /etc/kvs/kvs.yaml",
                        "ExecStart=/usr/bin/kvs /etc/kvs/kvs.yaml")], changed

    assert example.read_text() == EXAMPLE_CONFIG.read_text()

    # /etc/kvs/kvs.yaml: valid, data in the unit's state directory
    r = subprocess.run([str(kvs_bin), "--check-config", str(etc_cfg)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert re.search(r'(?m)^data_dir: "?/var/lib/kvs/data"?$', r.stdout), r.stdout

    # a second install never overwrites the user's config
    etc_cfg.write_text("# mine\nport: 9999\n")
    make("install", *args, kvs_bin=kvs_bin)
    assert etc_cfg.read_text() == "# mine\nport: 9999\n"

    data = root / "var/lib/kvs/data"
    data.mkdir(parents=True)
    (data / "CURRENT").write_text("x")

    make("uninstall", *args, kvs_bin=kvs_bin)
    assert not binary.exists()
    assert not unit.exists()
    assert not example.exists()
    assert not manpage.exists()
    assert etc_cfg.read_text() == "# mine\nport: 9999\n"   # the user's config stays
    assert (data / "CURRENT").read_text() == "x"            # and so does the data
