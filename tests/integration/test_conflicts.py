"""
Conflict resolution by majority vote (SPEC section 5, "Conflicts"), on real
processes.

A conflict is two versions of one path with the same timestamp and different
UUIDs.  Two ways of making them here:

* build/test_conflict DIR1 DIR2 writes two data directories that conflict on
  every path (one path deleted in DIR1, a value in DIR2) and makes DIR1's node
  the older member (joined_timestamp): the README flow.
* POST /members/push, the peer endpoint replication uses, lets a test hand a
  chosen version (UUID, timestamp, value or tombstone) to one node only.
  "from" is the receiving node's own member record, so the push does not
  touch anyone's member list.

What each node holds is read with POST /members/fetch, which reports
tombstones too (a client GET only says 404).

Rules checked: the version held by most members wins; on a tie, the version
of the member with the earliest joined_timestamp (node ids are chosen so that
"smallest id" would pick the other one); a delete is a version like any
other; a node killed mid-resolution converges after it restarts; once
converged, nothing flips back.
"""

import json
import re
import subprocess
import time
import uuid as uuidlib

import pytest

from conftest import (FAST_INTERVALS, REPO, now_ms, parse_metrics, wait_members, wait_until)

TOOL = REPO / "build" / "test_conflict"

# Seconds-scale intervals so that detection (sync, anti-entropy) and gossip
# happen within a few seconds.
FAST = dict(FAST_INTERVALS, failure_timeout=20, throttle_delay_ms=0, fetch_delay_ms=0)

CONVERGE_S = 30.0


# --------------------------------------------------------------------------
# helpers

def fetch_versions(node, keys):
    """{key: (uuid, timestamp, tombstone, value text or None)} as node stores it.

    Keys the node does not hold at all are absent from the result.
    """
    out = {}
    keys = list(keys)
    for i in range(0, len(keys), 500):
        r = node.request("POST", "/members/fetch", json={"keys": keys[i:i + 500]})
        assert r.status_code == 200, f"{node}: fetch {r.status_code} {r.text[:200]}"
        body = r.json()
        assert body.get("more", []) == [], f"{node}: fetch deferred keys"
        for it in body["items"]:
            out[it["key"]] = (it["uuid"], it["timestamp"], bool(it.get("tombstone")),
                              it.get("value"))
    return out


def self_record(node):
    """node's own member record as it reports it (used as a push's "from")."""
    for m in node.members():
        if m["id"] == node.node_id:
            return m
    raise AssertionError(f"{node} does not list itself")


def item(key, version):
    """A wire record: version = (uuid, timestamp, tombstone, value text)."""
    uid, ts, tomb, value = version
    it = {"key": key, "uuid": uid, "timestamp": ts, "tombstone": tomb}
    if not tomb:
        it["value"] = value
    return it


def push(node, versions):
    """Hands {key: version} to node alone through the peer push endpoint."""
    body = {"from": self_record(node),
            "items": [item(k, v) for k, v in versions.items()]}
    r = node.request("POST", "/members/push", json=body)
    assert r.status_code == 200, f"{node}: push {r.status_code} {r.text[:300]}"
    reply = r.json()
    assert reply["applied"] == len(versions), f"{node}: push reply {reply}"
    return reply


def new_version(ts, value=None, tombstone=False):
    return (str(uuidlib.uuid4()), ts, tombstone, None if tombstone else json.dumps(value))


def holds(node, want):
    """True when node stores exactly the version want[key] of every key."""
    got = fetch_versions(node, want.keys())
    return all(k in got and got[k][:3] == v[:3] for k, v in want.items())


def wait_converged(nodes, want, timeout=CONVERGE_S, msg="convergence"):
    def ok():
        return all(holds(n, want) for n in nodes)
    wait_until(ok, timeout=timeout, interval=0.2, msg=msg)


def diff(node, want):
    """Human-readable disagreement of node with want (for assertion messages)."""
    got = fetch_versions(node, want.keys())
    return {k: (got.get(k), v) for k, v in want.items() if got.get(k, (None,) * 3)[:3] != v[:3]}


def resolved_lines(node, path=None):
    lines = [l for l in node.log_text().splitlines() if " conflict_resolved " in l]
    if path is not None:
        lines = [l for l in lines if f'path="{path}"' in l]
    return lines


