"""
Black-box integration harness for kvs: real processes on loopback ports.

Reusable pieces (import them from tests as ``from conftest import ...``):

* ``free_port()``           a loopback port no other test of this session got.
* ``Node``                  one kvs process: config file, data dir, log file,
                            start / wait_ready / stop / kill / restart, HTTP helpers.
* ``NodeFactory``           creates nodes (and whole clusters) and stops every one
                            of them, by PID, when its fixture ends.
* ``wait_until(fn, ...)``   poll with a deadline instead of sleeping.
* ``raw_http(...)``         send exact request bytes over a socket (no client
                            library normalising paths or headers).
* ``parse_metrics(text)``   Prometheus text -> list of (name, labels, value).

Fixtures: ``kvs_bin``, ``node_factory`` (function scope), ``module_factory``
(module scope, for read-mostly tests sharing one node), ``node`` (one started
node with a fresh data dir).

Environment: KVS_BIN (default <repo>/build/kvs), KVS_TEST_LOG_LEVEL (default
info), KVS_TEST_TIMEOUT (seconds per test, default 120).

Every node started is registered in a process-wide table; the factory that
created it stops it (SIGTERM, then SIGKILL after 10 s) when its fixture ends,
and a session finaliser kills anything left.  When a test fails, the tail of
the log of every node still registered is attached to the report.
"""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "build" / "kvs"
LOG_LEVEL = os.environ.get("KVS_TEST_LOG_LEVEL", "info")
TEST_TIMEOUT = float(os.environ.get("KVS_TEST_TIMEOUT", "120"))
HTTP_TIMEOUT = 10.0  # seconds, for every request a test makes

UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


# Intervals of seconds, so clusters in tests converge while the test waits.
# Test files start from this and override what they need.
FAST_INTERVALS = {
    "gossip_interval_min": 1,
    "gossip_interval_max": 2,
    "probe_interval": 1,
    "sync_interval": 2,
    "catchup_interval": 2,
    "anti_entropy_interval": 2,
    "failure_timeout": 30,
    "removal_timeout": 60,
    "throttle_delay_ms": 10,
    "fetch_delay_ms": 5,
}


def kvs_bin_path():
    return Path(os.environ.get("KVS_BIN", str(DEFAULT_BIN))).resolve()


def now_ms():
    return int(time.time() * 1000)


# --------------------------------------------------------------------------
# waiting

def wait_until(fn, timeout=10.0, interval=0.05, msg=None):
    """Calls fn() until it returns something truthy, and returns that value.

    Exceptions raised by fn count as "not yet" (connection refused while a
    node starts, ...); the last one is named in the AssertionError raised at
    the deadline.
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = fn()
            if v:
                return v
            last_exc = None
        except (AssertionError, OSError, ValueError, KeyError,
                requests.RequestException, http.client.HTTPException) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            text = msg or getattr(fn, "__name__", "condition")
            if last_exc is not None:
                text += f" (last error: {last_exc!r})"
            raise AssertionError(f"timed out after {timeout}s waiting for: {text}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# ports

_used_ports = set()


def free_port(host="127.0.0.1"):
    """A loopback port free right now and never handed out before in this session."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _used_ports:
            _used_ports.add(port)
            return port
    raise RuntimeError("no free port found")


