"""
Watches and the change index (SPEC section 7, issue 16), on real processes.

What is checked:

* the change index: every change a node applies takes the next index; every
  /kv/ and /watch/ reply carries ``X-Kvs-Index``; the index survives kill -9
  and never repeats; ``watch_history: 0`` turns it off (501, no header);
* long-poll ``GET /watch/...``: wakes on a local write, a write made on
  another node, a delete and a conflict winner; key, prefix and everything
  filters; ``index``, ``since``, ``wait``, ``limit``, ``values=false``; an
  index from the future answers at once; an index older than the history 410;
* Server-Sent Events (``Accept: text/event-stream``) and ``Last-Event-ID``;
* ``max_watchers``: 503 with ``Retry-After`` past it while /kv/ still answers,
  a client that went away frees its slot;
* every 400 case; the four watch metrics;
* resuming on another node by ``since`` after the watched node is killed.

Long-polls and streams go through http.client / raw sockets with timeouts, so
a hang fails the test instead of stalling the run.  Waits are wait-untils with
deadlines; the only fixed delays are the ``wait`` values a test asks the node
to honour.
"""

import http.client
import json
import re
import socket
import struct
import threading
import time
import urllib.parse
import uuid as uuidlib

import pytest

from conftest import (FAST_INTERVALS, UUID4_RE, assert_json_error, now_ms, parse_metrics,
                      raw_request, wait_members, wait_until)

FAST = dict(FAST_INTERVALS, failure_timeout=20, throttle_delay_ms=0, fetch_delay_ms=0)

WATCH_METRICS = ("kvs_watchers_open", "kvs_watch_events_delivered_total",
                 "kvs_watch_compacted_total", "kvs_watch_refused_total")

_seq = iter(range(1, 1 << 30))


def fresh(name):
    """A key prefix no other test of this module uses."""
    return f"w{next(_seq)}{name}"


# --------------------------------------------------------------------------
# helpers: index, metrics

def index_header(headers, what=""):
    v = headers.get("X-Kvs-Index")
    assert v is not None, f"no X-Kvs-Index header on {what}: {dict(headers)}"
    assert re.fullmatch(r"\d+", v.strip()), f"X-Kvs-Index {v!r} on {what}"
    return int(v)


def current_index(node):
    """The node's current index, from the X-Kvs-Index of a 404 GET."""
    r = node.get("/kv/watch-test-no-such-key")
    assert r.status_code == 404, r.text
    return index_header(r.headers, "GET /kv/ 404")


def metric(node, name):
    r = node.get("/metrics")
    assert r.status_code == 200, r.text
    return sum(v for n, _, v in parse_metrics(r.text) if n == name)


def metric_names(node):
    r = node.get("/metrics")
    assert r.status_code == 200, r.text
    return {n for n, _, _ in parse_metrics(r.text)}


def wait_open_watchers(node, pred, timeout=5.0, msg="kvs_watchers_open"):
    return wait_until(lambda: pred(metric(node, "kvs_watchers_open")), timeout=timeout,
                      interval=0.02, msg=msg)


# --------------------------------------------------------------------------
# helpers: long-poll

def wait_seconds(w):
    """The seconds a `wait` value stands for (None: the 60 s default)."""
    if w is None:
        return 60.0
    w = str(w)
    for suffix, mult in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if w.endswith(suffix) and w[:-len(suffix)].isdigit():
            return int(w[:-len(suffix)]) * mult
    return float(w) if w.isdigit() else 0.0


class Reply:
    def __init__(self, status, headers, body, elapsed, done_at):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed    # seconds from sending the request to the whole reply
        self.done_at = done_at    # time.monotonic() when the reply was read

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Reply {self.status} after {self.elapsed:.2f}s {self.body[:300]!r}>"


def watch_target(path, params):
    q = {k: str(v) for k, v in params.items() if v is not None}
    return "/watch/" + path + ("?" + urllib.parse.urlencode(q, safe="/") if q else "")


def watch(node, path="", wait="5s", headers=None, timeout=None, **params):
    """One GET /watch/{path} with wait and params (None values left out).

    Socket timeout: the wait plus 10 s, so a reply that never comes fails.
    """
    target = watch_target(path, dict(params, wait=wait))
    if timeout is None:
        timeout = wait_seconds(wait) + 10.0
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=timeout)
    t0 = time.monotonic()
    try:
        conn.request("GET", target, headers=dict(headers or {}, Connection="close"))
        resp = conn.getresponse()
        body = resp.read()
        t1 = time.monotonic()
        return Reply(resp.status, resp.msg, body, t1 - t0, t1)
    finally:
        conn.close()


def check_event(e, values=True):
    """Shape of one event E; returns it."""
    assert isinstance(e, dict), e
    assert isinstance(e.get("index"), int) and e["index"] > 0, e
    assert isinstance(e.get("key"), str) and e["key"], e
    assert e.get("type") in ("put", "delete"), e
    assert isinstance(e.get("uuid"), str) and UUID4_RE.match(e["uuid"]), e
    assert isinstance(e.get("timestamp"), int) and e["timestamp"] > 0, e
    assert isinstance(e.get("origin"), str) and e["origin"], e
    if e["type"] == "put" and values:
        assert "value" in e, f"put event without value: {e}"
    else:
        assert "value" not in e, f"event must not carry a value here: {e}"
    return e


def lp_body(r, values=True):
    """A long-poll 200 reply: checks {"index", "events"} and every event; returns the body."""
    assert r.status == 200, f"watch: {r}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), dict(r.headers)
    index_header(r.headers, "a /watch/ reply")
    doc = r.json()
    assert isinstance(doc, dict) and isinstance(doc.get("index"), int), doc
    assert isinstance(doc.get("events"), list), doc
    prev = None
    for e in doc["events"]:
        check_event(e, values)
        if prev is not None:
            assert e["index"] > prev, f"event indexes not increasing: {doc['events']}"
        prev = e["index"]
    if doc["events"]:
        assert doc["index"] >= doc["events"][-1]["index"], doc
    return doc


