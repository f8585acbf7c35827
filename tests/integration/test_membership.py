"""Cluster membership with real processes (issue 3; SPEC sections 4 and 5).

Joining through seeds, gossip convergence, failure detection by probes (kill -9
detected fast, a 2 s SIGSTOP never reported unhealthy), restart, graceful leave
(DELETE /members/leave and SIGTERM), ten-node convergence, duplicate node_id
refusal and strict validation of the peer endpoints.

Measured times are printed with a "MEASURED" prefix (run pytest with -s to see
them).
"""

import json
import signal
import time

import pytest

from conftest import FAST_INTERVALS, Node, assert_json_error, now_ms, raw_request, wait_until

# Fast intervals: failure_timeout stays far above what the probes need, so a
# detection within seconds can only come from the probes.
FAST = dict(FAST_INTERVALS, sync_interval=30, anti_entropy_interval=30)

SPEC_FIELDS = {"id", "address", "last_seen", "joined_timestamp", "status"}
POLL = 0.1  # seconds between polls of /members/ while watching for a state


# ------------------------------------------------------------------ helpers

def view(node, timeout=3.0):
    """node's GET /members/ as {id: entry}; asserts 200 and JSON array."""
    r = node.get("/members/", timeout=timeout)
    assert r.status_code == 200, f"{node}: GET /members/ {r.status_code} {r.text[:200]}"
    arr = r.json()
    assert isinstance(arr, list), arr
    out = {}
    for m in arr:
        assert m["id"] not in out, f"{node} lists {m['id']} twice: {arr}"
        out[m["id"]] = m
    return out


def statuses(node, timeout=3.0):
    return {i: m["status"] for i, m in view(node, timeout).items()}


def fully_converged(nodes, expected=None):
    """True when every node lists exactly expected (default: nodes), all alive,
    at the right addresses, and /health member_count equals their number."""
    expected = expected if expected is not None else nodes
    want = {n.node_id: n.address for n in expected}
    for n in nodes:
        v = view(n)
        if set(v) != set(want):
            return False
        for i, m in v.items():
            if m["status"] != "alive" or m["address"] != want[i]:
                return False
        h = n.health()
        if h["member_count"] != len(want):
            return False
    return True


def wait_converged(nodes, expected=None, timeout=20.0):
    t0 = time.monotonic()
    try:
        wait_until(lambda: fully_converged(nodes, expected), timeout=timeout, interval=0.2,
                   msg=f"{len(expected or nodes)} alive members on {len(nodes)} nodes")
    except AssertionError:
        detail = {}
        for n in nodes:
            try:
                detail[n.node_id] = statuses(n)
            except Exception as e:  # report what we can
                detail[n.node_id] = repr(e)
        raise AssertionError(f"no convergence within {timeout}s; views: {detail}")
    return time.monotonic() - t0


def status_everywhere(observers, target_id, status, timeout, what=None):
    """Waits until every observer reports target_id with status; returns seconds."""
    t0 = time.monotonic()

    def ok():
        return all(statuses(o).get(target_id) == status for o in observers)

    try:
        wait_until(ok, timeout=timeout, interval=0.05,
                   msg=what or f"{target_id} {status} on {[o.node_id for o in observers]}")
    except AssertionError:
        seen = {}
        for o in observers:
            try:
                seen[o.node_id] = statuses(o).get(target_id)
            except Exception as e:
                seen[o.node_id] = repr(e)
        raise AssertionError(f"{target_id} not {status} everywhere within {timeout}s: {seen}")
    return time.monotonic() - t0


def member_record(id_, address, status="alive", **over):
    """A peer member record as the peer endpoints exchange them."""
    t = now_ms()
    rec = {"id": id_, "address": address, "last_seen": t, "joined_timestamp": t - 1000,
           "status": status, "incarnation": t - 1000}
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not None}


def post_json(node, path, doc=None, body=None):
    """POST exact bytes (body) or json.dumps(doc) to node; returns RawResponse."""
    if body is None:
        body = json.dumps(doc).encode()
    return raw_request(node.port, "POST", path, body=body,
                       headers={"Content-Type": "application/json"})


