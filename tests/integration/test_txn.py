"""
Conditional writes and transactions (SPEC section 8, issue 17), on real processes.

What is checked:

* ``If-Match: "<uuid>"``, ``If-Match: *`` and ``If-None-Match: *`` on PUT and
  DELETE, each on a present, an absent and a deleted key: 412 with the current
  uuid and timestamp (or nulls) and nothing changed; the ETag of a GET is what
  If-Match takes; every malformed condition header is a 400 that changes
  nothing;
* a read-modify-write counter driven by 16 threads with If-Match loses no
  increment;
* ``POST /txn``: all or nothing (a failed condition names the op positions
  and changes nothing, not even the change index), results carry each key's
  new version, the events of one transaction take consecutive indexes, 128
  ops pass and 129 do not, every bad body is a 400 (or 413) that changes
  nothing;
* concurrent transactions over overlapping keys in different orders finish
  (no deadlock) and never interleave;
* a peer applies a transaction whole: a reader of the peer never sees half
  of a two-key transaction (listings, and reads in order);
* kill -9 in the middle of a stream of transactions leaves each one whole.

Waits are wait-untils with deadlines; no fixed sleeps.
"""

import json
import random
import re
import signal
import threading
import time

import pytest
import requests

from conftest import (FAST_INTERVALS, UUID4_RE, assert_json_error, raw_request, wait_members,
                      wait_until)

FAST = dict(FAST_INTERVALS, failure_timeout=20, throttle_delay_ms=0, fetch_delay_ms=0)

_seq = iter(range(1, 1 << 30))


def fresh(name):
    """A key prefix no other test of this module uses."""
    return f"t{next(_seq)}{name}"


@pytest.fixture(scope="module")
def shared(module_factory):
    """One standalone node for tests that only need their own keys."""
    return module_factory.start("x1")


# --------------------------------------------------------------------------
# helpers

def etag(node, key):
    r = node.get("/kv/" + key)
    assert r.status_code == 200, r.text
    tag = r.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f-]{36}"', tag), tag
    return tag


def cput(node, key, value, **headers):
    return node.put("/kv/" + key, json.dumps(value), headers=headers)


def cdel(node, key, **headers):
    return node.delete("/kv/" + key, headers=headers)


def check_412(r, current=None):
    """r is a 412 naming the current version (a {"uuid","timestamp"} dict, or
    None for an absent or deleted key)."""
    doc = assert_json_error(r, 412)
    assert doc["error"] == "precondition failed", doc
    if current is None:
        assert doc["uuid"] is None and doc["timestamp"] is None, doc
    else:
        assert doc["uuid"] == current["uuid"] and doc["timestamp"] == current["timestamp"], doc
    return doc


def version_of(node, key):
    r = node.get("/kv/" + key)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return {"uuid": r.headers["ETag"].strip('"'), "timestamp": int(r.headers["X-Kvs-Timestamp"]),
            "value": r.json()}


def txn(node, ops, **kw):
    return node.request("POST", "/txn", data=json.dumps({"ops": ops}),
                        headers={"Content-Type": "application/json"}, **kw)


def index_of(node):
    r = node.get("/kv/")
    assert r.status_code == 200, r.text
    return int(r.headers["X-Kvs-Index"])


def make_present(node, key, value=1):
    return node.put_json(key, value)


def make_deleted(node, key):
    node.put_json(key, "doomed")
    r = node.delete("/kv/" + key)
    assert r.status_code == 204, r.text


STATES = ("present", "absent", "deleted")


def prepare(node, state, name):
    key = fresh(name) + "/" + state
    if state == "present":
        make_present(node, key)
    elif state == "deleted":
        make_deleted(node, key)
    return key


# ==========================================================================
# conditional PUT and DELETE