class Async(threading.Thread):
    """Runs fn() on a thread; get() returns its result or raises its error."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn = fn
        self.result = None
        self.error = None
        self.start()

    def run(self):
        try:
            self.result = self.fn()
        except BaseException as e:  # handed to the test thread by get()
            self.error = e

    def get(self, timeout=15.0):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError(f"no answer within {timeout}s")
        if self.error is not None:
            raise self.error
        return self.result


def poll_async(node, path="", wait="10s", **params):
    """Starts a long-poll on a thread and waits until the node counts it open."""
    before = metric(node, "kvs_watchers_open")
    p = Async(lambda: watch(node, path, wait=wait, **params))
    wait_open_watchers(node, lambda v: v >= before + 1 or not p.is_alive(),
                       msg="the long-poll counted in kvs_watchers_open")
    return p


def collect(node, path, index, until, timeout=20.0, wait="2s", **params):
    """Long-polls from index until until(events so far) is true; returns (events, index)."""
    events = []
    deadline = time.monotonic() + timeout
    while True:
        doc = lp_body(watch(node, path, wait=wait, index=index, **params),
                      values=params.get("values") != "false")
        events.extend(doc["events"])
        assert doc["index"] >= index or not doc["events"], doc
        index = doc["index"]
        if until(events):
            return events, index
        if time.monotonic() > deadline:
            raise AssertionError(f"watch {path} from index: condition not met in {timeout}s; "
                                 f"events so far: {events}")


def put(node, key, value):
    """PUT, returns (reply json, X-Kvs-Index of the reply)."""
    r = node.put("/kv/" + key, json.dumps(value))
    assert r.status_code == 200, f"PUT {key}: {r.status_code} {r.text}"
    return r.json(), index_header(r.headers, "PUT /kv/")


# --------------------------------------------------------------------------
# helpers: SSE and held connections

class SSE:
    """One Server-Sent Events request on a raw socket."""

    def __init__(self, node, path="", params=None, last_event_id=None, timeout=10.0):
        q = {k: str(v) for k, v in (params or {}).items()}
        target = "/watch/" + path + ("?" + urllib.parse.urlencode(q) if q else "")
        self.sock = socket.create_connection(("127.0.0.1", node.port), timeout=timeout)
        head = (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{node.port}\r\n"
                f"Accept: text/event-stream\r\n")
        if last_event_id is not None:
            head += f"Last-Event-ID: {last_event_id}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        self.resp = http.client.HTTPResponse(self.sock, method="GET")
        self.resp.begin()
        self.status = self.resp.status
        self.headers = self.resp.msg
        self.comments = []        # (time.monotonic(), comment line)
        self.last_type = None     # the "event:" field of the last event read (None: message)

    def read_body(self):
        """The whole body of a non-stream reply (an error)."""
        return self.resp.read()

    def _line(self, deadline, what):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {what} in time")
        self.sock.settimeout(left)
        try:
            return self.resp.readline()
        except socket.timeout:
            raise AssertionError(f"no {what} in time")

    def next_event(self, timeout=10.0, until_comment=None):
        """(id, data as JSON) of the next event; its "event:" field in self.last_type.

        Comment lines are kept in self.comments.  until_comment=t: returns None
        instead at the first comment line read after time.monotonic() t.
        """
        deadline = time.monotonic() + timeout
        ev_id, ev_type, data = None, None, []
        while True:
            line = self._line(deadline, f"SSE event within {timeout}s")
            if not line:
                raise AssertionError("SSE stream ended")
            line = line.decode("utf-8").rstrip("\r\n")
            if line == "":
                if ev_id is not None or data:
                    self.last_type = ev_type
                    return ev_id, json.loads("\n".join(data))
                continue
            if line.startswith(":"):
                self.comments.append((time.monotonic(), line))
                if until_comment is not None and time.monotonic() > until_comment:
                    return None
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "id":
                ev_id = value
            elif field == "event":
                ev_type = value
            elif field == "data":
                data.append(value)

    def ends(self, timeout=5.0):
        """True when the server closes the stream within timeout (lines before it ignored)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self._line(deadline, f"end of the stream within {timeout}s"):
                return True

    def reset(self):
        """Closes with a TCP reset (SO_LINGER 0), as a killed client or a dropped NAT entry."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.resp.close()
        self.sock.close()

    def close(self):
        """An orderly close (FIN): what the server sent and we did not read is drained
        first, since closing a socket with unread data sends a reset instead."""
        try:
            self.sock.setblocking(False)
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        for f in (lambda: self.sock.shutdown(socket.SHUT_RDWR), self.resp.close,
                  self.sock.close):
            try:
                f()
            except OSError:
                pass


class Held:
    """A watch request sent on a raw socket and left unanswered (holds a watcher slot)."""

    def __init__(self, node, target):
        self.sock = socket.create_connection(("127.0.0.1", node.port), timeout=10)
        self.sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{node.port}\r\n"
                          f"Connection: close\r\n\r\n".encode())

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def peek(self, timeout=0.5):
        """What the server answered so far (for failure messages)."""
        try:
            self.sock.settimeout(timeout)
            return self.sock.recv(300)
        except OSError as e:
            return repr(e)

    def reset(self):
        """Closes with a TCP reset (SO_LINGER 0)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.sock.close()


# --------------------------------------------------------------------------
# conflicts (as tests/integration/test_conflicts.py makes them)

def self_record(node):
    for m in node.members():
        if m["id"] == node.node_id:
            return m
    raise AssertionError(f"{node} does not list itself")


def push(node, versions, origin):
    """Hands {key: (uuid, ts, tombstone, value text)} to node alone (peer push endpoint),
    as versions written by the node named origin."""
    items = []
    for k, (uid, ts, tomb, value) in versions.items():
        it = {"key": k, "uuid": uid, "timestamp": ts, "tombstone": tomb, "origin": origin}
        if not tomb:
            it["value"] = value
        items.append(it)
    r = node.request("POST", "/members/push", json={"from": self_record(node), "items": items})
    assert r.status_code == 200, f"{node}: push {r.status_code} {r.text[:300]}"
    assert r.json()["applied"] == len(versions), r.text


def new_version(ts, value=None, tombstone=False):
    return (str(uuidlib.uuid4()), ts, tombstone, None if tombstone else json.dumps(value))


# --------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def shared(module_factory):
    """One standalone node for tests that only need their own key prefix."""
    return module_factory.start("w1")


# ==========================================================================
# long-poll basics

