"""SPEC sections 4 and 5 on one node: /health, /members/, /metrics, signals, durability."""

import json
import re
import signal
import socket
import time

import pytest
import requests

from conftest import assert_json_error, now_ms, parse_metrics

# ---------------------------------------------------------------- /health, /members/


@pytest.fixture(scope="module")
def shared(module_factory):
    """One node for the tests that neither restart nor stop it."""
    return module_factory.start("n1")


def test_health(shared):
    node = shared
    r = node.get("/health")
    assert r.status_code == 200
    assert r.headers.get("Content-Type", "").startswith("application/json")
    h = r.json()
    assert h["status"] == "ok"
    assert h["mode"] == "normal"
    assert h["member_count"] == 1
    assert h["node_id"] == "n1"


def test_members_single_node(shared):
    node = shared
    r = node.get("/members/")
    assert r.status_code == 200
    assert r.headers.get("Content-Type", "").startswith("application/json")
    members = r.json()
    assert isinstance(members, list) and len(members) == 1, members
    m = members[0]
    assert set(m) >= {"id", "address", "last_seen", "joined_timestamp", "status"}, m
    assert m["id"] == "n1"
    assert m["address"] == node.address  # advertise_address defaults to bind_address:port
    assert m["status"] == "alive"
    for k in ("last_seen", "joined_timestamp"):
        assert isinstance(m[k], int) and not isinstance(m[k], bool) and m[k] > 0, m


def test_joined_timestamp_stable_across_restarts(node):
    j1 = node.members()[0]["joined_timestamp"]
    node.restart()
    j2 = node.members()[0]["joined_timestamp"]
    assert j1 == j2, "joined_timestamp is written once, at the node's first start"


def test_advertise_address_shown(node_factory):
    n = node_factory.create("adv")
    n.config["advertise_address"] = f"localhost:{n.port}"
    n.start()
    assert n.members()[0]["address"] == f"localhost:{n.port}"


# ---------------------------------------------------------------- /metrics

def metrics(node):
    r = node.get("/metrics")
    assert r.status_code == 200, r.text
    return r, parse_metrics(r.text)


def request_total(samples):
    """Sum of the request counters (kvs_*request*_total, or histogram _count if none)."""
    totals = [v for n, _, v in samples if n.startswith("kvs_") and "request" in n
              and n.endswith("_total")]
    if not totals:
        totals = [v for n, _, v in samples if n.startswith("kvs_") and "request" in n
                  and n.endswith("_count")]
    assert totals, "no kvs_*request*_total counter in /metrics"
    return sum(totals)


def test_metrics_format(shared):
    node = shared
    r, samples = metrics(node)
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype
    assert any(n.startswith("kvs_") for n, _, _ in samples), r.text[:2000]
    # every metric family is announced with # TYPE
    typed = {line.split()[2] for line in r.text.splitlines() if line.startswith("# TYPE ")}
    for name, _, _ in samples:
        base = name
        for suffix in ("_bucket", "_sum", "_count", "_total"):
            if name.endswith(suffix) and name[: -len(suffix)] in typed:
                base = name[: -len(suffix)]
        assert base in typed or name in typed, f"{name} has no # TYPE line"


def test_metrics_request_counters_increase(shared):
    node = shared
    _, s0 = metrics(node)
    before = request_total(s0)
    for i in range(10):
        assert node.put(f"/kv/m{i}", b"1").status_code == 200
        assert node.get(f"/kv/m{i}").status_code == 200
    _, s1 = metrics(node)
    after = request_total(s1)
    assert after - before >= 20, (before, after)


# ---------------------------------------------------------------- signals

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_0_and_keeps_data(node, sig):
    versions = {}
    for i in range(20):
        r = node.put(f"/kv/s/{i}", json.dumps({"i": i}))
        assert r.status_code == 200
        versions[f"s/{i}"] = r.json()["uuid"]
    assert node.delete("/kv/s/0").status_code == 204
    t0 = time.monotonic()
    rc = node.stop(timeout=5, sig=sig)
    assert rc == 0, f"exit status {rc} after {sig!r}"
    assert time.monotonic() - t0 < 5
    with pytest.raises(requests.ConnectionError):
        requests.get(node.url("/health"), timeout=2)
    node.start()
    for i in range(1, 20):
        r = node.get(f"/kv/s/{i}")
        assert r.status_code == 200 and r.json() == {"i": i}
        assert r.headers["ETag"] == f'"{versions[f"s/{i}"]}"'
    assert node.get("/kv/s/0").status_code == 404