# (header, value builder, states where it holds)
CONDITIONS = [
    ("If-None-Match", lambda node, key: "*", {"absent", "deleted"}),
    ("If-Match", lambda node, key: "*", {"present"}),
    ("If-Match", lambda node, key: etag(node, key) if version_of(node, key) else
     '"00000000-0000-4000-8000-000000000000"', {"present"}),
]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("cond", range(len(CONDITIONS)),
                         ids=["if-none-match-star", "if-match-star", "if-match-uuid"])
def test_conditional_put(shared, cond, state):
    header, make_value, holds_in = CONDITIONS[cond]
    key = prepare(shared, state, "cput")
    before = version_of(shared, key)
    r = cput(shared, key, {"new": True}, **{header: make_value(shared, key)})
    if state in holds_in:
        assert r.status_code == 200, r.text
        doc = r.json()
        assert UUID4_RE.match(doc["uuid"]), doc
        after = version_of(shared, key)
        assert after["value"] == {"new": True} and after["uuid"] == doc["uuid"]
        assert r.headers.get("X-Kvs-Index"), "a conditional write carries X-Kvs-Index"
    else:
        check_412(r, before and {k: before[k] for k in ("uuid", "timestamp")})
        assert version_of(shared, key) == before, "a failed condition changed the key"


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("how", ["star", "uuid", "stale-uuid"])
def test_conditional_delete(shared, how, state):
    key = prepare(shared, state, "cdel")
    before = version_of(shared, key)
    if how == "star":
        value = "*"
    elif how == "uuid":
        value = etag(shared, key) if before else '"00000000-0000-4000-8000-000000000000"'
    else:
        value = '"11111111-1111-4111-8111-111111111111"'
    r = cdel(shared, key, **{"If-Match": value})
    if state == "present" and how != "stale-uuid":
        assert r.status_code == 204, r.text
        assert version_of(shared, key) is None
    else:
        check_412(r, before and {k: before[k] for k in ("uuid", "timestamp")})
        assert version_of(shared, key) == before


def test_stale_etag_loses_and_names_the_winner(shared):
    key = fresh("stale") + "/k"
    make_present(shared, key, 1)
    tag = etag(shared, key)
    won = cput(shared, key, 2, **{"If-Match": tag})
    assert won.status_code == 200, won.text
    lost = cput(shared, key, 3, **{"If-Match": tag})
    check_412(lost, won.json())
    assert shared.get_json(key) == 2


def test_if_none_match_creates_once(shared):
    key = fresh("create") + "/k"
    first = cput(shared, key, "mine", **{"If-None-Match": "*"})
    assert first.status_code == 200, first.text
    second = cput(shared, key, "theirs", **{"If-None-Match": "*"})
    check_412(second, first.json())
    assert shared.get_json(key) == "mine"


BAD_HEADERS = [
    ({"If-Match": "abc"}, "PUT", "not quoted, not a uuid"),
    ({"If-Match": "00000000-0000-4000-8000-000000000000"}, "PUT", "uuid without quotes"),
    ({"If-Match": '"not-a-uuid"'}, "PUT", "quoted garbage"),
    ({"If-Match": 'W/"00000000-0000-4000-8000-000000000000"'}, "PUT", "weak etag"),
    ({"If-Match": '"00000000-0000-4000-8000-000000000000", "11111111-1111-4111-8111-111111111111"'},
     "PUT", "a list"),
    ({"If-Match": ""}, "PUT", "empty"),
    ({"If-None-Match": '"00000000-0000-4000-8000-000000000000"'}, "PUT", "if-none-match uuid"),
    ({"If-None-Match": "*", "If-Match": "*"}, "PUT", "both headers"),
    ({"If-None-Match": "*"}, "DELETE", "if-none-match on delete"),
    ({"If-Match": "**"}, "DELETE", "two stars"),
]