def test_longpoll_wakes_on_local_write(shared):
    n = shared
    k = fresh("local") + "/key"
    p = poll_async(n, k, wait="10s")  # no index: from now
    value = {"hello": [1, 2, {"x": None}]}
    t_write = time.monotonic()
    ack, idx = put(n, k, value)
    r = p.get(15)
    assert r.done_at - t_write < 5.0, f"long-poll answered {r.done_at - t_write:.2f}s after the write"
    doc = lp_body(r)
    assert len(doc["events"]) == 1, doc
    e = doc["events"][0]
    assert e == {"index": e["index"], "key": k, "type": "put", "uuid": ack["uuid"],
                 "timestamp": ack["timestamp"], "value": value, "origin": n.node_id}, e
    assert e["index"] == idx, f"PUT reply X-Kvs-Index {idx}, event index {e['index']}"
    assert doc["index"] >= e["index"]

    # ask again with index=M: nothing new, the reply comes after wait with no events
    doc2 = lp_body(watch(n, k, wait="300ms", index=doc["index"]))
    assert doc2["events"] == [] and doc2["index"] >= doc["index"], doc2


def test_longpoll_without_events_answers_after_wait(shared):
    n = shared
    k = fresh("quiet") + "/key"
    for wait, low, high in (("500ms", 0.4, 5.0), ("1", 0.9, 6.0), ("1s", 0.9, 6.0)):
        cur = current_index(n)
        r = watch(n, k, wait=wait)
        doc = lp_body(r)
        assert doc["events"] == [], doc
        assert doc["index"] >= cur, (doc, cur)
        assert low <= r.elapsed <= high, f"wait={wait} answered after {r.elapsed:.2f}s"
    # same with an index equal to the current one
    cur = current_index(n)
    r = watch(n, k, wait="500ms", index=cur)
    doc = lp_body(r)
    assert doc["events"] == [] and doc["index"] == cur and 0.4 <= r.elapsed <= 5.0, (doc, r)


def test_longpoll_wakes_on_delete(shared):
    n = shared
    k = fresh("del") + "/key"
    ack, _ = put(n, k, "v")
    idx = current_index(n)
    p = poll_async(n, k, wait="10s", index=idx)
    t_write = time.monotonic()
    r = n.delete("/kv/" + k)
    assert r.status_code == 204, r.text
    didx = index_header(r.headers, "DELETE /kv/")
    reply = p.get(15)
    assert reply.done_at - t_write < 5.0, reply
    doc = lp_body(reply)
    assert len(doc["events"]) == 1, doc
    e = doc["events"][0]
    assert e["key"] == k and e["type"] == "delete" and "value" not in e, e
    assert e["uuid"] != ack["uuid"] and e["timestamp"] > ack["timestamp"], (e, ack)
    assert e["origin"] == n.node_id and e["index"] == didx > idx, (e, didx, idx)
    # the same delete from an older index, with the put before it
    doc = lp_body(watch(n, k, wait="1s", index=idx - 1))
    assert [(x["type"], x["uuid"]) for x in doc["events"]] == [("put", ack["uuid"]),
                                                             ("delete", e["uuid"])], doc


def test_prefix_filtering(shared):
    n = shared
    p = fresh("pf")
    idx = current_index(n)
    # nothing under a/b/: the watch must not wake
    pending = poll_async(n, f"{p}/a/b/", wait="1500ms", index=idx)
    for k in (f"{p}/a/bc", f"{p}/a/b", f"{p}/a/bc/d", f"{p}/a", f"{p}/a/b0/x", f"{p}/x/a/b/c"):
        put(n, k, 1)
    r = pending.get(10)
    doc = lp_body(r)
    assert doc["events"] == [], f"a watch on {p}/a/b/ woke on {doc['events']}"
    assert r.elapsed >= 1.2, r
    # then a key under it: exactly that one (the writes above have lower indexes)
    pending = poll_async(n, f"{p}/a/b/", wait="10s", index=idx)
    ack, _ = put(n, f"{p}/a/b/c", 2)
    put(n, f"{p}/a/bc", 3)
    doc = lp_body(pending.get(15))
    assert [(e["key"], e["uuid"]) for e in doc["events"]] == [(f"{p}/a/b/c", ack["uuid"])], doc
    # deeper keys are under the prefix too
    ack2, _ = put(n, f"{p}/a/b/c/d/e", 4)
    events, _ = collect(n, f"{p}/a/b/", idx, lambda ev: len(ev) >= 2)
    assert [e["key"] for e in events] == [f"{p}/a/b/c", f"{p}/a/b/c/d/e"], events


def test_exact_key_watch(shared):
    n = shared
    p = fresh("ex")
    idx = current_index(n)
    pending = poll_async(n, f"{p}/x/y", wait="1500ms", index=idx)
    for k in (f"{p}/x/y/z", f"{p}/x/yz", f"{p}/x", f"{p}/x/y0"):
        put(n, k, 1)
    doc = lp_body(pending.get(10))
    assert doc["events"] == [], f"a watch on {p}/x/y woke on {doc['events']}"
    pending = poll_async(n, f"{p}/x/y", wait="10s", index=idx)
    ack, _ = put(n, f"{p}/x/y", {"v": 1})
    doc = lp_body(pending.get(15))
    assert [(e["key"], e["uuid"], e["value"]) for e in doc["events"]] == \
        [(f"{p}/x/y", ack["uuid"], {"v": 1})], doc


def test_watch_everything(shared):
    n = shared
    p = fresh("all")
    idx = current_index(n)
    keys = [f"{p}/1", f"{p}/2/3", f"{p}x"]
    acks = [put(n, k, i)[0] for i, k in enumerate(keys)]
    events, _ = collect(n, "", idx, lambda ev: len(ev) >= 3)
    assert [(e["key"], e["uuid"]) for e in events] == \
        [(k, a["uuid"]) for k, a in zip(keys, acks)], events
    assert [e["index"] for e in events] == list(range(idx + 1, idx + 4)), \
        f"a standalone node's changes should take consecutive indexes: {events}"


def test_values_false(shared):
    n = shared
    p = fresh("nv")
    idx = current_index(n)
    ack, _ = put(n, f"{p}/k", {"big": "x" * 100})
    assert n.delete(f"/kv/{p}/k").status_code == 204
    doc = lp_body(watch(n, f"{p}/", wait="2s", index=idx, values="false"), values=False)
    assert [(e["type"], "value" in e) for e in doc["events"]] == [("put", False),
                                                                ("delete", False)], doc
    assert doc["events"][0]["uuid"] == ack["uuid"]
    doc = lp_body(watch(n, f"{p}/", wait="2s", index=idx))
    assert doc["events"][0]["value"] == {"big": "x" * 100}, doc