def port_is_free(port, host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


# --------------------------------------------------------------------------
# config files

def yaml_scalar(v):
    """JSON is a subset of YAML flow syntax: emit every value as JSON."""
    return json.dumps(v, ensure_ascii=False)


def write_config(path, cfg):
    """Writes the dict cfg as a YAML mapping, one key per line, in dict order.

    A value of None omits the key (to test defaults).  Lists become flow
    sequences.  Returns {key: line_number} (1-based), handy for tests of
    config error messages.
    """
    lines = ["# written by tests/integration/conftest.py"]
    where = {}
    for k, v in cfg.items():
        if v is None:
            continue
        where[k] = len(lines) + 1
        lines.append(f"{k}: {yaml_scalar(v)}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return where


# --------------------------------------------------------------------------
# raw HTTP

class RawResponse:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage: case-insensitive get()
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<RawResponse {self.status} {self.reason} {self.body[:200]!r}>"


def raw_http(port, data, host="127.0.0.1", timeout=HTTP_TIMEOUT, method=None):
    """Sends the exact bytes data (a whole request) and parses one response.

    method is the request method when it cannot be read from data (HEAD
    responses have no body).  Returns RawResponse; raises on a connection
    closed without a response.
    """
    if method is None:
        method = data.split(b" ", 1)[0].decode("latin-1")
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.sendall(data)
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        body = resp.read()
        return RawResponse(resp.status, resp.reason, resp.msg, body)
    finally:
        sock.close()


def raw_request(port, method, path, body=None, headers=None, host="127.0.0.1",
                timeout=HTTP_TIMEOUT, content_length=True):
    """Builds a request with path sent verbatim (bytes or str with latin-1).

    body: bytes or None.  content_length=False omits the header.
    """
    if isinstance(path, str):
        path = path.encode("latin-1")
    h = {"Host": f"{host}:{port}", "Connection": "close"}
    if body is not None and content_length:
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    head = method.encode() + b" " + path + b" HTTP/1.1\r\n"
    for k, v in h.items():
        head += f"{k}: {v}\r\n".encode("latin-1")
    head += b"\r\n"
    return raw_http(port, head + (body or b""), host=host, timeout=timeout, method=method)


# --------------------------------------------------------------------------
# metrics

_METRIC_RE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text format -> list of (name, {labels}, float).

    Raises ValueError on a sample line that does not parse.
    """
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _METRIC_RE.match(line)
        if not m:
            raise ValueError(f"bad metrics line: {line!r}")
        labels = dict(_LABEL_RE.findall(m.group(3) or ""))
        out.append((m.group(1), labels, float(m.group(4))))
    return out


def wait_members(nodes, timeout=30.0, normal=False):
    """Waits until every node lists every node of nodes as alive (and, with
    normal=True, is itself in normal mode)."""
    ids = {n.node_id for n in nodes}

    def ok():
        for n in nodes:
            alive = {m["id"] for m in n.members() if m["status"] == "alive"}
            if not ids <= alive or (normal and n.health()["mode"] != "normal"):
                return False
        return True
    wait_until(ok, timeout=timeout, interval=0.1, msg=f"{sorted(ids)} alive on every node")


# Under a sanitizer freed memory stays in a quarantine (ASan) or shadow
# (TSan): RSS says nothing about the node's own use.  Memory bounds are
# checked only in plain builds; the rest of such tests still runs.
MEMORY_MEASURABLE = not os.environ.get("KVS_SANITIZER")


def start_and_join(nodes, timeout=30.0):
    """Starts nodes (configured, not running) together, waits until each
    serves and all see each other alive; returns nodes."""
    for n in nodes:
        n.start(wait=False)
    for n in nodes:
        n.wait_ready(timeout)
    wait_members(nodes, timeout)
    # joined nodes bootstrap before they take writes: wait for that too
    wait_until(lambda: all(n.health()["mode"] == "normal" for n in nodes), timeout,
               msg="every node in mode normal")
    return nodes


# --------------------------------------------------------------------------
# nodes

_live_nodes = []  # every Node whose process may still run


class NodeError(AssertionError):
    pass


class Node:
    """One kvs process with its own directory, config file, data dir and log.

    The config is written at each start() from self.config (a dict; None
    values are left out), so tests may change self.config between restarts.
    """

    # what a failed request raises (wait_ready retries on these)
    http_errors = (requests.RequestException,)

    def __init__(self, kvs_bin, workdir, node_id="n1", port=None, seeds=None,
                 extra=None, log_level=None, env=None, cwd=None):
        self.kvs_bin = str(kvs_bin)
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.node_id = node_id
        self.port = port or free_port()
        self.config_path = self.dir / "config.yaml"
        self.log_path = self.dir / "node.log"
        self.data_dir = self.dir / "data"
        self.config = {
            "node_id": node_id,
            "bind_address": "127.0.0.1",
            "port": self.port,
            "data_dir": str(self.data_dir),
            "log_level": log_level or LOG_LEVEL,
            "seed_nodes": list(seeds or []),
        }
        self.config.update(extra or {})
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.cwd = str(cwd or self.dir)
        self.proc = None
        self.starts = 0
        self.write_config_file = True  # False: keep a hand-written config.yaml
        self._http = None

    # ---- identity ---------------------------------------------------------

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def url(self, path="/"):
        if not path.startswith("/"):
            path = "/" + path
        return f"http://127.0.0.1:{self.port}{path}"

    def __repr__(self):
        return f"<Node {self.node_id} :{self.port} pid={self.pid}>"

    # ---- process ------------------------------------------------------------

    def start(self, wait=True, timeout=15.0, args=None):
        """Writes the config and starts the process; wait=True waits for /health 200."""
        if self.running():
            raise NodeError(f"{self} already running")
        if self.write_config_file:
            write_config(self.config_path, self.config)
        logf = open(self.log_path, "ab")
        self.starts += 1
        logf.write(f"\n===== test harness: start #{self.starts} at {time.time():.3f} =====\n".encode())
        logf.flush()
        cmd = [self.kvs_bin] + (list(args) if args is not None else [str(self.config_path)])
        try:
            self.proc = subprocess.Popen(
                cmd, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            logf.close()
        if self not in _live_nodes:
            _live_nodes.append(self)
        self._reset_http()
        if wait:
            self.wait_ready(timeout)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def returncode(self):
        return None if self.proc is None else self.proc.poll()

    def wait_ready(self, timeout=15.0):
        """Polls GET /health until 200; fails early if the process exits."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rc = self.returncode()
            if rc is not None:
                raise NodeError(f"{self} exited with {rc} before it was ready\n"
                                f"--- log tail ---\n{self.log_tail()}")
            try:
                r = self.get("/health", timeout=1.0)
                if r.status_code == 200:
                    return r.json()
                last = f"status {r.status_code}: {r.text[:200]}"
            except self.http_errors as e:
                last = repr(e)
            time.sleep(0.05)
        raise NodeError(f"{self} not ready after {timeout}s (last: {last})\n"
                        f"--- log tail ---\n{self.log_tail()}")

    def wait_exit(self, timeout=10.0):
        """Waits for the process to end; returns its exit code or None on timeout."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def send_signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def stop(self, timeout=10.0, sig=signal.SIGTERM):
        """SIGTERM (or sig) and wait.  Returns the exit code.

        If the process does not end within timeout it is SIGKILLed and
        NodeError is raised.  A process that already ended just reports its code.
        """
        self._reset_http()
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        os.kill(self.proc.pid, sig)
        rc = self.wait_exit(timeout)
        if rc is None:
            self.kill()
            raise NodeError(f"{self} did not exit within {timeout}s of {signal.Signals(sig).name}"
                            f"; killed\n--- log tail ---\n{self.log_tail()}")
        return rc

    def kill(self):
        """SIGKILL and reap.  Returns the exit code (-9)."""
        self._reset_http()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return self.proc.wait(timeout=30)

    def restart(self, wait=True, timeout=15.0, stop_timeout=10.0):
        """Stops (SIGTERM) if running, then starts again on the same config and data."""
        if self.running():
            self.stop(stop_timeout)
        return self.start(wait=wait, timeout=timeout)

    def cleanup(self):
        """Finaliser: SIGTERM, SIGKILL after 10 s.  Never raises."""
        try:
            if self.running():
                os.kill(self.proc.pid, signal.SIGTERM)
                if self.wait_exit(10.0) is None:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=30)
        except Exception:
            pass
        self._reset_http()

    # ---- logs ---------------------------------------------------------------

    def log_text(self):
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])

    # ---- HTTP helpers (one keep-alive session per node) -------------------

    def _reset_http(self):
        if self._http is not None:
            self._http.close()
        self._http = None

    @property
    def http(self):
        if self._http is None:
            self._http = requests.Session()
        return self._http

    def request(self, method, path, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return self.http.request(method, self.url(path), **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)

    def put(self, path, data=None, **kw):
        if data is not None and isinstance(data, str):
            data = data.encode("utf-8")
        return self.request("PUT", path, data=data, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def put_json(self, key, value):
        """PUT /kv/key with json.dumps(value); asserts 200 and returns {"uuid","timestamp"}."""
        r = self.put("/kv/" + key, json.dumps(value))
        assert r.status_code == 200, f"PUT /kv/{key}: {r.status_code} {r.text}"
        return r.json()

    def get_json(self, key):
        """GET /kv/key parsed, or None on 404."""
        r = self.get("/kv/" + key)
        if r.status_code == 404:
            return None
        assert r.status_code == 200, f"GET /kv/{key}: {r.status_code} {r.text}"
        return r.json()

    def health(self):
        r = self.get("/health")
        assert r.status_code == 200, r.text
        return r.json()

    def members(self):
        r = self.get("/members/")
        assert r.status_code == 200, r.text
        return r.json()

    def list_all(self, prefix="", limit=1000, values=False):
        """Walks every listing page under prefix; returns keys (or items with values=True)."""
        out, after = [], None
        for _ in range(100000):
            params = {"limit": str(limit)}
            if after is not None:
                params["after"] = after
            if values:
                params["values"] = "true"
            r = self.get("/kv/" + prefix, params=params)
            assert r.status_code == 200, r.text
            page = r.json()
            out.extend(page["items"] if values else page["keys"])
            after = page["next"]
            if after is None:
                return out
        raise AssertionError("listing never ended")


class NodeFactory:
    """Creates nodes under one base directory and stops all of them at the end."""

    def __init__(self, kvs_bin, base):
        self.kvs_bin = kvs_bin
        self.base = Path(base)
        self.nodes = []

    def create(self, node_id=None, **kw):
        """A Node, not started.  kw: port, seeds, extra, log_level, env, cwd."""
        node_id = node_id or f"n{len(self.nodes) + 1}"
        n = Node(self.kvs_bin, self.base / node_id, node_id=node_id, **kw)
        self.nodes.append(n)
        return n

    def start(self, node_id=None, wait=True, timeout=15.0, **kw):
        """A started node (by default waits until /health answers 200)."""
        return self.create(node_id, **kw).start(wait=wait, timeout=timeout)

    def cluster(self, count, extra=None, seeds="first", start=True, wait=True,
                timeout=30.0, prefix="n"):
        """count nodes whose ports are known before any starts.

        seeds: "first" (every node but the first seeds from the first),
        "all" (every node lists every other), "none", or a callable
        (index, nodes) -> list of "host:port".
        """
        nodes = [self.create(f"{prefix}{len(self.nodes) + 1}", extra=dict(extra or {}))
                 for _ in range(count)]
        for i, n in enumerate(nodes):
            if callable(seeds):
                s = seeds(i, nodes)
            elif seeds == "first":
                s = [] if i == 0 else [nodes[0].address]
            elif seeds == "all":
                s = [m.address for m in nodes if m is not n]
            else:
                s = []
            n.config["seed_nodes"] = s
        if start:
            for n in nodes:
                n.start(wait=False)
            if wait:
                for n in nodes:
                    n.wait_ready(timeout)
        return nodes

    def stop_all(self):
        """SIGTERM to every running node at once, then reap; SIGKILL after 10 s."""
        for n in self.nodes:
            try:
                n.send_signal(signal.SIGTERM)
            except OSError:
                pass
        deadline = time.monotonic() + 10.0
        for n in self.nodes:
            if n.wait_exit(max(0.0, deadline - time.monotonic())) is None:
                n.kill()
            n.cleanup()
            if n in _live_nodes:
                _live_nodes.remove(n)


# --------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="session")
def kvs_bin():
    p = kvs_bin_path()
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"kvs binary not found at {p}: run `make all` or set KVS_BIN", pytrace=False)
    return p


@pytest.fixture(scope="session", autouse=True)
def _kill_leftovers():
    yield
    for n in list(_live_nodes):
        n.cleanup()
    _live_nodes.clear()


@pytest.fixture
def node_factory(kvs_bin, tmp_path):
    f = NodeFactory(kvs_bin, tmp_path / "nodes")
    yield f
    f.stop_all()


@pytest.fixture(scope="module")
def module_factory(kvs_bin, tmp_path_factory):
    f = NodeFactory(kvs_bin, tmp_path_factory.mktemp("module_nodes"))
    yield f
    f.stop_all()


@pytest.fixture
def node(node_factory):
    """One started standalone node with a fresh data dir."""
    return node_factory.start("n1")


# --------------------------------------------------------------------------
# per-test deadline and log tails on failure

class _TestDeadline(Exception):
    pass


@pytest.fixture(autouse=True)
def _test_deadline(request):
    marker = request.node.get_closest_marker("timeout_s")
    limit = float(marker.args[0]) if marker else TEST_TIMEOUT

    def on_alarm(signum, frame):
        raise _TestDeadline(f"test exceeded {limit}s (KVS_TEST_TIMEOUT / @pytest.mark.timeout_s)")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout_s(seconds): per-test deadline (default 120)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call") and _live_nodes:
        parts = []
        for n in _live_nodes:
            rc = n.returncode()
            state = "running" if rc is None else f"exited {rc}"
            parts.append(f"----- {n.node_id} port {n.port} ({state}) {n.log_path} -----\n"
                         f"{n.log_tail(40)}")
        rep.sections.append(("kvs node logs (tail)", "\n".join(parts)))


# --------------------------------------------------------------------------
# small assertion helpers shared by test files

def assert_json_error(r, status=None, statuses=None):
    """r (requests.Response or RawResponse) is a JSON {"error": "..."} with the status."""
    code = getattr(r, "status_code", None) or getattr(r, "status", None)
    body = r.content if hasattr(r, "content") else r.body
    if status is not None:
        assert code == status, f"expected {status}, got {code}: {body[:300]!r}"
    if statuses is not None:
        assert code in statuses, f"expected one of {statuses}, got {code}: {body[:300]!r}"
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), f"error Content-Type {ctype!r}, body {body[:300]!r}"
    try:
        doc = json.loads(body)
    except ValueError:
        raise AssertionError(f"error body is not JSON: {body[:300]!r}")
    assert isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"], \
        f"error body lacks a non-empty \"error\" string: {doc!r}"
    return doc


def snapshot(node):
    """Every item of the node (key, uuid, timestamp, value) for before/after comparisons."""
    return [(i["key"], i["uuid"], i["timestamp"], json.dumps(i["value"], sort_keys=True))
            for i in node.list_all(values=True)]