def metric(node, name):
    r = node.get("/metrics")
    assert r.status_code == 200
    return sum(v for n, _, v in parse_metrics(r.text) if n == name)


def joined(node):
    return self_record(node)["joined_timestamp"]


def assert_stable(nodes, want, seconds=3.0):
    """Nothing flips back for a while (longer than a sync and an anti-entropy round)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for n in nodes:
            assert holds(n, want), f"{n} moved away from the winner: {diff(n, want)}"
        time.sleep(0.3)


# --------------------------------------------------------------------------
# build/test_conflict

def run_tool(d1, d2):
    """Runs test_conflict; returns {path: {1: version, 2: version}} from its report."""
    if not TOOL.exists():
        pytest.fail(f"{TOOL} missing: run `make all`", pytrace=False)
    p = subprocess.run([str(TOOL), str(d1), str(d2)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, f"test_conflict failed: {p.returncode} {p.stderr}"
    out, path = {}, None
    line_re = re.compile(r"^  DIR([12]) uuid=(\S+) timestamp=(\d+) (?:value=(.*)|tombstone \(deleted\))$")
    for line in p.stdout.splitlines():
        if line.startswith("path="):
            path = line[len("path="):]
            out[path] = {}
            continue
        m = line_re.match(line)
        if m:
            tomb = m.group(4) is None
            out[path][int(m.group(1))] = (m.group(2), int(m.group(3)), tomb, m.group(4))
    assert len(out) >= 5, p.stdout
    return out, p.stdout


def test_tool_refuses_used_dirs(tmp_path):
    d1, d2 = tmp_path / "d1", tmp_path / "d2"
    run_tool(d1, d2)
    p = subprocess.run([str(TOOL), str(d1), str(tmp_path / "d3")], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and "not empty" in p.stderr, p
    assert not (tmp_path / "d3").exists()
    p = subprocess.run([str(TOOL), str(tmp_path / "d4"), str(tmp_path / "d4")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and not (tmp_path / "d4").exists(), p


def test_tool_dirs_converge_on_older_member(node_factory, tmp_path):
    """README flow: test_conflict dirs, node1 on DIR1, node2 seeded with node1."""
    d1, d2 = tmp_path / "dir1", tmp_path / "dir2"
    wrote, report = run_tool(d1, d2)
    for path, v in wrote.items():
        assert v[1][1] == v[2][1] and v[1][0] != v[2][0], f"{path}: not a conflict: {v}"
    deleted = [p for p, v in wrote.items() if v[1][2] and not v[2][2]]
    assert deleted, f"no tombstone-vs-value path in:\n{report}"

    n1 = node_factory.create("node1", extra=dict(FAST))
    n1.config["data_dir"] = str(d1)
    n2 = node_factory.create("node2", seeds=[n1.address], extra=dict(FAST))
    n2.config["data_dir"] = str(d2)
    n1.start()
    n2.start()
    assert joined(n1) < joined(n2), "test_conflict must make DIR1's node the older member"

    want = {p: v[1] for p, v in wrote.items()}  # DIR1's versions, the delete included
    wait_converged([n1, n2], want, msg="both nodes on DIR1's versions")

    # what clients see: DIR1's values byte for byte, the deleted path 404
    for n in (n1, n2):
        for path, v in want.items():
            r = n.get("/kv/" + path)
            if v[2]:
                assert r.status_code == 404, f"{n} {path}: {r.status_code} {r.text}"
            else:
                assert r.status_code == 200 and r.text == v[3], f"{n} {path}: {r.text}"
                assert r.headers["ETag"].strip('"') == v[0]

    # node2 held the losers: it logged each resolution and counted them
    for path, v in want.items():
        lines = wait_until(lambda: resolved_lines(n2, path), timeout=5,
                           msg=f"conflict_resolved for {path} in node2's log")
        assert any(f"winner={v[0]}" in l for l in lines), lines
    assert metric(n2, "kvs_conflicts_resolved_total") > 0
    assert metric(n1, "kvs_conflicts_resolved_total") + \
        metric(n2, "kvs_conflicts_resolved_total") >= len(want)
    assert_stable([n1, n2], want)


# --------------------------------------------------------------------------
# injected conflicts

def test_majority_beats_oldest_member(node_factory):
    """Two members hold A, one holds B: A everywhere, though B's holder is oldest."""
    # n1 first, so its joined_timestamp is the earliest (nodes started in the
    # same millisecond would tie on it and fall back to the smallest id)
    n1 = node_factory.start("n1", extra=dict(FAST))
    n2, n3 = [node_factory.create(i, seeds=[n1.address], extra=dict(FAST)) for i in ("n2", "n3")]
    for n in (n2, n3):
        n.start(wait=False)
    for n in (n2, n3):
        n.wait_ready()
    wait_members([n1, n2, n3], normal=True)
    assert joined(n1) < joined(n2) and joined(n1) < joined(n3)

    ts = now_ms() - 5000
    a, b = {}, {}
    for i, (va, vb) in enumerate([({"side": "A", "n": 1}, {"side": "B", "n": 1}),
                                  ("A", "B"), (1, 2), ([1, "A"], {"B": True})]):
        a[f"maj/{i}"] = new_version(ts, va)
        b[f"maj/{i}"] = new_version(ts, vb)
    # a delete held by the majority beats a value held by the oldest member
    a["maj/deleted"] = new_version(ts, tombstone=True)
    b["maj/deleted"] = new_version(ts, {"still": "here"})

    # A first: if anti-entropy copies it to n1 before B arrives, B still loses
    push(n2, a)
    push(n3, a)
    push(n1, b)
    wait_converged([n1, n2, n3], a, msg="all three nodes on the majority version A")
    assert n1.get("/kv/maj/deleted").status_code == 404
    assert any("action=stored_winner" in l for l in resolved_lines(n1)), resolved_lines(n1)
    assert metric(n1, "kvs_conflicts_resolved_total") > 0
    assert_stable([n1, n2, n3], a)