def test_limit_splits_events(shared):
    n = shared
    p = fresh("lim")
    idx = current_index(n)
    keys = [f"{p}/{i}" for i in range(5)]
    uuids = [put(n, k, i)[0]["uuid"] for i, k in enumerate(keys)]
    got, replies, index = [], [], idx
    while len(got) < 5 and len(replies) < 10:
        doc = lp_body(watch(n, f"{p}/", wait="2s", index=index, limit=2))
        assert 1 <= len(doc["events"]) <= 2, doc
        for e in doc["events"]:
            assert e["index"] > index, f"event {e} at or before the asked index {index}"
        assert doc["index"] >= doc["events"][-1]["index"], doc
        got.extend(doc["events"])
        replies.append(doc)
        index = doc["index"]
    assert [(e["key"], e["uuid"]) for e in got] == list(zip(keys, uuids)), got
    assert [len(d["events"]) for d in replies] == [2, 2, 1], replies
    # limit=1 on everything: one per reply, indexes continuing
    doc = lp_body(watch(n, f"{p}/", wait="2s", index=idx, limit=1))
    assert [e["key"] for e in doc["events"]] == [keys[0]], doc
    doc = lp_body(watch(n, f"{p}/", wait="2s", index=doc["index"], limit=1))
    assert [e["key"] for e in doc["events"]] == [keys[1]], doc


def test_since(shared):
    n = shared
    p = fresh("since")
    idx0 = current_index(n)
    acks = {}
    for i in range(4):
        acks[f"{p}/{i}"] = put(n, f"{p}/{i}", i)[0]
    t = acks[f"{p}/2"]["timestamp"]
    want = sorted(k for k, a in acks.items() if a["timestamp"] >= t)
    doc = lp_body(watch(n, f"{p}/", wait="2s", since=t))
    assert sorted(e["key"] for e in doc["events"]) == want, (doc, acks)
    assert all(e["uuid"] == acks[e["key"]]["uuid"] for e in doc["events"]), doc
    # since with index: both apply
    idx2 = current_index(n)
    ack4, _ = put(n, f"{p}/4", 4)
    doc = lp_body(watch(n, f"{p}/", wait="2s", since=acks[f"{p}/0"]["timestamp"], index=idx2))
    assert [e["key"] for e in doc["events"]] == [f"{p}/4"], doc
    doc = lp_body(watch(n, f"{p}/", wait="2s", since=ack4["timestamp"] + 1, index=idx0))
    assert doc["events"] == [], doc
    # since just ahead of every version so far: waits, then wakes on a newer write
    since_t = max(now_ms(), ack4["timestamp"] + 1)
    pending = poll_async(n, f"{p}/", wait="10s", since=since_t)
    wait_until(lambda: now_ms() > since_t, timeout=2, interval=0.001)
    ack5, _ = put(n, f"{p}/5", 5)
    doc = lp_body(pending.get(15))
    assert [e["uuid"] for e in doc["events"]] == [ack5["uuid"]], doc


def test_wait_formats_accepted(shared):
    n = shared
    k = fresh("wf") + "/k"
    idx = current_index(n)
    put(n, k, 1)
    for wait in ("2m", "600s", "10m", "600", "30s", "1500ms"):
        r = watch(n, k, wait=wait, index=idx, timeout=5)
        doc = lp_body(r)
        assert len(doc["events"]) == 1 and r.elapsed < 5.0, (wait, r)
    # no wait at all (default 60 s), with an event pending: at once
    r = watch(n, k, wait=None, index=idx, timeout=5)
    assert len(lp_body(r)["events"]) == 1, r


def test_future_index_answers_at_once(shared):
    n = shared
    cur = current_index(n)
    for future in (cur + 1, cur + 1000, 2 ** 62):
        r = watch(n, "", wait="10s", index=future)
        doc = lp_body(r)
        assert r.elapsed < 5.0, f"index {future} (current {cur}) answered after {r.elapsed:.2f}s"
        assert doc == {"index": current_index(n), "events": []}, (future, doc)
        assert doc["index"] < future


# ==========================================================================
# X-Kvs-Index on /kv/

def test_kvs_index_header_on_kv_replies(shared):
    n = shared
    k = fresh("hdr") + "/k"
    i0 = current_index(n)                                  # GET 404
    r = n.put("/kv/" + k, b'{"a":1}')
    assert r.status_code == 200
    i1 = index_header(r.headers, "PUT 200")
    assert i1 > i0
    r = n.get("/kv/" + k)
    assert r.status_code == 200 and index_header(r.headers, "GET 200") == i1
    r = n.head("/kv/" + k)
    assert r.status_code == 200 and index_header(r.headers, "HEAD 200") == i1
    r = n.get("/kv/" + k.rsplit("/", 1)[0] + "/")
    assert r.status_code == 200 and index_header(r.headers, "listing") == i1
    r = n.put("/kv/" + k, b'{"a":2}')
    i2 = index_header(r.headers, "PUT 200 (overwrite)")
    assert i2 > i1
    r = n.delete("/kv/" + k)
    assert r.status_code == 204
    i3 = index_header(r.headers, "DELETE 204")
    assert i3 > i2
    r = n.get("/kv/" + k)
    assert r.status_code == 404 and index_header(r.headers, "GET 404 (deleted)") == i3
    r = n.delete("/kv/" + k)
    assert r.status_code == 404 and index_header(r.headers, "DELETE 404") == i3
    r = n.put("/kv/" + k, b"01")                           # invalid JSON: 400, no change
    assert r.status_code == 400 and index_header(r.headers, "PUT 400") == i3
    r = raw_request(n.port, "GET", "/kv/a//b")
    assert r.status == 400 and index_header(r.headers, "GET 400 bad path") == i3
    # /watch/ replies carry it too, errors included
    r = watch(n, "", wait="100ms")
    assert index_header(r.headers, "/watch/ 200") == i3
    r = watch(n, "", wait="100ms", index="x")
    assert r.status == 400 and index_header(r.headers, "/watch/ 400") == i3


# ==========================================================================
# SSE