@pytest.mark.parametrize("headers,method,why", BAD_HEADERS, ids=[w for _, _, w in BAD_HEADERS])
def test_malformed_condition_400(shared, headers, method, why):
    key = fresh("bad") + "/k"
    make_present(shared, key, "keep")
    before = version_of(shared, key)
    idx = index_of(shared)
    if method == "PUT":
        r = cput(shared, key, "changed", **headers)
    else:
        r = cdel(shared, key, **headers)
    assert_json_error(r, 400)
    assert version_of(shared, key) == before
    assert index_of(shared) == idx, "a refused write took a change index"


def test_read_modify_write_counter_16_threads(shared):
    """16 threads increment one counter with If-Match; no increment is lost."""
    key = fresh("counter") + "/n"
    shared.put_json(key, 0)
    per_thread, threads = 20, 16
    errors, retries = [], [0]
    lock = threading.Lock()

    def worker():
        s = requests.Session()
        url = shared.url("/kv/" + key)
        try:
            for _ in range(per_thread):
                for _attempt in range(10000):
                    g = s.get(url, timeout=10)
                    assert g.status_code == 200, g.text
                    p = s.put(url, data=json.dumps(g.json() + 1),
                              headers={"If-Match": g.headers["ETag"]}, timeout=10)
                    if p.status_code == 200:
                        break
                    assert p.status_code == 412, p.text
                    with lock:
                        retries[0] += 1
                else:
                    raise AssertionError("never won")
        except Exception as e:  # reported by the main thread
            errors.append(repr(e))

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not any(t.is_alive() for t in ts), "a worker hung"
    assert not errors, errors[:3]
    assert shared.get_json(key) == per_thread * threads
    assert retries[0] > 0, "16 threads never collided: the test proves nothing"


# ==========================================================================
# POST /txn

def test_txn_applies_all_and_reports_versions(shared):
    p = fresh("all")
    shared.put_json(p + "/old", "x")
    ops = [{"op": "put", "key": p + "/a", "value": {"n": 1, "big": 12345678901234567890}},
           {"op": "put", "key": p + "/b", "value": [1, "two"], "if_none_match": "*"},
           {"op": "delete", "key": p + "/old", "if_match": "*"},
           {"op": "check", "key": p + "/missing", "absent": True}]
    r = txn(shared, ops)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["key"] for x in res] == [o["key"] for o in ops]
    for x in res[:2]:
        assert version_of(shared, x["key"])["uuid"] == x["uuid"]
    assert res[0]["timestamp"] == res[1]["timestamp"] or res[0]["timestamp"] > 0
    # values are stored byte for byte (a big integer keeps its digits)
    raw = shared.get("/kv/" + p + "/a").content
    assert raw == b'{"n": 1, "big": 12345678901234567890}', raw
    assert version_of(shared, p + "/old") is None
    assert res[3]["uuid"] is None


def test_txn_failed_condition_changes_nothing(shared):
    p = fresh("none")
    a = shared.put_json(p + "/a", 1)
    shared.put_json(p + "/b", 2)
    before = [version_of(shared, p + k) for k in ("/a", "/b", "/c")]
    idx = index_of(shared)
    ops = [{"op": "put", "key": p + "/a", "value": 10, "if_match": '"%s"' % a["uuid"]},
           {"op": "put", "key": p + "/b", "value": 20, "if_none_match": "*"},
           {"op": "put", "key": p + "/c", "value": 30},
           {"op": "check", "key": p + "/d", "uuid": "00000000-0000-4000-8000-000000000000"}]
    r = txn(shared, ops)
    doc = assert_json_error(r, 412)
    assert doc["failed"] == [1, 3], doc
    assert [c["key"] for c in doc["current"]] == [p + "/b", p + "/d"]
    assert doc["current"][1]["uuid"] is None
    assert [version_of(shared, p + k) for k in ("/a", "/b", "/c")] == before
    assert index_of(shared) == idx, "a failed transaction took change indexes"