def test_tie_goes_to_older_member(node_factory):
    """1-1 between two nodes: the older member's version, though its id is larger."""
    old = node_factory.start("zeta", extra=dict(FAST))
    young = node_factory.start("alpha", seeds=[old.address], extra=dict(FAST))
    wait_members([old, young], normal=True)
    assert joined(old) < joined(young)

    ts = now_ms() - 5000
    mine, theirs = {}, {}
    for i in range(4):
        mine[f"tie/{i}"] = new_version(ts, {"holder": "zeta", "i": i})
        theirs[f"tie/{i}"] = new_version(ts, {"holder": "alpha", "i": i})
    # a delete on the older member wins; a delete on the younger one loses
    mine["tie/del-old"] = new_version(ts, tombstone=True)
    theirs["tie/del-old"] = new_version(ts, "value on alpha")
    mine["tie/del-young"] = new_version(ts, "value on zeta")
    theirs["tie/del-young"] = new_version(ts, tombstone=True)

    push(old, mine)
    push(young, theirs)
    wait_converged([old, young], mine, msg="both nodes on the older member's versions")
    for n in (old, young):
        assert n.get("/kv/tie/del-old").status_code == 404
        assert n.get("/kv/tie/del-young").json() == "value on zeta"
    assert resolved_lines(young, "tie/del-old"), young.log_tail()
    assert_stable([old, young], mine)


def test_restart_mid_resolution(node_factory):
    """A node killed while it resolves a batch of conflicts converges after restart."""
    old = node_factory.start("n1", extra=dict(FAST))
    young = node_factory.start("n2", seeds=[old.address], extra=dict(FAST))
    wait_members([old, young], normal=True)

    ts = now_ms() - 5000
    count = 600  # spread over more digest buckets than one anti-entropy round repairs
    win = {f"mid/{i:04d}": new_version(ts, {"w": i}) for i in range(count)}
    lose = {k: new_version(ts, {"l": i}) for i, k in enumerate(win)}
    push(old, win)
    push(young, lose)

    wait_until(lambda: any("action=stored_winner" in l for l in resolved_lines(young)),
               timeout=CONVERGE_S, interval=0.02, msg="n2 starts storing winners")
    young.kill()
    stored = sum(1 for l in resolved_lines(young) if "action=stored_winner" in l)
    print(f"n2 killed after storing {stored} of {count} winners")
    young.start()
    wait_converged([old, young], win, timeout=45, msg="both nodes on n1's versions after restart")
    assert_stable([old, young], win, seconds=2.5)