def test_sse_stream_and_last_event_id(shared):
    n = shared
    p = fresh("sse")
    before = metric(n, "kvs_watchers_open")
    s = SSE(n, f"{p}/")
    try:
        assert s.status == 200, (s.status, s.read_body())
        assert s.headers.get("Content-Type", "").startswith("text/event-stream"), dict(s.headers)
        index_header(s.headers, "an SSE reply")
        wait_open_watchers(n, lambda v: v >= before + 1, msg="the SSE watcher counted open")
        acks = [put(n, f"{p}/{i}", {"i": i})[0] for i in range(3)]
        seen = []
        for i in range(3):
            ev_id, e = s.next_event()
            check_event(e)
            assert ev_id == str(e["index"]), (ev_id, e)
            assert (e["key"], e["uuid"], e["value"], e["origin"]) == \
                (f"{p}/{i}", acks[i]["uuid"], {"i": i}, n.node_id), e
            seen.append(e)
        # a delete comes as a delete
        assert n.delete(f"/kv/{p}/0").status_code == 204
        ev_id, e = s.next_event()
        assert (e["key"], e["type"], "value" in e) == (f"{p}/0", "delete", False), e
        last = int(ev_id)
    finally:
        s.close()

    # changes while no stream is open, then resume with Last-Event-ID
    missed = [put(n, f"{p}/m{i}", i)[0] for i in range(3)]
    s = SSE(n, f"{p}/", last_event_id=last)
    try:
        assert s.status == 200, (s.status, s.read_body())
        got = [s.next_event()[1] for _ in range(3)]
        assert [(e["key"], e["uuid"]) for e in got] == \
            [(f"{p}/m{i}", missed[i]["uuid"]) for i in range(3)], got
        assert got[0]["index"] > last
        # exactly the missed ones: the next event is a new write, not a repeat
        fresh_ack, _ = put(n, f"{p}/after", "x")
        _, e = s.next_event()
        assert (e["key"], e["uuid"]) == (f"{p}/after", fresh_ack["uuid"]), e
    finally:
        s.close()

    # index= as a query parameter resumes the same way
    s = SSE(n, f"{p}/", params={"index": last, "values": "false"})
    try:
        assert s.status == 200
        _, e = s.next_event()
        assert e["key"] == f"{p}/m0" and "value" not in e, e
    finally:
        s.close()


# ==========================================================================
# bad input

BAD_PARAMS = [
    ({"index": "abc"}, "index non-numeric"),
    ({"index": "-1"}, "index negative"),
    ({"index": "12x"}, "index trailing garbage"),
    ({"index": "1.5"}, "index fraction"),
    ({"index": ""}, "index empty"),
    ({"wait": "601s"}, "wait over 600s"),
    ({"wait": "601"}, "wait bare over 600"),
    ({"wait": "11m"}, "wait 11m"),
    ({"wait": "600001ms"}, "wait ms over 600s"),
    ({"wait": "abc"}, "wait malformed"),
    ({"wait": "10x"}, "wait bad unit"),
    ({"wait": "-1s"}, "wait negative"),
    ({"wait": ""}, "wait empty"),
    ({"limit": "0"}, "limit 0"),
    ({"limit": "10001"}, "limit over 10000"),
    ({"limit": "abc"}, "limit non-numeric"),
    ({"limit": "-1"}, "limit negative"),
    ({"since": "abc"}, "since non-numeric"),
    ({"since": "-5"}, "since negative"),
    ({"since": "12x"}, "since trailing garbage"),
    ({"values": "maybe"}, "values neither true nor false"),
]


@pytest.mark.parametrize("params,why", BAD_PARAMS, ids=[w for _, w in BAD_PARAMS])
def test_bad_params_400(shared, params, why):
    q = dict({"wait": "200ms"}, **params)
    target = "/watch/bad/?" + urllib.parse.urlencode(q)
    r = raw_request(shared.port, "GET", target, timeout=5)
    assert_json_error(r, 400)
    # the stream form checks the same
    r = raw_request(shared.port, "GET", target, headers={"Accept": "text/event-stream"},
                    timeout=5)
    assert_json_error(r, 400)


@pytest.mark.parametrize("last_id", ["abc", "-1", "1.5", "12x"])
def test_bad_last_event_id_400(shared, last_id):
    s = SSE(shared, "bad/", last_event_id=last_id, timeout=5)
    try:
        assert s.status == 400, s.status
        doc = json.loads(s.read_body())
        assert isinstance(doc.get("error"), str) and doc["error"], doc
    finally:
        s.close()


BAD_WATCH_PATHS = [
    ("/watch/a//b", "empty segment"),
    ("/watch//a", "leading empty segment"),
    ("/watch/a//", "empty segment before slash"),
    ("/watch/./a", "dot segment"),
    ("/watch/a/../b", "inner dotdot"),
    ("/watch/%2e%2e/a", "encoded dotdot"),
    ("/watch/a%00b", "NUL"),
    ("/watch/a%2Fb", "encoded slash"),
    ("/watch/a%2fb/", "encoded slash in prefix"),
    ("/watch/a%01b", "control 01"),
    ("/watch/a%7Fb", "DEL"),
    ("/watch/a%zzb", "bad escape"),
    ("/watch/a%FFb", "invalid utf-8"),
    ("/watch/" + "a" * 1100, "key over 1024 bytes"),
]


@pytest.mark.parametrize("path,why", BAD_WATCH_PATHS, ids=[w for _, w in BAD_WATCH_PATHS])
def test_bad_path_400(shared, path, why):
    r = raw_request(shared.port, "GET", path + "?wait=200ms", timeout=5)
    assert_json_error(r, 400)


# ==========================================================================
# history: 410, restart

