"""
kvsctl and libkvs (SPEC section 13, issue 21) against real nodes.

What is checked, each through the real kvsctl binary (built next to kvs):

* every command (get, put, rm, ls, watch, txn, members, health, status,
  snapshot save, shell) and each output format (-o table, json, value);
* exit status exactly as SPEC section 13: 0 ok, 1 not found, 2 usage,
  3 precondition failed, 4 no endpoint reachable, 5 refused (401/403);
* bad input (unknown command or option, missing argument, bad TTL, bad -o,
  unreadable file, bad endpoint list) gives one clear line and exit 2, and
  writes nothing;
* failover: the first endpoint dead, get and put go to the next; a 4xx is
  never retried on another endpoint; a hung (SIGSTOPped) node: a GET times
  out to the next endpoint, a sent PUT is not resent; a watch whose node is killed -9 in the
  middle of a stream of writes resumes on the next endpoint and prints every
  event exactly once;
* the shell through a pseudo-terminal: put, get, the up arrow (history),
  Tab completion, the history file;
* `make install DESTDIR=...`: a program linked against the installed libkvs
  through its pkg-config file works against a node; `make uninstall` removes
  what was installed; examples/config_watch (built by `make all`) follows a
  prefix.

Every kvsctl run has a timeout; nodes come from the conftest factories, so
they are stopped by PID even when a test fails.
"""

import json
import os
import pty
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (FAST_INTERVALS, REPO, free_port, kvs_bin_path, wait_members, wait_until,
                      write_config)
from test_security import TLSNode, pki  # noqa: F401  (pki is a fixture: a throwaway CA)

BUILD = kvs_bin_path().parent
KVSCTL = Path(os.environ.get("KVSCTL_BIN", str(BUILD / "kvsctl")))
SECRET = "kvsctl-test-cluster-secret-0123"
READ_TOKEN = "read-token-kvsctl-0123456789"
WRITE_TOKEN = "write-token-kvsctl-0123456789"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture(scope="module", autouse=True)
def _kvsctl_built():
    if not KVSCTL.is_file():
        pytest.fail(f"kvsctl not found at {KVSCTL}: run `make all`", pytrace=False)


def ctl(*args, endpoints=None, stdin=None, env=None, timeout=20):
    """Runs kvsctl; returns CompletedProcess (text)."""
    e = {k: v for k, v in os.environ.items() if k not in ("KVS_ENDPOINTS", "KVS_TOKEN")}
    if endpoints:
        e["KVS_ENDPOINTS"] = endpoints
    e.update(env or {})
    return subprocess.run([str(KVSCTL), *args], input=stdin, capture_output=True, text=True,
                          env=e, timeout=timeout)


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr}"
    return r.stdout


