"""
Time (SPEC sections 9 and 10, issue 18), on real processes: keys that expire
everywhere at once, and the clock guard.

What is checked:

* ``?ttl=`` on PUT in every unit, ``expires`` in the reply, ``X-Kvs-Expires``
  on GET, ``expires`` in listings, watch events and transaction results; every
  bad ttl (malformed, zero, negative, over ``max_ttl``) a 400 that writes
  nothing; ``refresh=true`` extends a TTL and keeps the value (404 on an absent
  key, 400 without a ttl or with a body);
* an expired key answers 404 and leaves listings at once, on every node of a
  cluster within 1 s of its expiry, and after a restart; the reaper turns it
  into one ``expire`` event per node, with the same version on every node: 1,000
  keys expiring on three nodes count no conflict; a key rewritten before its
  expiry is not touched; a TTL survives replication to a node that was down;
* clocks: probes measure each peer's offset (``clock_offset_ms`` in /members/,
  ``kvs_clock_offset_seconds``); a peer's record stamped more than
  ``max_clock_offset_ms`` ahead is refused for that record alone
  (``kvs_clock_refused_total``) and applied by a later sync once the clocks
  agree; in three nodes the skewed one reports ``"clock": "skewed"`` and
  refuses client writes until its clock is fixed; two nodes alone only warn.

Clocks are skewed with libfaketime (TESTING.md).  Waits are wait-untils with
deadlines; the only fixed waits are a key's own TTL.
"""

import json
import os
import time
import uuid as uuidlib

import pytest

from conftest import (FAST_INTERVALS, assert_json_error, now_ms, parse_metrics, wait_members,
                      wait_until)

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
FAST = dict(FAST_INTERVALS, failure_timeout=20, throttle_delay_ms=0, fetch_delay_ms=0)

needs_faketime = pytest.mark.skipif(
    not os.path.exists(FAKETIME_LIB) or os.environ.get("KVS_SANITIZER") == "thread",
    reason="needs libfaketime (scripts/deps.sh test); confuses ThreadSanitizer")

_seq = iter(range(1, 1 << 30))


def fresh(name):
    return f"e{next(_seq)}{name}"


def skewed_env(offset="+10s"):
    return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}


def metric(node, name, **labels):
    total = 0.0
    for n, lab, v in parse_metrics(node.get("/metrics").text):
        if n == name and all(lab.get(k) == want for k, want in labels.items()):
            total += v
    return total


def put_ttl(node, key, value, ttl, **params):
    return node.put("/kv/" + key, json.dumps(value), params=dict(params, ttl=ttl))


def status(node, key):
    return node.get("/kv/" + key).status_code


@pytest.fixture(scope="module")
def shared(module_factory):
    return module_factory.start("t1", extra={"max_ttl": 86400 * 30})


@pytest.fixture(scope="module")
def trio(module_factory):
    nodes = module_factory.cluster(3, extra=FAST, prefix="c")
    wait_members(nodes)
    return nodes


# ==========================================================================
# TTL on one node

UNITS = [("2500ms", 2500), ("3s", 3000), ("3", 3000), ("2m", 120_000), ("1h", 3_600_000),
         ("1d", 86_400_000), ("30d", 30 * 86_400_000)]


@pytest.mark.parametrize("ttl,ms", UNITS, ids=[u for u, _ in UNITS])
def test_ttl_units_reply_and_header(shared, ttl, ms):
    key = fresh("unit") + "/k"
    before = now_ms()
    r = put_ttl(shared, key, {"v": 1}, ttl)
    after = now_ms()
    assert r.status_code == 200, r.text
    exp = r.json()["expires"]
    assert before + ms <= exp <= after + ms, (before, exp, after, ms)
    g = shared.get("/kv/" + key)
    assert g.status_code == 200 and int(g.headers["X-Kvs-Expires"]) == exp


def test_no_ttl_no_expiry(shared):
    key = fresh("plain") + "/k"
    r = shared.put("/kv/" + key, "1")
    assert "expires" not in r.json()
    assert "X-Kvs-Expires" not in shared.get("/kv/" + key).headers


BAD_TTLS = ["0", "0s", "999ms", "-1", "-5s", "1.5s", "5x", "", "s", "31d", "2592001",
            "99999999999999d", " 5s", "5 s", "5S"]


@pytest.mark.parametrize("ttl", BAD_TTLS)
def test_bad_ttl_400_writes_nothing(shared, ttl):
    key = fresh("bad") + "/k"
    r = put_ttl(shared, key, 1, ttl)
    assert_json_error(r, 400)
    assert status(shared, key) == 404