@pytest.mark.timeout_s(60)
def test_compacted_index_410(node_factory):
    n = node_factory.start("h1", extra={"watch_history": 10})
    idx0 = current_index(n)
    acks = [put(n, f"hist/{i}", i)[0] for i in range(30)]
    cur = current_index(n)
    assert cur >= idx0 + 30

    def compacted():
        r = watch(n, "", wait="100ms", index=idx0 + 1, timeout=5)
        return r if r.status == 410 else None
    r = wait_until(compacted, timeout=10, interval=0.2, msg="410 once the history is trimmed")
    doc = assert_json_error(r, 410)
    assert doc["error"] == "index compacted", doc
    index_header(r.headers, "/watch/ 410")
    k = doc.get("oldest_index")
    assert isinstance(k, int) and idx0 + 2 <= k <= cur, f"oldest_index {k}, current {cur}: {doc}"

    # trimming settles to the last 10 events (never fewer)
    def kept():
        r = watch(n, "", wait="100ms", index=idx0 + 1, timeout=5)
        assert r.status == 410, r
        k = r.json()["oldest_index"]
        after = lp_body(watch(n, "", wait="100ms", index=k, limit=10000))["events"]
        return (k, after) if len(after) <= 10 else None
    k, after = wait_until(kept, timeout=10, interval=0.2, msg="history trimmed to 10 events")
    assert len(after) >= 9, f"history trimmed below watch_history: {len(after)} events after {k}"
    assert [e["uuid"] for e in after] == [a["uuid"] for a in acks[-len(after):]], after
    assert after[0]["index"] == k + 1 and after[-1]["index"] == cur, (k, cur, after)

    r = watch(n, "", wait="100ms", index=k - 2)
    assert_json_error(r, 410)
    assert r.json()["oldest_index"] == k
    # a stream refuses too, with the same 410 before it starts (an EventSource stops on it)
    s = SSE(n, "", last_event_id=idx0 + 1)
    try:
        assert s.status == 410, s.status
        assert json.loads(s.read_body()) == {"error": "index compacted", "oldest_index": k}
    finally:
        s.close()
    # the recovery recipe: read the state (X-Kvs-Index), watch from there
    r = n.get("/kv/hist/29")
    assert r.status_code == 200 and r.json() == 29
    start = index_header(r.headers, "GET")
    pending = poll_async(n, "hist/", wait="10s", index=start)
    ack, _ = put(n, "hist/new", "n")
    assert [e["uuid"] for e in lp_body(pending.get(15))["events"]] == [ack["uuid"]]

    before = metric(n, "kvs_watch_compacted_total")
    assert before >= 3
    assert watch(n, "", wait="100ms", index=1).status == 410
    assert metric(n, "kvs_watch_compacted_total") == before + 1


@pytest.mark.timeout_s(60)
def test_index_survives_restart(node_factory):
    n = node_factory.start("r1")
    idx0 = current_index(n)
    acks, seen = [], [idx0]
    for i in range(5):
        ack, idx = put(n, f"rs/{i}", i)
        acks.append(ack)
        seen.append(idx)
    events, _ = collect(n, "rs/", idx0, lambda ev: len(ev) >= 5)
    old = [(e["index"], e["uuid"]) for e in events]
    seen += [e["index"] for e in events]
    top = max(seen)

    n.kill()                                     # kill -9 right after the last ack
    n.start()
    after = current_index(n)
    assert after >= top, f"current index went back from {top} to {after} after kill -9"
    ack, idx = put(n, "rs/after-kill", "k")
    assert idx > top, f"index {idx} after restart, {top} seen before: repeated"
    doc = lp_body(watch(n, "rs/", wait="2s", index=idx0))
    got = [(e["index"], e["uuid"]) for e in doc["events"]]
    assert got[:5] == old, f"history changed across kill -9: {old} then {got}"
    assert got[5:] == [(idx, ack["uuid"])], got
    top = idx

    n.restart()                                  # SIGTERM this time
    ack, idx = put(n, "rs/after-term", "t")
    assert idx > top, f"index {idx} after a clean restart, {top} before"
    events, _ = collect(n, "rs/", top, lambda ev: len(ev) >= 1)
    assert [(e["index"], e["uuid"]) for e in events] == [(idx, ack["uuid"])], events


# ==========================================================================
# max_watchers, disconnects, metrics

@pytest.mark.timeout_s(60)
def test_max_watchers(node_factory):
    """max_watchers 6 on a node with only 4 client workers: 6 watchers open, the 7th gets
    503 with Retry-After, and ordinary requests still answer at once (watchers do not take
    the workers that serve them)."""
    n = node_factory.start("m1", extra={"max_watchers": 6, "http_threads": 4})
    held = [Held(n, "/watch/mw/?wait=30s"), Held(n, "/watch/mw/a?wait=30s")]
    held += [Held(n, f"/watch/mw/b{i}/?wait=30s") for i in range(3)]
    s = SSE(n, "mw/")
    try:
        assert s.status == 200
        wait_open_watchers(n, lambda v: v == 6, msg="6 watchers open")

        refused0 = metric(n, "kvs_watch_refused_total")
        t0 = time.monotonic()
        r = watch(n, "mw/", wait="5s", timeout=5)
        assert time.monotonic() - t0 < 3.0, r
        assert_json_error(r, 503)
        ra = r.headers.get("Retry-After")
        assert ra is not None and ra.strip().isdigit(), f"Retry-After {ra!r}"
        index_header(r.headers, "/watch/ 503")
        r = raw_request(n.port, "GET", "/watch/mw/?wait=5s",
                        headers={"Accept": "text/event-stream"}, timeout=5)
        assert_json_error(r, 503)
        assert r.headers.get("Retry-After") is not None
        assert metric(n, "kvs_watch_refused_total") == refused0 + 2

        # ordinary requests still answer at once, on kept-alive and on new connections
        # (keys the open watches do not cover, so that they stay open)
        # (a starved request would wait for a watcher to end, 30 s: the 3 s timeouts fail it)
        for i in range(5):
            assert n.put(f"/kv/other/x{i}", b'"v"', timeout=3).status_code == 200
            assert n.get(f"/kv/other/x{i}", timeout=3).status_code == 200
            assert n.get("/kv/other/", timeout=3).status_code == 200
            assert raw_request(n.port, "GET", f"/kv/other/x{i}", timeout=3).status == 200
            assert raw_request(n.port, "PUT", f"/kv/other/y{i}", body=b"1", timeout=3).status == 200
            assert n.delete(f"/kv/other/x{i}", timeout=3).status_code == 204
        assert n.get("/health", timeout=3).status_code == 200
        assert metric(n, "kvs_watchers_open") == 6

        # a long-poll client goes away: its slot is freed within seconds
        held[0].close()

        def accepted():
            r = watch(n, "mw/", wait="100ms", timeout=5)
            return r.status == 200
        wait_until(accepted, timeout=8, interval=0.2,
                   msg="a watcher accepted after a long-poll client closed")
        wait_open_watchers(n, lambda v: v == 5, msg="the probe watcher gone")
        held.append(Held(n, "/watch/mw/?wait=30s"))
        try:
            wait_open_watchers(n, lambda v: v == 6, msg="6 watchers open again")
        except AssertionError as e:
            raise AssertionError(f"{e}; the new watcher got {held[-1].peek()!r}")
        assert watch(n, "mw/", wait="100ms", timeout=5).status == 503
    finally:
        s.close()
        for h in held:
            h.close()
    wait_open_watchers(n, lambda v: v == 0, timeout=8, msg="every watcher freed")