def test_txn_events_take_consecutive_indexes(shared):
    p = fresh("idx")
    start = index_of(shared)
    ops = [{"op": "put", "key": f"{p}/k{i}", "value": i} for i in range(10)]
    r = txn(shared, ops)
    assert r.status_code == 200, r.text
    w = shared.get("/watch/" + p + "/", params={"index": str(start), "wait": "1s"})
    assert w.status_code == 200, w.text
    events = w.json()["events"]
    assert [e["key"] for e in events] == [o["key"] for o in ops]
    idxs = [e["index"] for e in events]
    assert idxs == list(range(idxs[0], idxs[0] + 10)), idxs


def test_txn_128_ops_pass_129_do_not(shared):
    p = fresh("max")
    ops = [{"op": "put", "key": f"{p}/k{i:03d}", "value": i} for i in range(128)]
    r = txn(shared, ops)
    assert r.status_code == 200, r.text
    assert len(shared.list_all(p + "/")) == 128
    q = fresh("over")
    r = txn(shared, [{"op": "put", "key": f"{q}/k{i:03d}", "value": i} for i in range(129)])
    assert_json_error(r, 400)
    assert shared.list_all(q + "/") == []


def _bad_bodies(max_value):
    k = fresh("badbody")
    put = {"op": "put", "key": k + "/a", "value": 1}
    return [
        (b"{not json", "not JSON"),
        (b"[]", "an array"),
        (b'"ops"', "a string"),
        (b"{}", "no ops"),
        (b'{"ops": {}}', "ops not an array"),
        (b'{"ops": []}', "zero ops"),
        (json.dumps({"ops": [put], "extra": 1}).encode(), "unknown top-level member"),
        (json.dumps({"ops": [1]}).encode(), "op not an object"),
        (json.dumps({"ops": [{"op": "frob", "key": k + "/a"}]}).encode(), "unknown op"),
        (json.dumps({"ops": [{"key": k + "/a", "value": 1}]}).encode(), "op missing"),
        (json.dumps({"ops": [{"op": "put", "value": 1}]}).encode(), "key missing"),
        (json.dumps({"ops": [{"op": "put", "key": k + "/a"}]}).encode(), "put without value"),
        (json.dumps({"ops": [put, dict(put, value=2)]}).encode(), "duplicate key"),
        (json.dumps({"ops": [dict(put, key="")]}).encode(), "empty key"),
        (json.dumps({"ops": [dict(put, key="a//b")]}).encode(), "empty segment"),
        (json.dumps({"ops": [dict(put, key="x" * 1025)]}).encode(), "key too long"),
        (json.dumps({"ops": [dict(put, key=5)]}).encode(), "key not a string"),
        (json.dumps({"ops": [dict(put, ttl="forever")]}).encode(), "bad ttl"),
        (json.dumps({"ops": [dict(put, if_match="abc")]}).encode(), "bad if_match"),
        (json.dumps({"ops": [dict(put, if_none_match="x")]}).encode(), "bad if_none_match"),
        (json.dumps({"ops": [dict(put, if_match="*", if_none_match="*")]}).encode(),
         "both conditions"),
        (json.dumps({"ops": [{"op": "check", "key": k + "/a"}]}).encode(), "check without test"),
        (json.dumps({"ops": [{"op": "check", "key": k + "/a", "absent": False}]}).encode(),
         "absent false"),
        (json.dumps({"ops": [{"op": "check", "key": k + "/a", "uuid": "nope"}]}).encode(),
         "check bad uuid"),
        (json.dumps({"ops": [{"op": "delete", "key": k + "/a", "value": 1}]}).encode(),
         "delete with value"),
        (json.dumps({"ops": [dict(put, bogus=1)]}).encode(), "unknown op member"),
        (json.dumps({"ops": [dict(put, key="a\u0000b")]}).encode(), "NUL in key"),
        (json.dumps({"ops": [dict(put, value="x" * max_value)]}).encode(), "value too large"),
        (b'{"ops": [{"op": "put", "key": "a", "value": 1, "value": 2}]}', "member twice"),
    ], k