def test_sigterm_with_open_idle_connections(node):
    # idle keep-alive connections must not hold up shutdown
    socks = [socket.create_connection(("127.0.0.1", node.port)) for _ in range(5)]
    assert node.get("/health").status_code == 200
    try:
        assert node.stop(timeout=5) == 0
    finally:
        for s in socks:
            s.close()


def test_sigterm_cuts_idle_keepalive_at_once(node):
    """A keep-alive connection that has had its answer holds a worker while it waits for the
    next request, and civetweb's workers look at the stop flag only every two seconds: the
    stop cuts such connections itself (peers keep theirs open, so every stop used to take
    about two seconds).  Its log line says how many it cut."""
    s = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            assert chunk, f"closed before the answer: {reply!r}"
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply
        assert node.stop(timeout=10) == 0
        assert s.recv(4096) == b"", "the idle keep-alive is closed, not answered"
    finally:
        s.close()
    cut = re.findall(r"http_drained.*idle_connections_cut=(\d+)", node.log_text())
    assert cut and int(cut[-1]) >= 1, cut  # the harness's own keep-alive may be cut too


def test_durability_kill9(node):
    sess = requests.Session()
    acked = {}
    for i in range(500):
        body = json.dumps({"n": i, "pad": "p" * (i % 50)})
        r = sess.put(node.url(f"/kv/dur/{i:04d}"), data=body, timeout=10)
        assert r.status_code == 200, r.text
        acked[f"dur/{i:04d}"] = (r.json()["uuid"], body)
    for i in range(0, 500, 10):
        assert sess.delete(node.url(f"/kv/dur/{i:04d}"), timeout=10).status_code == 204
        del acked[f"dur/{i:04d}"]
    sess.close()
    assert node.kill() == -signal.SIGKILL
    node.start()
    sess = requests.Session()
    for key, (uuid, body) in acked.items():
        r = sess.get(node.url("/kv/" + key), timeout=10)
        assert r.status_code == 200, f"{key} lost after kill -9"
        assert r.content == body.encode()
        assert r.headers["ETag"] == f'"{uuid}"'
    for i in range(0, 500, 10):
        assert sess.get(node.url(f"/kv/dur/{i:04d}"), timeout=10).status_code == 404
    sess.close()
    assert node.list_all(prefix="dur/") == sorted(acked)


def test_write_after_restart_beats_old_version(node):
    d1 = node.put_json("ts", 1)
    node.kill()
    node.start()
    d2 = node.put_json("ts", 2)
    assert d2["timestamp"] > d1["timestamp"]


def test_second_instance_on_same_data_dir_refused(node_factory):
    a = node_factory.start("a")
    assert a.put("/kv/x", b'"a"').status_code == 200
    b = node_factory.create("b")
    b.config["data_dir"] = a.config["data_dir"]
    b.start(wait=False)
    rc = b.wait_exit(15)
    assert rc is not None and rc != 0, "a second node on a locked data dir must exit non-zero"
    assert a.get("/kv/x").content == b'"a"'
    assert a.stop() == 0


def test_start_time_reasonable(node_factory):
    n = node_factory.create("quick")
    t0 = time.monotonic()
    n.start(timeout=10)
    assert time.monotonic() - t0 < 5, "a fresh standalone node serves within 5 s"


# ---------------------------------------------------------------- misc

def test_unknown_route_404_json(shared):
    node = shared
    assert_json_error(node.get("/definitely/not/here"), 404)


def test_timestamps_track_clock(shared):
    node = shared
    d = node.put_json("clock", True)
    assert abs(d["timestamp"] - now_ms()) < 5000