def dead_endpoint():
    """host:port on loopback where nothing listens."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def one(module_factory):
    return module_factory.start("c1")


# --------------------------------------------------------------------------
# key/value commands and output formats

def test_put_get_formats(one, tmp_path):
    ep = one.address
    put = json.loads(ok(ctl("put", "fmt/a", '{"x": 1}', "-o", "json", endpoints=ep)))
    assert put["key"] == "fmt/a" and UUID_RE.match(put["uuid"]) and put["expires"] is None
    assert ok(ctl("get", "fmt/a", endpoints=ep)) == '{"x": 1}\n'     # stored byte for byte
    got = json.loads(ok(ctl("get", "fmt/a", "-o", "json", endpoints=ep)))
    assert got == {"key": "fmt/a", "value": {"x": 1}, "uuid": put["uuid"],
                   "timestamp": put["timestamp"], "expires": None}
    table = ok(ctl("get", "fmt/a", "-o", "table", endpoints=ep)).splitlines()
    assert table[0].split() == ["KEY", "UUID", "TIMESTAMP", "EXPIRES", "VALUE"]
    assert table[1].split()[:4] == ["fmt/a", put["uuid"], str(put["timestamp"]), "-"]
    # value from stdin, from --file, as a string
    ok(ctl("put", "fmt/stdin", "-", stdin="[1, 2]", endpoints=ep))
    assert ok(ctl("get", "fmt/stdin", endpoints=ep)) == "[1, 2]\n"
    f = tmp_path / "v.json"
    f.write_text('{"from": "file"}')
    ok(ctl("put", "fmt/file", "--file", str(f), endpoints=ep))
    assert one.get_json("fmt/file") == {"from": "file"}
    ok(ctl("put", "fmt/str", "--string", 'plain "text"', endpoints=ep))
    assert one.get_json("fmt/str") == 'plain "text"'
    # put -o value is the new uuid; table has the version
    uuid = ok(ctl("put", "fmt/a", "2", "-o", "value", endpoints=ep)).strip()
    assert one.get("/kv/fmt/a").headers["ETag"] == f'"{uuid}"'
    head = ok(ctl("put", "fmt/a", "3", endpoints=ep)).splitlines()[0].split()
    assert head == ["KEY", "UUID", "TIMESTAMP", "EXPIRES"]
    # keys that need encoding travel intact
    ok(ctl("put", "fmt/sp ace/ü", "true", endpoints=ep))
    assert one.get("/kv/fmt/sp%20ace/%C3%BC").text == "true"


def test_conditions_and_exit_codes(one):
    ep = one.address
    ok(ctl("put", "cond/k", "1", "--create", endpoints=ep))
    r = ctl("put", "cond/k", "2", "--create", endpoints=ep)
    assert r.returncode == 3 and "precondition failed" in r.stderr
    uuid = json.loads(ok(ctl("get", "cond/k", "-o", "json", endpoints=ep)))["uuid"]
    r = ctl("put", "cond/k", "3", "--if-match", "00000000-0000-4000-8000-000000000000",
            endpoints=ep)
    assert r.returncode == 3
    ok(ctl("put", "cond/k", "4", "--if-match", uuid, endpoints=ep))
    assert one.get_json("cond/k") == 4
    ok(ctl("put", "cond/k", "5", "--if-match", "*", endpoints=ep))
    assert ctl("rm", "cond/k", "--if-match", uuid, endpoints=ep).returncode == 3
    ok(ctl("rm", "cond/k", endpoints=ep))
    assert one.get("/kv/cond/k").status_code == 404
    r = ctl("rm", "cond/k", endpoints=ep)
    assert r.returncode == 1 and "not found" in r.stderr
    r = ctl("get", "cond/k", endpoints=ep)
    assert r.returncode == 1 and r.stdout == "" and "cond/k" in r.stderr
    # invalid JSON: the node's 400 is a usage error
    r = ctl("put", "cond/bad", "{not json", endpoints=ep)
    assert r.returncode == 2 and "400" in r.stderr
    assert one.get("/kv/cond/bad").status_code == 404


def test_ttl(one):
    ep = one.address
    before = int(time.time() * 1000)
    put = json.loads(ok(ctl("put", "ttl/k", '"v"', "--ttl", "1h", "-o", "json", endpoints=ep)))
    assert before + 3600_000 - 5000 <= put["expires"] <= before + 3600_000 + 60_000
    got = json.loads(ok(ctl("get", "ttl/k", "-o", "json", endpoints=ep)))
    assert got["expires"] == put["expires"]
    assert one.get("/kv/ttl/k").headers["X-Kvs-Expires"] == str(put["expires"])


def test_ls_pages_and_formats(one):
    ep = one.address
    for i in range(5):
        one.put_json(f"ls/k{i}", {"i": i})
    one.put_json("lsx/other", 1)
    assert ok(ctl("ls", "ls", endpoints=ep)).split() == ["KEY"] + [f"ls/k{i}" for i in range(5)]
    r = ctl("ls", "ls/", "--limit", "2", "-o", "value", endpoints=ep)
    assert r.returncode == 0 and r.stdout.split() == ["ls/k0", "ls/k1"]
    assert "more keys follow" in r.stderr and "ls/k1" in r.stderr
    r = ctl("ls", "ls/", "--limit", "2", "-r", "-o", "value", endpoints=ep)
    assert r.stdout.split() == [f"ls/k{i}" for i in range(5)] and r.stderr == ""
    r = ctl("ls", "ls", "--limit", "2", "--after", "ls/k1", "-o", "json", endpoints=ep)
    assert json.loads(ok(r)) == ["ls/k2", "ls/k3"]
    items = json.loads(ok(ctl("ls", "ls", "--values", "-r", "--limit", "3", "-o", "json",
                              endpoints=ep)))
    assert [(i["key"], i["value"]) for i in items] == [(f"ls/k{i}", {"i": i}) for i in range(5)]
    assert all(UUID_RE.match(i["uuid"]) and i["timestamp"] > 0 for i in items)
    table = ok(ctl("ls", "ls", "--values", endpoints=ep)).splitlines()
    assert table[0].split() == ["KEY", "VALUE", "UUID", "TIMESTAMP", "EXPIRES"]
    assert table[1].startswith("ls/k0  ") and '  {"i": 0}  ' in table[1]
    everything = ok(ctl("ls", "-r", "-o", "value", endpoints=ep)).split()
    assert "lsx/other" in everything and "ls/k4" in everything
    assert ok(ctl("ls", "nothing/here", "-o", "json", endpoints=ep)).strip() == "[]"
    # values come back as stored, byte for byte, in listings too
    raw = '{ "x" :  1.50, "s": "}]\\"" }'
    assert one.put("/kv/lsraw/a", data=raw).status_code == 200
    assert ok(ctl("ls", "lsraw", "--values", "-o", "value", endpoints=ep)) == raw + "\n"


def test_txn(one, tmp_path):
    ep = one.address
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"ops": [{"op": "put", "key": "tx/a", "value": 1},
                                     {"op": "put", "key": "tx/b", "value": 2},
                                     {"op": "check", "key": "tx/c", "absent": True}]}))
    rows = ok(ctl("txn", str(f), endpoints=ep)).splitlines()
    assert rows[0].split() == ["KEY", "UUID", "TIMESTAMP"]
    assert [r.split()[0] for r in rows[1:]] == ["tx/a", "tx/b", "tx/c"]
    assert one.get_json("tx/a") == 1 and one.get_json("tx/b") == 2
    bad = json.dumps({"ops": [{"op": "put", "key": "tx/a", "value": 9},
                              {"op": "check", "key": "tx/b", "absent": True}]})
    r = ctl("txn", "-", stdin=bad, endpoints=ep)
    assert r.returncode == 3 and json.loads(r.stdout)["failed"] == [1]
    assert one.get_json("tx/a") == 1                     # nothing applied
    r = ctl("txn", "-", "-o", "json", stdin=json.dumps({"ops": [{"op": "delete", "key": "tx/a"}]}),
            endpoints=ep)
    assert [x["key"] for x in json.loads(ok(r))["results"]] == ["tx/a"]
    r = ctl("txn", "-", stdin='{"ops": []}', endpoints=ep)
    assert r.returncode == 2 and "400" in r.stderr


def test_snapshot_save(node_factory, kvs_bin, tmp_path):
    """snapshot save streams GET /admin/snapshot (admin scope) to FILE: with a
    token short of admin it exits 5 and leaves neither the file nor its
    .part; with an admin token the file is a snapshot kvs --restore takes."""
    n = node_factory.start("snap", extra={"cluster_secret": SECRET,
                                          "auth_tokens": [f"read:{READ_TOKEN}",
                                                          f"write:{WRITE_TOKEN}"]})
    ok(ctl("put", "s/one", '{"v": 1}', "--token", WRITE_TOKEN, endpoints=n.address))
    out = tmp_path / "snap.bin"
    r = ctl("snapshot", "save", str(out), "--token", READ_TOKEN, endpoints=n.address)
    assert r.returncode == 5 and "403" in r.stderr, (r.returncode, r.stderr)
    assert not out.exists() and not Path(str(out) + ".part").exists()
    ok(ctl("snapshot", "save", str(out), "--token", WRITE_TOKEN, endpoints=n.address))
    assert out.read_bytes()[:8] == b"KVSSNAP\0" and not Path(str(out) + ".part").exists()
    r2 = node_factory.create("restored", extra={"cluster_secret": SECRET,
                                                "auth_tokens": [f"read:{READ_TOKEN}"]})
    write_config(r2.config_path, r2.config)
    p = subprocess.run([str(kvs_bin), "--restore", str(out), str(r2.config_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    r2.start()
    assert ok(ctl("get", "s/one", "-o", "value", "--token", READ_TOKEN,
                  endpoints=r2.address)) == '{"v": 1}\n'
    r = ctl("snapshot", "load", str(out), endpoints=n.address)
    assert r.returncode == 2 and "unknown subcommand" in r.stderr


# --------------------------------------------------------------------------
# bad input, help, unreachable

@pytest.mark.parametrize("args, needle", [
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["get"], "missing argument"),
    (["put", "k"], "give the value"),
    (["put", "k", "1", "--ttl", "5x"], "bad --ttl '5x'"),
    (["put", "k", "1", "--ttl", "0"], "bad --ttl '0'"),
    (["put", "k", "--file", "/nonexistent/v.json"], "cannot read /nonexistent/v.json"),
    (["txn", "/nonexistent/t.json"], "cannot read /nonexistent/t.json"),
    (["get", "k", "-o", "yaml"], "bad output format 'yaml'"),
    (["get", "k", "--bogus"], "unknown option --bogus"),
    (["ls", "--limit", "0"], "bad --limit '0'"),
    (["put", "k", "1", "--create", "--if-match", "*"], "cannot be combined"),
    (["watch", "--index", "x"], "bad --index 'x'"),
    (["get", "a", "b"], "too many arguments"),
    (["--endpoints", "a b", "get", "k"], "bad endpoint list"),
    ([], "Usage: kvsctl"),
])
def test_bad_input_exit_2(one, args, needle):
    r = ctl(*args, endpoints=one.address)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert needle in r.stderr, r.stderr
    assert r.stdout == ""
    assert one.get("/kv/k").status_code == 404           # nothing written


def test_dot_segments_reach_the_node_unfolded(one):
    """A key's ".." is sent as it is (the node refuses it with 400, exit 2),
    never folded by curl into another path: "x/../../members/leave" must not
    become DELETE /members/leave, nor "a/../b" a read of b."""
    ok(ctl("put", "b", "1", endpoints=one.address))
    for args in (["rm", "x/../../members/leave"], ["get", "a/../b"], ["get", "../health"],
                 ["ls", "a/../"]):
        r = ctl(*args, endpoints=one.address)
        assert r.returncode == 2 and "400" in r.stderr, (args, r.returncode, r.stderr)
    assert [m["status"] for m in one.members() if m["id"] == one.node_id] == ["alive"]
    assert one.get("/kv/b").status_code == 200


def test_help_everywhere():
    r = ctl("--help")
    assert r.returncode == 0
    cmds = ["get", "put", "rm", "ls", "watch", "txn", "members", "health", "status",
            "snapshot", "shell"]
    for c in cmds:
        assert re.search(rf"^  {c}\b", r.stdout, re.M), c
        h = ctl(c, "--help")
        assert h.returncode == 0 and h.stdout.startswith(f"Usage: kvsctl {c}"), (c, h.stdout)
        assert "Exit status" in h.stdout
    assert ok(ctl("--version")).startswith("kvsctl ")


def test_no_endpoint_reachable_exit_4():
    r = ctl("get", "k", endpoints=f"{dead_endpoint()},{dead_endpoint()}")
    assert r.returncode == 4 and "no endpoint reachable" in r.stderr
    r = ctl("put", "k", "1", endpoints=dead_endpoint())
    assert r.returncode == 4
    # a watch tries every endpoint three times over (a pause after each pass), then gives up
    t0 = time.monotonic()
    r = ctl("watch", "k", endpoints=f"{dead_endpoint()},{dead_endpoint()}")
    assert r.returncode == 4 and "watch: no endpoint reachable" in r.stderr
    assert 2.0 <= time.monotonic() - t0 < 15


# --------------------------------------------------------------------------
# failover and refusals

def test_failover_first_endpoint_dead(node_factory):
    a, b = node_factory.start("fa"), node_factory.start("fb")   # two standalone nodes
    eps = f"{dead_endpoint()},{a.address}"
    ok(ctl("put", "fo/k", '"v"', endpoints=eps))
    assert a.get_json("fo/k") == "v"
    assert ok(ctl("get", "fo/k", endpoints=eps)) == '"v"\n'
    assert ok(ctl("health", "-o", "json", endpoints=eps)).find('"node_id":"fa"') > 0
    # an HTTP answer is never retried elsewhere: the key exists only on b,
    # a answers 404 and kvsctl says not found without asking b
    b.put_json("only/b", 1)
    r = ctl("get", "only/b", endpoints=f"{a.address},{b.address}")
    assert r.returncode == 1
    assert ok(ctl("get", "only/b", endpoints=f"{dead_endpoint()},{b.address}")) == "1\n"


def test_hung_node_get_fails_over_write_is_not_resent(node_factory):
    """A SIGSTOPped node accepts connections but never answers: a GET times
    out and goes to the next endpoint; a PUT that was sent is not sent again
    elsewhere (it may apply later: here, once the node resumes)."""
    a, b = node_factory.start("ha"), node_factory.start("hb")
    b.put_json("hung/k", "from b")
    a.send_signal(signal.SIGSTOP)
    try:
        eps = f"{a.address},{b.address}"
        t0 = time.monotonic()
        assert ok(ctl("--timeout", "1s", "get", "hung/k", endpoints=eps)) == '"from b"\n'
        assert time.monotonic() - t0 < 8
        r = ctl("--timeout", "1s", "put", "hung/w", "1", endpoints=eps)
        assert r.returncode == 4 and "timed out" in r.stderr.lower(), r.stderr
        assert b.get("/kv/hung/w").status_code == 404
    finally:
        a.send_signal(signal.SIGCONT)
    wait_until(lambda: a.get("/kv/hung/w").status_code == 200, timeout=10,
               msg="the PUT sent before the stop applies once the node runs")


def test_tokens_refused_exit_5(node_factory):
    n = node_factory.start("tok", extra={"cluster_secret": SECRET,
                                         "auth_tokens": [f"read:{READ_TOKEN}",
                                                         f"write:{WRITE_TOKEN}"]})
    ep = n.address
    r = ctl("get", "k", endpoints=ep)
    assert r.returncode == 5 and "401" in r.stderr
    ok(ctl("put", "k", "1", "--token", WRITE_TOKEN, endpoints=ep))
    assert ok(ctl("get", "k", env={"KVS_TOKEN": READ_TOKEN}, endpoints=ep)) == "1\n"
    r = ctl("put", "k", "2", env={"KVS_TOKEN": READ_TOKEN}, endpoints=ep)
    assert r.returncode == 5 and "403" in r.stderr
    assert ctl("health", endpoints=ep).returncode == 0          # /health stays open
    assert ctl("members", endpoints=ep).returncode == 5


def test_tls_options(node_factory, pki):  # noqa: F811
    """--cacert/--cert/--key against a node that requires client certificates."""
    n = TLSNode(node_factory.kvs_bin, node_factory.base / "tls", node_id="tls", pki=pki)
    node_factory.nodes.append(n)
    n.start()
    tls = ["--cacert", str(pki / "ca.crt"), "--cert", str(pki / "node.crt"),
           "--key", str(pki / "node.key")]
    ok(ctl(*tls, "put", "tls/k", '"s"', endpoints=n.address))     # https: a CA was given
    assert ok(ctl(*tls, "get", "tls/k", endpoints=f"https://{n.address}")) == '"s"\n'
    # no client certificate, or no CA to trust the node: TLS fails, nothing answered
    r = ctl("--cacert", str(pki / "ca.crt"), "get", "tls/k", endpoints=n.address)
    assert r.returncode == 4, r.stderr
    r = ctl("get", "tls/k", endpoints=f"https://{n.address}")
    assert r.returncode == 4 and "certificate" in r.stderr.lower(), r.stderr


# --------------------------------------------------------------------------
# cluster commands

def test_members_health_status(node_factory):
    nodes = node_factory.cluster(2, extra=FAST_INTERVALS)
    wait_members(nodes, timeout=30)
    a, b = nodes
    a.put_json("st/1", 1)
    wait_until(lambda: b.get("/kv/st/1").status_code == 200, timeout=10)
    ep = a.address
    table = ok(ctl("members", endpoints=ep)).splitlines()
    assert table[0].split() == ["ID", "ADDRESS", "STATUS", "LAST_SEEN", "CLOCK_OFFSET_MS"]
    assert sorted(r.split()[0] for r in table[1:]) == ["n1", "n2"]
    assert sorted(ok(ctl("members", "-o", "value", endpoints=ep)).split()) == ["n1", "n2"]
    assert {m["id"] for m in json.loads(ok(ctl("members", "-o", "json", endpoints=ep)))} == \
        {"n1", "n2"}
    h = json.loads(ok(ctl("health", "-o", "json", endpoints=ep)))
    assert h["status"] == "ok" and h["node_id"] == "n1"
    assert ok(ctl("health", "-o", "value", endpoints=ep)) == "ok\n"
    assert ok(ctl("health", endpoints=ep)).splitlines()[0].split() == \
        ["NODE", "ENDPOINT", "STATUS", "MODE", "MEMBERS", "CLOCK"]
    st = json.loads(ok(ctl("status", "-o", "json", endpoints=ep)))
    assert {(s["id"], s["address"], s["mode"], s["keys"]) for s in st} == \
        {("n1", a.address, "normal", 1), ("n2", b.address, "normal", 1)}
    rows = ok(ctl("status", endpoints=ep)).splitlines()
    assert rows[0].split() == ["ID", "ADDRESS", "STATUS", "MODE", "KEYS", "CLOCK_OFFSET_MS"]
    # each member is asked itself: a stopped one shows unreachable
    b.kill()
    st = {s["id"]: s for s in json.loads(ok(ctl("status", "-o", "json", endpoints=ep)))}
    assert st["n2"]["mode"] == "unreachable" and st["n2"]["keys"] is None
    assert st["n1"]["mode"] == "normal"


# --------------------------------------------------------------------------
# watch

class Watcher:
    """kvsctl watch as a child process, its stdout read line by line."""

    def __init__(self, *args, endpoints):
        e = dict(os.environ, KVS_ENDPOINTS=endpoints)
        self.proc = subprocess.Popen([str(KVSCTL), "watch", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=e, bufsize=0)
        self.lines = []
        self.partial = b""

    def read_until(self, pred, timeout=15):
        """Reads the raw pipe (no Python buffer hiding lines from select)."""
        deadline = time.monotonic() + timeout
        while not pred(self.lines):
            left = deadline - time.monotonic()
            assert left > 0, f"watch output so far: {self.lines}"
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                assert chunk, f"watch ended: {self.proc.stderr.read()!r}"
                *done, self.partial = (self.partial + chunk).split(b"\n")
                self.lines += [x.decode() for x in done]
        return self.lines

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def test_watch_prints_events(one):
    w = Watcher("wa/", "-o", "json", endpoints=one.address)
    try:
        # the watch starts "from now": wait until its first poll is open
        wait_until(lambda: one.get("/metrics").text.count("kvs_watchers_open 1") == 1,
                   timeout=10)
        one.put_json("wa/x", {"n": 1})
        one.delete("/kv/wa/x")
        one.put_json("other/y", 1)                  # outside the prefix
        one.put_json("wa/z", 2)
        lines = w.read_until(lambda ls: len(ls) >= 3)
        ev = [json.loads(x) for x in lines]
        assert [(e["type"], e["key"]) for e in ev] == [("put", "wa/x"), ("delete", "wa/x"),
                                                      ("put", "wa/z")]
        assert ev[0]["value"] == {"n": 1}
        assert w.stop() == 0                        # Ctrl-C ends it cleanly
    finally:
        w.stop()
    # -o value: the values, byte for byte as stored
    idx = int(one.get("/kv/wa/z").headers["X-Kvs-Index"])
    assert one.put("/kv/wa/raw", data='[1 ,  2.50]').status_code == 200
    w = Watcher("wa/raw", "--index", str(idx), "-o", "value", endpoints=one.address)
    try:
        assert w.read_until(lambda ls: len(ls) >= 1) == ["[1 ,  2.50]"]
    finally:
        w.stop()
    # table format: INDEX TYPE KEY VALUE
    w = Watcher("wa/z", "--index", str(idx - 1), endpoints=one.address)
    try:
        parts = w.read_until(lambda ls: len(ls) >= 1)[0].split()
        assert parts[1:] == ["put", "wa/z", "2"] and int(parts[0]) == idx
    finally:
        w.stop()


@pytest.mark.timeout_s(90)
def test_watch_survives_node_kill_no_event_lost(node_factory):
    """A watch on A (endpoints A,B) while a writer writes to B; A is killed
    -9 in the middle: the watch moves to B, resumes by time, and has printed
    every write exactly once."""
    a, b = node_factory.cluster(2, extra=FAST_INTERVALS)
    wait_members([a, b], timeout=30)
    w = Watcher("fw/", "-o", "json", endpoints=f"{a.address},{b.address}")
    written = {}
    try:
        wait_until(lambda: "kvs_watchers_open 1" in a.get("/metrics").text, timeout=10)

        def write(i):
            r = b.put(f"/kv/fw/k{i}", data=json.dumps(i))
            assert r.status_code == 200
            written[f"fw/k{i}"] = r.json()["uuid"]

        for i in range(40):
            write(i)
        w.read_until(lambda ls: len(ls) >= 20, timeout=30)  # the watch is mid-stream on A
        a.kill()
        for i in range(40, 80):
            write(i)
        w.read_until(lambda ls: len({json.loads(x)["key"] for x in ls}) >= 80, timeout=40)
        events = [json.loads(x) for x in w.lines]
        seen = [(e["key"], e["uuid"]) for e in events]
        assert len(seen) == len(set(seen)), "an event was printed twice"
        assert set(seen) == set(written.items())
        assert w.stop() == 0
    finally:
        w.stop()


# --------------------------------------------------------------------------
# shell through a pseudo-terminal

class Pty:
    def __init__(self, argv, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve(argv[0], argv, env)
        self.out = b""

    def send(self, data):
        os.write(self.fd, data)

    def expect(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.out)
            if m:
                self.out = self.out[m.end():]
                return m
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} in {self.out!r}"
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                assert chunk, f"shell ended; no {pattern!r} in {self.out!r}"
                self.out += chunk

    def close(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        os.close(self.fd)


def test_shell_put_get_history(one, tmp_path):
    hist = tmp_path / "history"
    env = dict(os.environ, KVS_ENDPOINTS=one.address, KVSCTL_HISTORY=str(hist), TERM="xterm")
    sh = Pty([str(KVSCTL), "shell"], env)
    try:
        sh.expect(rb"kvs> ")
        sh.send(b"put sh/k '{\"a\": 42}'\r")
        sh.expect(rb"sh/k\s+[0-9a-f-]{36}")
        sh.expect(rb"kvs> ")
        sh.send(b"get sh/k\r")
        sh.expect(rb'\{"a": 42\}')
        sh.expect(rb"kvs> ")
        one.put_json("sh/k", {"a": 43})
        sh.send(b"\x1b[A\r")                      # up arrow: the last line again
        sh.expect(rb'\{"a": 43\}')
        sh.expect(rb"kvs> ")
        sh.send(b"heal\t\r")                      # Tab completes the command name
        sh.expect(rb"c1\s+http://")
        sh.expect(rb"kvs> ")
        # options on a line stay for the next ones (copied: the line itself is freed)
        sh.send(f"health --endpoints {one.address}\r".encode())
        sh.expect(rb"c1\s+http://")
        sh.expect(rb"kvs> ")
        sh.send(b"get sh/k --timeout 5s\r")     # a new client, on the endpoint given above
        sh.expect(rb'\{"a": 43\}')
        sh.expect(rb"kvs> ")
        sh.send(b"get sh/none\r")
        sh.expect(rb"key not found")
        sh.expect(rb"kvs> ")
        sh.send(b"exit\r")
        _, status = os.waitpid(sh.pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        # libedit's history file: a header line, then lines with blanks as \040
        lines = hist.read_text().replace("\\040", " ").splitlines()
        assert any("put sh/k" in x for x in lines) and any("get sh/k" in x for x in lines)
    finally:
        sh.close()
    assert one.get_json("sh/k") == {"a": 43}


# --------------------------------------------------------------------------
# install, the installed library, the example

def test_install_link_against_libkvs(one, tmp_path):
    dest = tmp_path / "dest"
    build = os.path.relpath(BUILD, REPO)
    subprocess.run(["make", "-s", "-C", str(REPO), f"BUILD={build}", "install",
                    f"DESTDIR={dest}", "PREFIX=/usr/local"], check=True, timeout=300,
                   capture_output=True)
    pre = dest / "usr/local"
    for f in ["bin/kvsctl", "include/kvs_client.h", "lib/libkvs.a", "lib/libkvs.so",
              "lib/libkvs.so.1", "lib/pkgconfig/kvs.pc", "share/man/man1/kvsctl.1",
              "share/bash-completion/completions/kvsctl"]:
        assert (pre / f).exists(), f
    prog = tmp_path / "prog.c"
    prog.write_text(r'''
#include <stdio.h>
#include <string.h>
#include <kvs_client.h>
int main(int argc, char **argv) {
    struct kvs_client_options o = { .endpoints = argv[1] };
    struct kvs_value v;
    kvs_client *c;
    if (argc != 2 || kvs_client_new(&o, &c)) return 2;
    if (kvs_put(c, "linked/k", "[7]", 3, NULL, NULL)) return 3;
    if (kvs_get(c, "linked/k", &v)) return 4;
    printf("%s %s\n", v.json, kvs_get(c, "linked/none", &v) == KVS_ENOTFOUND ? "nf" : "?");
    kvs_value_release(&v);
    kvs_client_free(c);
    return 0;
}
''')
    env = dict(os.environ, PKG_CONFIG_PATH=str(pre / "lib/pkgconfig"),
               PKG_CONFIG_SYSROOT_DIR=str(dest))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "kvs"], env=env, check=True,
                           capture_output=True, text=True).stdout.split()
    assert f"-I{pre}/include" in flags and f"-L{pre}/lib" in flags and "-lkvs" in flags
    exe = tmp_path / "prog"
    # a sanitizer build's libkvs needs its runtime first: build the program alike
    san = os.environ.get("CFLAGS", "").split() if os.environ.get("KVS_SANITIZER") else []
    subprocess.run(["cc", *san, "-o", str(exe), str(prog), *flags], check=True, timeout=60)
    runenv = dict(os.environ, LD_LIBRARY_PATH=str(pre / "lib"))
    r = subprocess.run([str(exe), one.address], env=runenv, capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0 and r.stdout == "[7] nf\n", r
    ldd = subprocess.run(["ldd", str(exe)], env=runenv, capture_output=True, text=True).stdout
    assert f"{pre}/lib/libkvs.so.1" in ldd
    # the completion: commands, a command's options, -o formats, keys through kvsctl ls
    comp = pre / "share/bash-completion/completions/kvsctl"
    script = (f'source {comp}; complete -p kvsctl; '
              'c() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _kvsctl; '
              'echo "${COMPREPLY[*]}"; }; '
              'c kvsctl st; c kvsctl put k --cr; c kvsctl get k -o ""; c kvsctl get linked/')
    r = subprocess.run(["bash", "-c", script],
                       env=dict(runenv, PATH=f"{pre}/bin:{os.environ['PATH']}",
                                KVS_ENDPOINTS=one.address),
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.splitlines() == ["complete -F _kvsctl kvsctl", "status", "--create",
                                     "table json value", "linked/k"], r
    subprocess.run(["make", "-s", "-C", str(REPO), f"BUILD={build}", "uninstall",
                    f"DESTDIR={dest}", "PREFIX=/usr/local"], check=True, timeout=120,
                   capture_output=True)
    left = [str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file() or p.is_symlink()]
    assert left == ["etc/kvs/kvs.yaml"], left     # a node's config is never removed


def test_example_config_watch(one):
    exe = BUILD / "examples" / "config_watch"
    assert exe.is_file(), "make all builds examples/config_watch"
    one.put_json("app/cfg/a", 1)
    p = subprocess.Popen([str(exe), one.address, "app/cfg/", "2"], stdout=subprocess.PIPE,
                         text=True)
    try:
        first = p.stdout.readline() + p.stdout.readline()
        assert first == "--- app/cfg/\napp/cfg/a = 1\n"
        wait_until(lambda: "kvs_watchers_open 1" in one.get("/metrics").text, timeout=10)
        one.put_json("app/cfg/b", {"x": True})
        second = "".join(p.stdout.readline() for _ in range(4))
        assert second == "# put app/cfg/b\n--- app/cfg/\napp/cfg/a = 1\napp/cfg/b = {\"x\": true}\n"
        one.delete("/kv/app/cfg/a")
        out, _ = p.communicate(timeout=20)
        assert p.returncode == 0
        assert out == "# delete app/cfg/a\n--- app/cfg/\napp/cfg/b = {\"x\": true}\n"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