def test_txn_bad_bodies_400_and_change_nothing(shared):
    bodies, k = _bad_bodies(1 << 20)
    shared.put_json(k + "/a", "keep")
    before = version_of(shared, k + "/a")
    idx = index_of(shared)
    for body, why in bodies:
        r = shared.request("POST", "/txn", data=body)
        doc = assert_json_error(r, 400)
        assert doc["error"], why
    assert version_of(shared, k + "/a") == before
    assert index_of(shared) == idx


def test_txn_body_over_limit_413(module_factory):
    n = module_factory.start("x2", extra={"max_value_bytes": 1024})
    body = json.dumps({"ops": [{"op": "put", "key": f"k{i}", "value": "x" * 1000}
                               for i in range(5)]})
    assert len(body) > 4 * 1024
    r = n.request("POST", "/txn", data=body)
    assert_json_error(r, 413)
    assert n.list_all() == []
    # within the cap, but one value over max_value_bytes: 400
    r = txn(n, [{"op": "put", "key": "big", "value": "x" * 1030}])
    assert_json_error(r, 400)
    # a transaction's body may hold several values up to the cap together
    r = txn(n, [{"op": "put", "key": f"k{i}", "value": "x" * 900} for i in range(4)])
    assert r.status_code == 200, r.text


def test_txn_wrong_method_and_metrics(shared):
    r = shared.get("/txn")
    assert r.status_code == 405 and "POST" in r.headers.get("Allow", ""), r.status_code
    k = fresh("m")
    assert txn(shared, [{"op": "put", "key": k, "value": 1}]).status_code == 200
    text = shared.get("/metrics").text
    assert re.search(r'kvs_http_requests_total\{[^}]*route="txn"[^}]*\} [1-9]', text), \
        "no txn route in /metrics"


def test_txn_refused_on_read_only_node(node_factory):
    n = node_factory.start("ro", extra={"read_only": True})
    r = txn(n, [{"op": "put", "key": "a", "value": 1}])
    assert_json_error(r, 403)


def test_concurrent_overlapping_txns_never_deadlock_or_interleave(shared):
    """8 threads write all of 12 keys per transaction, in shuffled orders, with
    one token per transaction; every transaction finishes and at the end (and
    in listings taken along the way) all keys hold one transaction's token."""
    p = fresh("overlap")
    keys = [f"{p}/k{i:02d}" for i in range(12)]
    errors, seen_mixed = [], []
    stop = threading.Event()

    def writer(t):
        s = requests.Session()
        rnd = random.Random(t)
        try:
            for i in range(30):
                order = keys[:]
                rnd.shuffle(order)
                ops = [{"op": "put", "key": k, "value": f"{t}-{i}"} for k in order]
                r = s.post(shared.url("/txn"), data=json.dumps({"ops": ops}), timeout=20)
                assert r.status_code == 200, r.text
        except Exception as e:
            errors.append(repr(e))

    def reader():
        s = requests.Session()
        while not stop.is_set():
            r = s.get(shared.url("/kv/" + p + "/"), params={"values": "true"}, timeout=20)
            items = r.json()["items"]
            vals = {i["value"] for i in items}
            if len(items) == len(keys) and len(vals) != 1:
                seen_mixed.append(vals)

    ws = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    rd = threading.Thread(target=reader)
    rd.start()
    for w in ws:
        w.start()
    for w in ws:
        w.join(120)
    stop.set()
    rd.join(30)
    assert not any(w.is_alive() for w in ws), "a transaction never finished: deadlock?"
    assert not errors, errors[:3]
    assert not seen_mixed, f"a listing saw two transactions mixed: {seen_mixed[:2]}"
    final = {shared.get_json(k) for k in keys}
    assert len(final) == 1, f"transactions interleaved: {final}"


# ==========================================================================
# replication and crashes