def table(node):
    """The parts of node's member table that a message could change."""
    return {i: (m["address"], m["status"], m["joined_timestamp"]) for i, m in view(node).items()}


def cluster(factory, count, **kw):
    nodes = factory.cluster(count, extra=dict(FAST), **kw)
    return nodes


# ------------------------------------------------------- joining and gossip

@pytest.mark.timeout_s(60)
def test_three_nodes_converge_and_fourth_joins_through_any_seed(node_factory):
    n1, n2, n3 = cluster(node_factory, 3)
    t = wait_converged([n1, n2, n3], timeout=15)
    print(f"\nMEASURED three-node convergence after ready: {t:.2f}s")
    for n in (n1, n2, n3):
        h = n.health()
        assert h["member_count"] == 3 and h["node_id"] == n.node_id, h

    # n4 only knows n3, which is not the node the others were seeded with
    n4 = node_factory.start("n4", seeds=[n3.address], extra=dict(FAST))
    t = wait_converged([n1, n2, n3, n4], timeout=15)
    print(f"MEASURED fourth node (seeded with n3 only) known to all after: {t:.2f}s")
    assert n4.health()["member_count"] == 4
    assert "cluster_joined" in n4.log_text()


@pytest.mark.timeout_s(60)
def test_member_fields_and_joined_timestamp_stable_across_restart(node_factory):
    nodes = cluster(node_factory, 3)
    wait_converged(nodes, timeout=15)
    addr = {n.node_id: n.address for n in nodes}

    joined = {}
    for n in nodes:
        r = n.get("/members/")
        assert r.status_code == 200
        assert r.headers.get("Content-Type", "").startswith("application/json")
        before = now_ms()
        for m in r.json():
            assert set(m) >= SPEC_FIELDS, f"missing {SPEC_FIELDS - set(m)} in {m}"
            assert isinstance(m["id"], str) and m["address"] == addr[m["id"]], m
            assert m["status"] in ("alive", "unhealthy", "left"), m
            for k in ("last_seen", "joined_timestamp"):
                assert isinstance(m[k], int) and not isinstance(m[k], bool), m
            # ms since the epoch, not seconds; recent; joined before last seen
            assert before - 600_000 < m["joined_timestamp"] <= before + 1000, m
            assert m["joined_timestamp"] <= m["last_seen"] <= before + 1000, m
            assert before - 15_000 < m["last_seen"], f"{n.node_id} last heard of {m} long ago"
            # every node agrees on each member's joined_timestamp
            assert joined.setdefault(m["id"], m["joined_timestamp"]) == m["joined_timestamp"], \
                f"{n.node_id} reports joined_timestamp {m['joined_timestamp']} for {m['id']}, " \
                f"another node {joined[m['id']]}"

    # same data dir, new process: joined_timestamp unchanged on every view
    n2 = nodes[1]
    assert n2.stop() == 0
    n2.start()
    wait_converged(nodes, timeout=15)
    for n in nodes:
        m = view(n)["n2"]
        assert m["joined_timestamp"] == joined["n2"], \
            f"{n.node_id}: n2 joined_timestamp {m['joined_timestamp']} != {joined['n2']} before restart"


# ------------------------------------------------------- failure detection

def watch(observers, target_id, seconds, until_all=None):
    """Polls observers every POLL s for seconds (or until until_all status is
    reported by all of them).  Returns (first_time {observer: {status: t}},
    every unhealthy report about anyone [(t, observer, id)], suspect flags seen)."""
    t0 = time.monotonic()
    first = {o.node_id: {} for o in observers}
    unhealthy_reports = []
    suspect_seen = set()
    while True:
        t = time.monotonic() - t0
        cur = {}
        for o in observers:
            v = view(o)
            for i, m in v.items():
                if m["status"] == "unhealthy":
                    unhealthy_reports.append((round(t, 2), o.node_id, i))
                if m.get("suspect"):
                    suspect_seen.add((o.node_id, i))
            st = v.get(target_id, {}).get("status")
            cur[o.node_id] = st
            first[o.node_id].setdefault(st, round(t, 2))
        if until_all and all(s == until_all for s in cur.values()):
            return first, unhealthy_reports, suspect_seen
        if t >= seconds:
            return first, unhealthy_reports, suspect_seen
        time.sleep(POLL)