@pytest.mark.parametrize("kind", ["longpoll-close", "longpoll-reset", "sse-close", "sse-reset"])
def test_disconnected_watcher_freed(node_factory, kind):
    """A watcher whose client went away (closed, or reset as a killed client does) gives
    its slot back within a few seconds."""
    n = node_factory.start("d1", extra={"max_watchers": 1})
    if kind.startswith("sse"):
        c = SSE(n, "dc/")
        assert c.status == 200
    else:
        c = Held(n, "/watch/dc/?wait=60s")
    try:
        wait_open_watchers(n, lambda v: v == 1, msg="the watcher open")
        assert watch(n, "dc/", wait="100ms", timeout=5).status == 503, "max_watchers 1 not full"
    finally:
        c.reset() if kind.endswith("reset") else c.close()
    t0 = time.monotonic()
    wait_until(lambda: watch(n, "dc/", wait="100ms", timeout=5).status == 200, timeout=5,
               interval=0.2, msg=f"a new watcher accepted after the client's {kind}")
    print(f"{kind}: slot free after {time.monotonic() - t0:.2f}s")
    wait_open_watchers(n, lambda v: v == 0, msg="no watcher left open")


@pytest.mark.timeout_s(40)
def test_sse_comment_lines(shared):
    """An idle stream carries a comment line at least every 15 s."""
    p = fresh("cm")
    s = SSE(shared, p + "/")
    try:
        assert s.status == 200
        t0 = time.monotonic()
        assert s.next_event(timeout=16, until_comment=t0 + 1.0) is None
        assert s.comments[-1][0] - t0 <= 15.5, s.comments
        # the stream still delivers afterwards
        ack, _ = put(shared, f"{p}/x", 1)
        _, e = s.next_event()
        assert (e["key"], e["uuid"]) == (f"{p}/x", ack["uuid"]), e
    finally:
        s.close()


@pytest.mark.timeout_s(60)
def test_metrics(node_factory):
    n = node_factory.start("x1")
    names = metric_names(n)
    missing = [m for m in WATCH_METRICS if m not in names]
    assert not missing, f"metrics missing from /metrics: {missing}"
    assert metric(n, "kvs_watchers_open") == 0

    d0 = metric(n, "kvs_watch_events_delivered_total")
    idx = current_index(n)
    for i in range(3):
        put(n, f"mt/{i}", i)
    doc = lp_body(watch(n, "mt/", wait="2s", index=idx))
    assert len(doc["events"]) == 3
    wait_until(lambda: metric(n, "kvs_watch_events_delivered_total") == d0 + 3, timeout=3,
               msg="3 events counted as delivered")

    p = poll_async(n, "mt/", wait="10s")
    assert metric(n, "kvs_watchers_open") == 1
    put(n, "mt/3", 3)
    assert len(lp_body(p.get(15))["events"]) == 1
    wait_open_watchers(n, lambda v: v == 0, msg="gauge back to 0 after the reply")
    wait_until(lambda: metric(n, "kvs_watch_events_delivered_total") == d0 + 4, timeout=3,
               msg="4 events counted as delivered")

    s = SSE(n, "mt/")
    try:
        wait_open_watchers(n, lambda v: v == 1, msg="SSE watcher open")
        put(n, "mt/4", 4)
        put(n, "mt/5", 5)
        s.next_event()
        s.next_event()
        wait_until(lambda: metric(n, "kvs_watch_events_delivered_total") == d0 + 6,
                   timeout=5, msg="SSE events counted as delivered")
    finally:
        s.close()
    wait_open_watchers(n, lambda v: v == 0, timeout=8, msg="gauge back to 0 after SSE close")
    # a quiet long-poll delivers nothing
    lp_body(watch(n, "mt/", wait="200ms"))
    assert metric(n, "kvs_watch_events_delivered_total") == d0 + 6


def test_watch_history_zero_turns_index_off(node_factory):
    n = node_factory.start("z1", extra={"watch_history": 0})
    for path in ("", "a", "a/b/"):
        r = raw_request(n.port, "GET", f"/watch/{path}?wait=1s", timeout=5)
        assert_json_error(r, 501)
        r = raw_request(n.port, "GET", f"/watch/{path}?wait=1s",
                        headers={"Accept": "text/event-stream"}, timeout=5)
        assert_json_error(r, 501)
    r = n.put("/kv/z/a", b"1")
    assert r.status_code == 200 and "X-Kvs-Index" not in r.headers, dict(r.headers)
    r = n.get("/kv/z/a")
    assert r.status_code == 200 and "X-Kvs-Index" not in r.headers, dict(r.headers)
    r = n.get("/kv/z/none")
    assert r.status_code == 404 and "X-Kvs-Index" not in r.headers, dict(r.headers)
    r = n.delete("/kv/z/a")
    assert r.status_code == 204 and "X-Kvs-Index" not in r.headers, dict(r.headers)


# ==========================================================================
# clusters

@pytest.mark.timeout_s(60)
def test_longpoll_wakes_on_write_on_another_node(node_factory):
    n1, n2 = node_factory.cluster(2, extra=FAST)
    wait_members([n1, n2], normal=True)
    k = "remote/key"
    idx1, idx2 = current_index(n1), current_index(n2)
    p = poll_async(n2, k, wait="10s", index=idx2)
    t_write = time.monotonic()
    ack, _ = put(n1, k, {"from": "n1"})
    r = p.get(15)
    assert r.done_at - t_write < 8.0, f"n2's watcher woke {r.done_at - t_write:.2f}s after the write"
    doc = lp_body(r)
    assert len(doc["events"]) == 1, doc
    e = doc["events"][0]
    assert (e["key"], e["type"], e["uuid"], e["timestamp"], e["value"], e["origin"]) == \
        (k, "put", ack["uuid"], ack["timestamp"], {"from": "n1"}, n1.node_id), e
    assert e["index"] > idx2
    # the writer's own event names itself as origin too
    doc = lp_body(watch(n1, k, wait="2s", index=idx1))
    assert [(x["uuid"], x["origin"]) for x in doc["events"]] == [(ack["uuid"], n1.node_id)], doc
    # and a delete made on n2 wakes a watcher on n1
    i1 = current_index(n1)
    p = poll_async(n1, k, wait="10s", index=i1)
    assert n2.delete("/kv/" + k).status_code == 204
    doc = lp_body(p.get(15))
    assert [(x["key"], x["type"], x["origin"]) for x in doc["events"]] == \
        [(k, "delete", n2.node_id)], doc