def test_max_ttl_config(module_factory):
    n = module_factory.start("t2", extra={"max_ttl": 60})
    assert put_ttl(n, "a", 1, "60s").status_code == 200
    assert_json_error(put_ttl(n, "b", 1, "61s"), 400)
    assert_json_error(put_ttl(n, "b", 1, "2m"), 400)


def test_expired_key_404_listing_watch_and_one_expire_event(shared):
    p = fresh("exp")
    start = int(shared.get("/kv/").headers["X-Kvs-Index"])
    r = put_ttl(shared, p + "/gone", {"x": 1}, "1s")
    exp = r.json()["expires"]
    shared.put_json(p + "/stays", 2)
    items = shared.list_all(p + "/", values=True)
    assert [i.get("expires") for i in items] == [exp, None]
    wait_until(lambda: now_ms() >= exp, 5)
    assert status(shared, p + "/gone") == 404, "expired key still served"
    assert shared.list_all(p + "/") == [p + "/stays"]
    # the reaper writes one expire event, with the version every node derives
    events = []

    def expired_event():
        w = shared.get("/watch/" + p + "/", params={"index": str(start), "wait": "1s"})
        events[:] = [e for e in w.json()["events"] if e["key"] == p + "/gone"]
        return any(e["type"] == "expire" for e in events)
    wait_until(expired_event, 5, msg="no expire event")
    assert [e["type"] for e in events] == ["put", "expire"], events
    assert events[0]["expires"] == exp and events[1]["timestamp"] == exp
    assert events[1]["uuid"] != r.json()["uuid"]
    assert metric(shared, "kvs_expired_total") >= 1


def test_rewrite_before_expiry_is_kept(shared):
    p = fresh("rew")
    start = int(shared.get("/kv/").headers["X-Kvs-Index"])
    e1 = put_ttl(shared, p + "/plain", 1, "1s").json()["expires"]
    put_ttl(shared, p + "/longer", 1, "1s")
    shared.put_json(p + "/plain", "permanent")
    assert put_ttl(shared, p + "/longer", "later", "1h").status_code == 200
    # past the first expiry and a few reaper rounds (every 100 ms)
    wait_until(lambda: now_ms() > e1 + 500, 5)
    assert shared.get_json(p + "/plain") == "permanent"
    assert shared.get_json(p + "/longer") == "later"
    assert "X-Kvs-Expires" not in shared.get("/kv/" + p + "/plain").headers
    w = shared.get("/watch/" + p + "/", params={"index": str(start), "wait": "1s"})
    assert [e["type"] for e in w.json()["events"]] == ["put"] * 4, "a rewritten key was reaped"