@pytest.mark.timeout_s(75)
def test_kill9_detected_unhealthy_within_10s_then_restart_alive(node_factory):
    nodes = cluster(node_factory, 4)
    wait_converged(nodes, timeout=15)
    victim, observers = nodes[3], nodes[:3]
    joined = view(victim)[victim.node_id]["joined_timestamp"]

    victim.kill()
    t_kill = time.monotonic()
    first, reports, _ = watch(observers, victim.node_id, 15.0, until_all="unhealthy")
    took = {o: s.get("unhealthy") for o, s in first.items()}
    print(f"\nMEASURED kill -9 -> unhealthy per observer (s): {took}; "
          f"all after {time.monotonic() - t_kill:.2f}s")
    assert all(v is not None and v <= 10.0 for v in took.values()), \
        f"kill -9 of {victim.node_id} not reported unhealthy by all within 10s: {took}; " \
        f"states seen {first}"
    wrong = [r for r in reports if r[2] != victim.node_id]
    assert not wrong, f"live members reported unhealthy meanwhile: {wrong}"
    assert all("left" not in s for s in first.values()), f"kill -9 is not a leave: {first}"

    # same config and data dir: alive again everywhere, same joined_timestamp
    victim.start()
    t = status_everywhere(observers, victim.node_id, "alive", 10.0)
    print(f"MEASURED restarted node alive on all observers after {t:.2f}s")
    wait_converged(nodes, timeout=10)
    for n in nodes:
        assert view(n)[victim.node_id]["joined_timestamp"] == joined, n


@pytest.mark.timeout_s(60)
def test_sigstop_2s_never_reported_unhealthy(node_factory):
    nodes = cluster(node_factory, 4)
    wait_converged(nodes, timeout=15)
    victim, observers = nodes[3], nodes[:3]

    victim.send_signal(signal.SIGSTOP)
    try:
        # the deliberate pause, watching the others meanwhile
        first_a, reports_a, suspect_a = watch(observers, victim.node_id, 2.0)
    finally:
        victim.send_signal(signal.SIGCONT)
    first_b, reports_b, suspect_b = watch(observers, victim.node_id, 8.0)
    print(f"\nINFO SIGSTOP 2s: suspect flags seen {sorted(suspect_a | suspect_b)}")
    reports = reports_a + reports_b
    assert not reports, f"a 2 s pause was reported unhealthy: (t, observer, id) {reports[:20]}"
    assert victim.running()
    wait_converged(nodes, timeout=5)


# ------------------------------------------------------------------ leaving

@pytest.mark.timeout_s(60)
def test_leave_and_sigterm_shown_left_within_2s(node_factory):
    n1, n2, n3, n4 = nodes = cluster(node_factory, 4)
    wait_converged(nodes, timeout=15)

    t0 = time.monotonic()
    r = n2.delete("/members/leave")
    assert r.status_code == 200, r.text
    assert r.headers.get("Content-Type", "").startswith("application/json")
    t = status_everywhere([n1, n3, n4], "n2", "left", 2.0 - (time.monotonic() - t0))
    print(f"\nMEASURED DELETE /members/leave -> left everywhere after "
          f"{time.monotonic() - t0:.2f}s (wait {t:.2f}s after reply)")

    # like any client, the test holds an idle keep-alive connection to n3 (and
    # the peers hold theirs): the announcement must not wait for them to drain
    assert n3.health()["node_id"] == "n3"
    t0 = time.monotonic()
    n3.send_signal(signal.SIGTERM)
    try:
        status_everywhere([n1, n4], "n3", "left", 2.0)
    except AssertionError as e:
        n3.wait_exit(10)
        lines = [ln for ln in n3.log_text().splitlines()
                 if "node_stopping" in ln or "cluster_leave" in ln or "node_stopped" in ln]
        raise AssertionError(f"{e}\nn3 shutdown log lines:\n" + "\n".join(lines)) from None
    print(f"MEASURED SIGTERM -> left everywhere after {time.monotonic() - t0:.2f}s")
    assert n3.wait_exit(10) == 0, n3.log_tail()

    # left is sticky: stale gossip does not bring it back
    for o in (n1, n4):
        s = statuses(o)
        assert s["n2"] == "left" and s["n3"] == "left", (o, s)
        assert o.health()["member_count"] == 2, (o, s)