@pytest.fixture(scope="module")
def pair(module_factory):
    nodes = module_factory.cluster(2, extra=FAST, prefix="r")
    wait_members(nodes)
    return nodes


def test_peer_applies_a_txn_whole(pair):
    """A writer sets a and b to the same counter in each transaction on node 1;
    readers of node 2 read a then b (b is never behind a) and list both (always
    equal)."""
    n1, n2 = pair
    p = fresh("whole")
    ka, kb = p + "/a", p + "/b"
    assert txn(n1, [{"op": "put", "key": ka, "value": 0},
                    {"op": "put", "key": kb, "value": 0}]).status_code == 200
    wait_until(lambda: n2.get_json(kb) == 0, 10, msg="first txn never reached node 2")
    stop = threading.Event()
    bad, reads = [], [0]

    def reader():
        s = requests.Session()
        while not stop.is_set():
            a = s.get(n2.url("/kv/" + ka), timeout=10).json()
            b = s.get(n2.url("/kv/" + kb), timeout=10).json()
            if b < a:
                bad.append(("read", a, b))
            items = s.get(n2.url("/kv/" + p + "/"), params={"values": "true"},
                          timeout=10).json()["items"]
            vals = [i["value"] for i in items]
            if len(vals) == 2 and vals[0] != vals[1]:
                bad.append(("list", vals))
            reads[0] += 1

    rd = threading.Thread(target=reader)
    rd.start()
    s = requests.Session()
    last = 0
    try:
        for i in range(1, 301):
            r = s.post(n1.url("/txn"), data=json.dumps({"ops": [
                {"op": "put", "key": ka, "value": i}, {"op": "put", "key": kb, "value": i}]}),
                timeout=10)
            assert r.status_code == 200, r.text
            last = i
        wait_until(lambda: n2.get_json(ka) == last and n2.get_json(kb) == last, 15,
                   msg="node 2 never caught up")
    finally:
        stop.set()
        rd.join(30)
    assert reads[0] > 10, "the reader hardly ran: the test proves little"
    assert not bad, f"node 2 showed half a transaction: {bad[:3]}"


def test_peer_watch_sees_txn_events_consecutive(pair):
    n1, n2 = pair
    p = fresh("pw")
    start = index_of(n2)
    ops = [{"op": "put", "key": f"{p}/k{i}", "value": i} for i in range(5)]
    assert txn(n1, ops).status_code == 200
    got = []

    def have_all():
        w = n2.get("/watch/" + p + "/", params={"index": str(start), "wait": "1s"})
        got[:] = w.json()["events"]
        return len(got) == 5
    wait_until(have_all, 15, msg="node 2 never saw the transaction")
    idxs = [e["index"] for e in got]
    assert idxs == list(range(idxs[0], idxs[0] + 5)), idxs
    assert [e["origin"] for e in got] == [n1.node_id] * 5


def test_kill_9_mid_txn_stream_keeps_each_whole(node_factory):
    n = node_factory.start("crash")
    p = "crash"
    keys = [f"{p}/k{i}" for i in range(8)]
    acked = [0]
    stop = threading.Event()

    def writer():
        s = requests.Session()
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = s.post(n.url("/txn"), data=json.dumps({"ops": [
                    {"op": "put", "key": k, "value": i} for k in keys]}), timeout=5)
            except requests.RequestException:
                return
            if r.status_code == 200:
                acked[0] = i

    w = threading.Thread(target=writer)
    w.start()
    wait_until(lambda: acked[0] >= 50, 30, msg="the writer made no progress")
    n.send_signal(signal.SIGKILL)
    n.wait_exit(10)
    stop.set()
    w.join(30)
    n.start()
    vals = [n.get_json(k) for k in keys]
    assert len(set(vals)) == 1, f"a transaction was torn by kill -9: {vals}"
    assert vals[0] >= acked[0], f"an acknowledged transaction was lost: {vals[0]} < {acked[0]}"