@pytest.mark.timeout_s(90)
def test_longpoll_wakes_on_conflict_winner(node_factory):
    """n2 and n3 hold version A, n1 holds B with the same timestamp: the vote stores A on
    n1, and n1's watcher sees A arrive (a delete winner arrives as a delete)."""
    n1 = node_factory.start("n1", extra=dict(FAST))
    n2, n3 = [node_factory.create(i, seeds=[n1.address], extra=dict(FAST)) for i in ("n2", "n3")]
    for n in (n2, n3):
        n.start(wait=False)
    for n in (n2, n3):
        n.wait_ready()
    wait_members([n1, n2, n3], normal=True)

    ts = now_ms() - 5000
    a = {"cw/val": new_version(ts, {"side": "A"}), "cw/del": new_version(ts, tombstone=True)}
    b = {"cw/val": new_version(ts, {"side": "B"}), "cw/del": new_version(ts, "B value")}
    idx = current_index(n1)
    push(n2, a, n2.node_id)
    push(n3, a, n2.node_id)
    push(n1, b, n1.node_id)

    winners = {k: v[0] for k, v in a.items()}

    def got_winners(events):
        return {(e["key"], e["uuid"]) for e in events} >= set(winners.items())
    events, _ = collect(n1, "cw/", idx, got_winners, timeout=45, wait="5s")
    by_uuid = {e["uuid"]: e for e in events}
    e = by_uuid[winners["cw/val"]]
    assert (e["key"], e["type"], e["timestamp"], e["value"], e["origin"]) == \
        ("cw/val", "put", ts, {"side": "A"}, n2.node_id), e
    e = by_uuid[winners["cw/del"]]
    assert (e["key"], e["type"], e["timestamp"], e["origin"]) == \
        ("cw/del", "delete", ts, n2.node_id) and "value" not in e, e
    # B arrived first (a record from a peer that n1 stored), the winner after it
    for k in winners:
        seq = [x["uuid"] for x in events if x["key"] == k]
        assert seq[-1] == winners[k], f"{k}: events {seq}, winner {winners[k]}"
    assert n1.get_json("cw/val") == {"side": "A"}
    assert n1.get("/kv/cw/del").status_code == 404


@pytest.mark.timeout_s(90)
def test_resume_on_another_node_by_since(node_factory):
    """Writes spread over 3 nodes; a watcher on A by index; A is killed mid-run; the
    watcher continues on B with since = last event's timestamp - 5000 ms and misses no
    change that B holds; every event for a key carries the uuid written for it."""
    nodes = node_factory.cluster(3, extra=FAST)
    wait_members(nodes, normal=True)
    a, b, c = nodes
    ids = {n.node_id for n in nodes}
    idx0 = current_index(a)
    t_start = now_ms()
    seen = []                 # (node id served by, event)
    state = {"switched_at": None, "since": None}
    stop = threading.Event()

    def watcher():
        node, index, since = a, idx0, None
        while not stop.is_set():
            try:
                if since is not None:
                    r = watch(node, "res/", wait="1s", since=since, timeout=6)
                    since = None
                else:
                    r = watch(node, "res/", wait="1s", index=index, timeout=6)
            except (OSError, http.client.HTTPException):
                if node is not a:
                    raise
                # A is gone: resume on B by since, with the README's 5 s margin
                ts = [e["timestamp"] for srv, e in seen if srv == a.node_id]
                since = (max(ts) if ts else t_start) - 5000
                state["switched_at"], state["since"] = len(seen), since
                node = b
                continue
            doc = lp_body(r)
            seen.extend((node.node_id, e) for e in doc["events"])
            index = doc["index"]

    w = Async(watcher)
    written = {}              # key -> (uuid, timestamp, writer id)
    try:
        for i in range(60):
            if i == 15:
                wait_until(lambda: len(seen) >= 10, timeout=10, msg="A's watcher saw events")
            if i == 30:
                a.kill()    # at once: A's watcher may not have had the last writes yet
            writers = nodes if i < 30 else [b, c]
            n = writers[i % len(writers)]
            key = f"res/{i:03d}"
            ack, _ = put(n, key, {"i": i, "by": n.node_id})
            written[key] = (ack["uuid"], ack["timestamp"], n.node_id)

        # B holds everything written on B and C (C's writes arrive by push/sync)
        need = {k for k, v in written.items() if v[2] != a.node_id}

        def b_holds():
            items = {it["key"]: it["uuid"] for it in b.list_all("res/", values=True)}
            return items if need <= set(items) else None
        held = wait_until(b_holds, timeout=30, interval=0.2, msg="B holds B's and C's writes")

        def all_seen():
            items = {it["key"]: it["uuid"] for it in b.list_all("res/", values=True)}
            got = {(e["key"], e["uuid"]) for _, e in seen}
            return set(items.items()) <= got
        try:
            wait_until(all_seen, timeout=20, interval=0.2, msg="watcher saw every change B holds")
        except AssertionError:
            items = {it["key"]: it["uuid"] for it in b.list_all("res/", values=True)}
            got = {(e["key"], e["uuid"]) for _, e in seen}
            missing = sorted(set(items.items()) - got)
            raise AssertionError(f"missed {len(missing)} changes B holds: {missing[:10]}; "
                                 f"switched after {state['switched_at']} events, "
                                 f"since={state['since']}, watcher error: {w.error!r}")
    finally:
        stop.set()
    w.get(15)

    assert state["switched_at"] is not None, "the watcher never switched to B"
    from_b = [e for srv, e in seen if srv == b.node_id]
    assert from_b, "no event from B"
    for _, e in seen:
        assert e["key"] in written, f"event for a key never written: {e}"
        uid, ts, by = written[e["key"]]
        assert (e["uuid"], e["timestamp"], e["type"]) == (uid, ts, "put"), \
            f"event {e} for a key written once as {written[e['key']]}"
        assert e["origin"] == by and e["origin"] in ids, f"origin {e['origin']}, written by {by}"
        assert e["value"] == {"i": int(e["key"][4:]), "by": by}, e
    assert len(held) >= len(need)
    dups = len(seen) - len({(e["key"], e["uuid"]) for _, e in seen})
    print(f"{len(seen)} events, {dups} duplicates, switched after {state['switched_at']}, "
          f"B held {len(held)} of {len(written)} keys")