# ----------------------------------------------------------------- scale

@pytest.mark.timeout_s(90)
def test_ten_nodes_complete_membership(node_factory):
    t0 = time.monotonic()
    nodes = cluster(node_factory, 10, wait=False)
    for n in nodes:
        n.wait_ready(30)
    t_ready = time.monotonic() - t0
    wait_converged(nodes, timeout=45)
    took = time.monotonic() - t0
    print(f"\nMEASURED ten nodes: all serving after {t_ready:.2f}s, complete membership "
          f"(10 x 10 alive) {took:.2f}s after start")


# ---------------------------------------------------------- duplicate node_id

@pytest.mark.timeout_s(45)
def test_join_with_id_held_by_live_node_is_refused(node_factory):
    n1, n2 = nodes = cluster(node_factory, 2)
    wait_converged(nodes, timeout=15)
    before = table(n1)
    other = f"127.0.0.1:{n2.port + 1 if n2.port < 65535 else n2.port - 1}"

    # the peer endpoint itself: 409 with a JSON error, for a member's id and for the seed's
    for rec in (member_record("n2", other), member_record("n1", other)):
        r = post_json(n1, "/members/join", {"member": rec})
        doc = assert_json_error(r, 409)
        assert rec["id"] in doc["error"], doc
    assert table(n1) == before

    # a real process with n2's id at another address, seeded with n1
    dup = Node(node_factory.kvs_bin, node_factory.base / "n2-duplicate", node_id="n2",
               seeds=[n1.address], extra=dict(FAST))
    node_factory.nodes.append(dup)  # stopped with the others
    dup.start()
    wait_until(lambda: "join_refused" in dup.log_text(), timeout=10,
               msg="join_refused in the log of the refused node")
    wait_until(lambda: "join_refused" in n1.log_text(), timeout=5,
               msg="join_refused in the seed's log")
    lines = [ln for ln in dup.log_text().splitlines() if "join_refused" in ln]
    print("\nINFO refused node logged:", lines[0])

    # nobody adopted the impostor; it stays alone
    for n in nodes:
        m = view(n)["n2"]
        assert m["address"] == n2.address and m["status"] == "alive", (n, m)
    assert set(view(dup)) == {"n2"}
    assert dup.health()["member_count"] == 1
    assert fully_converged(nodes)


# --------------------------------------------------------- input validation

def ghost_address(n):
    """An address in valid form where no node of the test listens."""
    return f"127.0.0.1:{n.port + 2 if n.port < 65534 else n.port - 2}"


def bad_member_records(ghost_addr):
    good = member_record("ghost", ghost_addr)

    def without(rec, key):
        return {k: v for k, v in rec.items() if k != key}

    return [
        ("not an object", "ghost"),
        ("no id", without(good, "id")),
        ("no address", without(good, "address")),
        ("no last_seen", without(good, "last_seen")),
        ("no joined_timestamp", without(good, "joined_timestamp")),
        ("id with spaces", member_record("bad id", ghost_addr)),
        ("empty id", member_record("", ghost_addr)),
        ("id not a string", dict(good, id=7)),
        ("address without port", member_record("ghost", "127.0.0.1")),
        ("port 0", member_record("ghost", "127.0.0.1:0")),
        ("port 70000", member_record("ghost", "127.0.0.1:70000")),
        ("address with a space", member_record("ghost", "127.0.0.1 :80")),
        # the rules of advertise_address (config.c's validator, shared by members.c)
        ("address with a scheme", member_record("ghost", "http://" + ghost_addr)),
        ("IPv6 address", member_record("ghost", "[::1]:80")),
        ("address with a path", member_record("ghost", ghost_addr + "/x")),
        ("IPv4 octet over 255", member_record("ghost", "127.0.0.256:80")),
        ("three-part IPv4", member_record("ghost", "127.0.1:80")),
        ("underscore in host", member_record("ghost", "a_b:80")),
        ("host label starting with -", member_record("ghost", "-a:80")),
        ("userinfo in host", member_record("ghost", "u@127.0.0.1:80")),
        # absurd numbers: 10^15 and beyond
        ("last_seen 10^15", member_record("ghost", ghost_addr, last_seen=10**15)),
        ("joined_timestamp 10^16", member_record("ghost", ghost_addr, joined_timestamp=10**16)),
        ("huge incarnation", member_record("ghost", ghost_addr, incarnation=2**63 - 1)),
        ("negative incarnation", member_record("ghost", ghost_addr, incarnation=-1)),
        ("negative last_seen", member_record("ghost", ghost_addr, last_seen=-5)),
        ("fractional joined_timestamp", member_record("ghost", ghost_addr, joined_timestamp=1.5)),
        ("string last_seen", member_record("ghost", ghost_addr, last_seen="now")),
        ("unknown status", member_record("ghost", ghost_addr, status="zombie")),
    ]