def test_refresh(shared):
    key = fresh("ref") + "/k"
    first = put_ttl(shared, key, {"keep": True}, "2s").json()
    r = shared.put("/kv/" + key, params={"ttl": "1h", "refresh": "true"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["expires"] >= first["expires"] + 3_000_000 and doc["uuid"] != first["uuid"]
    assert shared.get_json(key) == {"keep": True}
    # absent key: 404; no ttl: 400; a body: 400
    assert_json_error(shared.put("/kv/" + fresh("none"), params={"ttl": "5s", "refresh": "true"}),
                      404)
    assert_json_error(shared.put("/kv/" + key, params={"refresh": "true"}), 400)
    assert_json_error(shared.put("/kv/" + key, data="1", params={"ttl": "5s", "refresh": "true"}),
                      400)
    assert_json_error(shared.put("/kv/" + key, params={"ttl": "5s", "refresh": "maybe"}), 400)
    # a refresh on an expired key is a 404 too
    gone = fresh("refgone") + "/k"
    e = put_ttl(shared, gone, 1, "1s").json()["expires"]
    wait_until(lambda: now_ms() > e, 5)
    assert_json_error(shared.put("/kv/" + gone, params={"ttl": "5s", "refresh": "true"}), 404)


def test_expired_key_counts_as_absent_for_conditions(shared):
    key = fresh("cond") + "/k"
    e = put_ttl(shared, key, 1, "1s").json()["expires"]
    wait_until(lambda: now_ms() > e, 5)
    assert shared.delete("/kv/" + key).status_code in (404,)
    r = shared.put("/kv/" + key, "2", headers={"If-None-Match": "*"})
    assert r.status_code == 200, r.text


def test_txn_ttl(shared):
    p = fresh("txn")
    ops = [{"op": "put", "key": p + "/a", "value": 1, "ttl": "1h"},
           {"op": "put", "key": p + "/b", "value": 2, "ttl": 60},
           {"op": "put", "key": p + "/c", "value": 3}]
    r = shared.request("POST", "/txn", data=json.dumps({"ops": ops}))
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert res[0]["expires"] - res[0]["timestamp"] >= 3_599_000
    assert 59_000 <= res[1]["expires"] - res[1]["timestamp"] <= 61_000
    assert "expires" not in res[2]
    assert int(shared.get("/kv/" + p + "/a").headers["X-Kvs-Expires"]) == res[0]["expires"]
    for bad in ("0s", "soon", -3, 1.5, True):
        r = shared.request("POST", "/txn", data=json.dumps(
            {"ops": [{"op": "put", "key": p + "/x", "value": 1, "ttl": bad}]}))
        assert_json_error(r, 400)
    r = shared.request("POST", "/txn", data=json.dumps(
        {"ops": [{"op": "delete", "key": p + "/a", "ttl": "5s"}]}))
    assert_json_error(r, 400)
    assert status(shared, p + "/x") == 404


# ==========================================================================
# TTL across a cluster

def test_expiry_on_every_node_within_a_second_and_after_restart(trio):
    p = fresh("all")
    r = put_ttl(trio[0], p + "/k", {"v": 1}, "2s")
    exp = r.json()["expires"]
    wait_until(lambda: all(status(n, p + "/k") == 200 for n in trio), 5,
               msg="the key never reached every node")
    for n in trio:
        assert int(n.get("/kv/" + p + "/k").headers["X-Kvs-Expires"]) == exp
    wait_until(lambda: now_ms() >= exp, 5)
    deadline = exp + 1000
    for n in trio:
        assert status(n, p + "/k") == 404, f"{n} serves an expired key"
    assert now_ms() <= deadline + 500, "the checks themselves took too long to mean anything"
    trio[2].restart()
    wait_members(trio)
    assert status(trio[2], p + "/k") == 404


def test_thousand_keys_expire_without_conflicts(trio):
    p = fresh("many")
    conflicts = [metric(n, "kvs_conflicts_detected_total") for n in trio]
    tombs = [metric(n, "kvs_tombstones") for n in trio]
    ops_per = 100
    exp = 0
    for b in range(10):
        ops = [{"op": "put", "key": f"{p}/k{b * ops_per + i:04d}", "value": i, "ttl": "2s"}
               for i in range(ops_per)]
        r = trio[b % 3].request("POST", "/txn", data=json.dumps({"ops": ops}))
        assert r.status_code == 200, r.text
        exp = max(exp, max(x["expires"] for x in r.json()["results"]))
    wait_until(lambda: now_ms() > exp, 10)
    for n in trio:
        assert n.list_all(p + "/") == [], f"{n} lists expired keys"
    # each node reaps them itself, or takes a peer's identical tombstone first (a slow node,
    # e.g. under ASan): either way 1000 more tombstones on every node
    wait_until(lambda: all(metric(n, "kvs_tombstones") - t0 >= 1000
                           for n, t0 in zip(trio, tombs)), 60,
               msg="1000 expired keys turned into tombstones on every node")
    assert sum(metric(n, "kvs_expired_total") for n in trio) >= 1000
    # a few anti-entropy rounds later: the same tombstones everywhere, no conflict
    time.sleep(3 * FAST["anti_entropy_interval"])
    for n, c0 in zip(trio, conflicts):
        assert metric(n, "kvs_conflicts_detected_total") == c0, f"{n} counted a conflict"
    a = trio[0].request("POST", "/members/fetch", data=json.dumps({"keys": [f"{p}/k0007"]}))
    b = trio[1].request("POST", "/members/fetch", data=json.dumps({"keys": [f"{p}/k0007"]}))
    assert a.json()["items"][0]["uuid"] == b.json()["items"][0]["uuid"], "tombstones differ"


def test_ttl_reaches_a_node_that_was_down(trio):
    n1, n2, n3 = trio
    p = fresh("down")
    n3.stop()
    r = put_ttl(n1, p + "/k", {"v": 1}, "1h")
    exp = r.json()["expires"]
    n3.start()
    wait_members(trio)
    wait_until(lambda: status(n3, p + "/k") == 200, 30, msg="n3 never caught up")
    assert int(n3.get("/kv/" + p + "/k").headers["X-Kvs-Expires"]) == exp


# ==========================================================================
# clocks

def self_record(node):
    return next(m for m in node.members() if m["id"] == node.node_id)


def test_push_from_far_future_refused_for_that_record_only(shared):
    p = fresh("future")
    now = now_ms()
    items = [{"key": p + "/ok", "uuid": str(uuidlib.uuid4()), "timestamp": now,
              "tombstone": False, "value": "1"},
             {"key": p + "/ahead", "uuid": str(uuidlib.uuid4()), "timestamp": now + 60_000,
              "tombstone": False, "value": "2"}]
    before = metric(shared, "kvs_clock_refused_total")
    r = shared.request("POST", "/members/push", json={"from": self_record(shared), "items": items})
    assert r.status_code == 200, r.text
    assert shared.get_json(p + "/ok") == 1
    assert status(shared, p + "/ahead") == 404
    assert metric(shared, "kvs_clock_refused_total") == before + 1


def test_clock_offsets_shown(trio):
    for n in trio:
        def known():
            ms = n.members()
            return all(m.get("clock_offset_ms") is not None for m in ms)
        wait_until(known, 15, msg=f"{n}: offsets of every member")
        for m in n.members():
            assert abs(m["clock_offset_ms"]) < 200, m
        text = n.get("/metrics").text
        peers = {lab["peer"] for name, lab, _ in parse_metrics(text)
                 if name == "kvs_clock_offset_seconds"}
        assert peers == {m.node_id for m in trio} - {n.node_id}, peers
        assert n.health()["clock"] == "ok"


@needs_faketime
def test_two_nodes_skewed_peer_refused_then_applied_once_fixed(node_factory):
    a = node_factory.create("a", extra=dict(FAST))
    b = node_factory.create("b", extra=dict(FAST), env=skewed_env("+10s"))
    a.config["seed_nodes"] = [b.address]
    b.config["seed_nodes"] = [a.address]
    a.start(wait=False)
    b.start(wait=False)
    a.wait_ready()
    b.wait_ready()
    wait_members([a, b])

    def offset_of(n, peer):
        for m in n.members():
            if m["id"] == peer.node_id:
                return m.get("clock_offset_ms")
        return None
    wait_until(lambda: offset_of(a, b) is not None, 15, msg="a never measured b's offset")
    off = offset_of(a, b)
    assert 9000 <= off <= 11000, f"b is 10 s ahead, a measured {off} ms"
    assert abs(metric(a, "kvs_clock_offset_seconds", peer="b") - off / 1000) < 1.0
    # two nodes alone: nobody can tell which clock is wrong, both only warn
    assert a.health()["clock"] == "ok" and b.health()["clock"] == "ok"
    w = b.put_json("skew/k", {"by": "b"})
    assert w["timestamp"] > now_ms() + 8000
    wait_until(lambda: metric(a, "kvs_clock_refused_total") >= 1, 15,
               msg="a never refused b's record")
    assert status(a, "skew/k") == 404
    # b's clock is fixed: a later sync brings the record (whose stamp is soon past)
    b.stop()
    b.env = {k: v for k, v in b.env.items() if k not in ("LD_PRELOAD", "FAKETIME")}
    b.start()
    wait_until(lambda: status(a, "skew/k") == 200, 40,
               msg="the refused record never arrived once the clocks agreed")
    assert a.get("/kv/skew/k").headers["ETag"] == f'"{w["uuid"]}"'


@needs_faketime
def test_three_nodes_the_skewed_one_refuses_writes_until_fixed(node_factory):
    nodes = [node_factory.create(f"s{i}", extra=dict(FAST)) for i in range(3)]
    bad = nodes[2]
    bad.env.update(skewed_env("+5s"))
    for n in nodes:
        n.config["seed_nodes"] = [m.address for m in nodes if m is not n]
    for n in nodes:
        n.start(wait=False)
    for n in nodes:
        n.wait_ready()
    wait_members(nodes)
    wait_until(lambda: bad.health()["clock"] == "skewed", 20, msg="s2 never saw itself skewed")
    assert "clock_skew" in bad.log_text()
    r = bad.put("/kv/x", "1")
    assert_json_error(r, 503)
    assert r.headers.get("Retry-After")
    assert_json_error(bad.request("POST", "/txn", data=json.dumps(
        {"ops": [{"op": "put", "key": "x", "value": 1}]})), 503)
    assert bad.get("/health").status_code == 200
    nodes[0].put_json("fine", 1)
    wait_until(lambda: bad.get_json("fine") == 1, 10, msg="reads and replication go on")
    for n in nodes[:2]:
        assert n.health()["clock"] == "ok"
        assert n.put("/kv/y", "1").status_code == 200
    bad.stop()
    bad.env = {k: v for k, v in bad.env.items() if k not in ("LD_PRELOAD", "FAKETIME")}
    bad.start()
    wait_members(nodes)
    wait_until(lambda: bad.health()["clock"] == "ok" and bad.put("/kv/x", "2").status_code == 200,
               20, msg="s2 never came back once its clock agreed")