@pytest.mark.timeout_s(45)
def test_peer_join_validates_input(node_factory):
    n1, n2 = nodes = cluster(node_factory, 2)
    wait_converged(nodes, timeout=15)
    before = table(n1)
    bad_members = bad_member_records(ghost_address(n2))

    join_bodies = [
        ("garbage", b"garbage"),
        ("empty body", b""),
        ("truncated JSON", b'{"member": {"id": "ghost"'),
        ("array", b"[]"),
        ("no member", b"{}"),
        ("member null", b'{"member": null}'),
    ] + [(name, json.dumps({"member": m}).encode()) for name, m in bad_members]
    for name, body in join_bodies:
        r = post_json(n1, "/members/join", body=body)
        assert_json_error(r, 400)
        assert table(n1) == before, f"join with {name} changed the member table"
    assert fully_converged(nodes)


@pytest.mark.timeout_s(45)
def test_peer_gossip_validates_input(node_factory):
    n1, n2 = nodes = cluster(node_factory, 2)
    wait_converged(nodes, timeout=15)
    before = table(n1)
    good = member_record("ghost", ghost_address(n2))
    bad_members = bad_member_records(ghost_address(n2))

    from_n2 = view(n1)["n2"]  # a valid sender record, as n1 knows it
    n2_left = dict(from_n2, status="left")
    gossip_bodies = [
        ("garbage", None, b"{nope"),
        ("no from", {"members": [good]}, None),
        ("invalid from", {"from": dict(from_n2, address="nowhere"), "members": [good]}, None),
        ("members not an array", {"from": from_n2, "members": {"0": good}}, None),
        ("members missing", {"from": from_n2}, None),
    ]
    for name, m in bad_members:
        # a valid record first: nothing of a message with one invalid record applies
        gossip_bodies.append((f"member {name}", {"from": from_n2, "members": [good, n2_left, m]},
                              None))
    for name, doc, body in gossip_bodies:
        r = post_json(n1, "/members/gossip", doc, body=body)
        assert_json_error(r, 400)
        assert table(n1) == before, f"gossip with {name} changed the member table: {table(n1)}"
    assert fully_converged(nodes)


@pytest.mark.timeout_s(45)
def test_refused_peer_message_does_not_add_its_sender(node_factory):
    """api_peer.c: "a malformed message is refused whole with 400 and changes nothing".

    A valid "from" record of a sender unknown so far, in a message refused for
    its other fields, must not add that sender to the member table.
    """
    n1, n2 = nodes = cluster(node_factory, 2)
    wait_converged(nodes, timeout=15)
    before = table(n1)
    added = []
    for k, (path, rest) in enumerate([("/members/gossip", {"members": [{"id": 1}]}),
                                      ("/members/probe", {"address": 5}),
                                      ("/members/suspect", {"id": 5})]):
        sender = f"ghost-sender{k}"
        doc = {"from": member_record(sender, f"127.0.0.1:{1000 + k}")}
        doc.update(rest)
        r = post_json(n1, path, doc)
        assert_json_error(r, 400)
        if sender in view(n1):
            added.append(f"POST {path} (400) added {sender}")
    assert not added, f"refused messages changed the member table: {added}; " \
                      f"table now {table(n1)}, before {before}"
    assert fully_converged(nodes)
