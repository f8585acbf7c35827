"""Fault injection (issue 8, parts 1, 2, 3 and 6): crashes, partitions, a lossy
and slow link, clock skew and resource limits, with real kvs processes.

* crash loop: writers on all three nodes while a random node is killed with
  kill -9 and restarted every ~3 s; afterwards identical path -> UUID maps
  everywhere and, for every key, the newest acknowledged write (or a newer write
  whose answer was lost) is the final version.
* partitions (network namespaces, tests/integration/netns.py): node3 cut off,
  writes on both sides, heal, converge; a lossy (10 % drops both ways) and
  rate-limited (tbf) link to node3 still delivers every write.
* clock skew (libfaketime): a node 30 s ahead writes a key; an overwrite on a
  node with the right clock still wins everywhere.
* resource limits: hundreds of idle connections, slow-body clients, a data dir
  that is a file, a read-only data dir, a full disk.

Measured numbers are printed with a "MEASURED" prefix (pytest -s shows them;
they are also attached to the report of a failing test).  Tests that need
namespaces, mounts or libfaketime skip with the reason when the machine refuses.
"""

import collections
import json
import os
import random
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import (FAST_INTERVALS, assert_json_error, now_ms, port_is_free, start_and_join,
                      wait_members, wait_until)
from netns import Lab

FAST = dict(FAST_INTERVALS, removal_timeout=120)

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def measured(text):
    print(f"MEASURED {text}", flush=True)


# ---------------------------------------------------------------- helpers

def kv_map(node, prefix=""):
    """{key: (uuid, timestamp, value as canonical JSON)} of every item under prefix."""
    return {i["key"]: (i["uuid"], i["timestamp"], json.dumps(i["value"], sort_keys=True))
            for i in node.list_all(prefix, values=True)}


def wait_converged(nodes, prefix="", timeout=60.0, expect=None):
    """Waits until every node holds the same items under prefix (and, with expect,
    {key: uuid}, exactly those versions).  Returns (seconds, map)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    last = None
    while True:
        try:
            maps = [kv_map(n, prefix) for n in nodes]
            uu = [{k: v[0] for k, v in m.items()} for m in maps]
            if all(u == uu[0] for u in uu) and (expect is None or uu[0] == expect):
                return time.monotonic() - t0, maps[0]
            last = describe_diff(nodes, uu, expect)
        except (OSError, requests.RequestException, ValueError, AssertionError) as e:
            last = repr(e)
        if time.monotonic() >= deadline:
            raise AssertionError(f"no convergence under {prefix!r} within {timeout}s: {last}")
        time.sleep(0.3)


def describe_diff(nodes, uu, expect):
    ref = expect if expect is not None else uu[0]
    parts = []
    for n, u in zip(nodes, uu):
        missing = sorted(set(ref) - set(u))
        extra = sorted(set(u) - set(ref))
        differ = sorted(k for k in set(ref) & set(u) if ref[k] != u[k])
        parts.append(f"{n.node_id}: {len(u)} keys, missing {len(missing)} {missing[:3]}, "
                     f"extra {len(extra)} {extra[:3]}, other version {len(differ)} {differ[:3]}")
    return "; ".join(parts)


_low_ports = set()


def low_port():
    """A free loopback port below the ephemeral range (32768-60999 here), so that a
    node restarted on it after kill -9 does not find it taken as the source port of
    some outgoing connection (or handed to another test by free_port())."""
    rnd = random.Random()
    for _ in range(1000):
        p = rnd.randrange(20000, 32000)
        if p not in _low_ports and port_is_free(p):
            _low_ports.add(p)
            return p
    raise RuntimeError("no free port in 20000..32000")


def mount_tmpfs(target, size):
    """Mounts a tmpfs of size at target, or skips the test when not permitted."""
    Path(target).mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {p.stderr.strip()}")


def umount(target):
    if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


# ============================================================ 1. crash loop

@pytest.mark.timeout_s(150)
def test_crash_loop_converges_and_keeps_newest_acknowledged_write(node_factory):
    nodes = [node_factory.create(f"n{i + 1}", port=low_port(), extra=dict(FAST)) for i in range(3)]
    for n in nodes:
        n.config["seed_nodes"] = [m.address for m in nodes if m is not n]
    start_and_join(nodes)

    keys = [f"crash/k{i:03d}" for i in range(200)]
    lock = threading.Lock()
    attempts = {}                          # (writer, seq) -> key
    acks = collections.defaultdict(list)   # key -> [(ts, uuid, writer, seq)]
    outcome = collections.Counter()
    stop = threading.Event()
    odd = []                               # unexpected answers (not 200, not 503)
    t_start = time.monotonic()

    def writer(w):
        rnd = random.Random(1000 + w)
        url = f"http://127.0.0.1:{nodes[w].port}/kv/"
        s = requests.Session()
        seq = 0
        while not stop.is_set():
            seq += 1
            key = rnd.choice(keys)
            body = json.dumps({"w": w, "s": seq})
            with lock:
                attempts[(w, seq)] = key
            try:
                r = s.put(url + key, data=body, timeout=(0.5, 2.0))
            except requests.RequestException:
                s.close()
                s = requests.Session()
                with lock:
                    outcome["no answer"] += 1
                time.sleep(0.05)
                continue
            if r.status_code == 200:
                j = r.json()
                with lock:
                    acks[key].append((j["timestamp"], j["uuid"], w, seq))
                    outcome["200"] += 1
            else:
                with lock:
                    outcome[str(r.status_code)] += 1
                    if r.status_code != 503 and len(odd) < 10:
                        odd.append((round(time.monotonic() - t_start, 2), nodes[w].node_id, key,
                                    r.status_code, r.headers.get("Allow"), r.text[:200]))
                time.sleep(0.02)
        s.close()

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(3)]
    for t in threads:
        t.start()
    rnd = random.Random(7)
    kills = []
    events = []
    try:
        t_end = time.monotonic() + 20.0
        while time.monotonic() < t_end:
            time.sleep(1.5 + rnd.random() * 0.6)
            victim = rnd.choice(nodes)
            victim.kill()
            t_kill = time.monotonic()
            events.append((round(t_kill - t_start, 2), "kill", victim.node_id))
            time.sleep(0.3 + rnd.random() * 1.2)   # down for a while: it misses pushes
            victim.start(wait=True, timeout=20)
            events.append((round(time.monotonic() - t_start, 2), "ready", victim.node_id))
            kills.append((victim.node_id, round(time.monotonic() - t_kill, 2)))
        # the writers stop right after the last restart: convergence includes its catch-up
    finally:
        stop.set()
        for t in threads:
            t.join(10)

    for n in nodes:
        assert n.running(), f"{n} is not running after the crash loop:\n{n.log_tail()}"
    secs, final = wait_converged(nodes, "crash/", timeout=60)

    acked = sum(len(v) for v in acks.values())
    measured(f"crash loop: {len(kills)} kill -9 + restart {kills}; writes attempted "
             f"{len(attempts)}, acknowledged {acked}, outcomes {dict(outcome)}; keys "
             f"{len(final)}; converged {secs:.1f}s after the faults stopped")
    if odd:
        measured(f"crash loop: unexpected answers {odd}; kills/restarts {events}")
    assert not odd, f"unexpected answers to PUT (not 200 or 503): {odd}"
    assert len(kills) >= 5, kills
    assert acked >= 300, f"too few acknowledged writes to mean anything: {dict(outcome)}"

    acked_by_id = {(w, s): (ts, u) for k, v in acks.items() for (ts, u, w, s) in v}
    problems = []
    for key in sorted(set(attempts.values()) | set(final)):
        got = final.get(key)
        ka = acks.get(key, [])
        if got is None:
            if ka:
                problems.append(f"{key}: {len(ka)} acknowledged writes, key missing everywhere")
            continue
        uuid_, ts, value = got
        v = json.loads(value)
        wid = (v.get("w"), v.get("s"))
        if attempts.get(wid) != key:
            problems.append(f"{key}: final value {v} was never written to this key")
            continue
        if wid in acked_by_id and acked_by_id[wid] != (ts, uuid_):
            problems.append(f"{key}: final value {v} has version {(ts, uuid_)}, its "
                            f"acknowledgement said {acked_by_id[wid]}")
        if not ka:
            continue   # only unacknowledged attempts: any of them may be the last
        top = max(a[0] for a in ka)
        newest = [a for a in ka if a[0] == top]
        if ts < top:
            problems.append(f"{key}: final version ts {ts} ({v}) is older than acknowledged "
                            f"write {newest[0]} : acknowledged newest write lost")
        elif ts == top and uuid_ not in {a[1] for a in newest} and wid in acked_by_id:
            problems.append(f"{key}: final {uuid_} ts {ts} is an acknowledged write that is "
                            f"not among the newest {newest}")
        elif ts > top and wid in acked_by_id:
            problems.append(f"{key}: final ts {ts} above every acknowledgement {top} but "
                            f"is itself acknowledged with another version")
    assert not problems, f"{len(problems)} keys wrong:\n" + "\n".join(problems[:20])


# ============================================================ 2. partitions

@pytest.fixture
def lab(node_factory, request):
    if os.geteuid() != 0:
        pytest.skip("network namespace tests need root")
    why = Lab.probe()
    if why:
        pytest.skip(f"network namespaces unavailable here: {why}")
    tag = "p" if "partition" in request.node.name else "l"
    lb = Lab(3, tag=tag)
    try:
        lb.setup()
    except RuntimeError as e:
        lb.close()
        pytest.skip(f"cannot build the namespace network (bridge + veth): {e}")
    try:
        yield lb
    finally:
        lb.close()


def ns_cluster(lab, factory, extra=None):
    cfg = dict(FAST)
    cfg.update(extra or {})
    nodes = [lab.node(factory, i, f"node{i + 1}", port=8080, extra=dict(cfg)) for i in range(3)]
    for n in nodes:
        n.config["seed_nodes"] = [m.address for m in nodes if m is not n]
    start_and_join(nodes)
    return nodes


@pytest.mark.timeout_s(120)
def test_partition_write_both_sides_heal_converge(lab, node_factory):
    n1, n2, n3 = nodes = ns_cluster(lab, node_factory)
    base = n1.put_json("part/base", {"v": 0})["uuid"]
    gone = n1.put_json("part/deleted", {"v": 0})["uuid"]
    wait_converged(nodes, "part/", timeout=15, expect={"part/base": base, "part/deleted": gone})

    lab.isolate(2)
    expect = {"part/base": base}
    # a delete on the majority side during the partition reaches node3 after the heal
    assert n2.delete("/kv/part/deleted").status_code == 204
    for i in range(20):
        expect[f"part/a/{i:02d}"] = (n1, n2)[i % 2].put_json(f"part/a/{i:02d}", {"side": "a", "i": i})["uuid"]
        expect[f"part/b/{i:02d}"] = n3.put_json(f"part/b/{i:02d}", {"side": "b", "i": i})["uuid"]
    # the same key on both sides: the later write wins after the heal
    x_a = n1.put_json("part/both/x", {"side": "a"})
    time.sleep(0.05)
    x_b = n3.put_json("part/both/x", {"side": "b"})
    y_b = n3.put_json("part/both/y", {"side": "b"})
    time.sleep(0.05)
    y_a = n2.put_json("part/both/y", {"side": "a"})
    assert x_b["timestamp"] > x_a["timestamp"] and y_a["timestamp"] > y_b["timestamp"]
    expect["part/both/x"] = x_b["uuid"]
    expect["part/both/y"] = y_a["uuid"]
    # the partition holds: node3 becomes unhealthy for the others, nothing crosses
    def n3_down():
        return all(m["status"] != "alive" for n in (n1, n2)
                   for m in n.members() if m["id"] == "node3")
    t0 = time.monotonic()
    wait_until(n3_down, timeout=25, interval=0.3, msg="node3 not alive on node1 and node2")
    measured(f"partition: node3 seen down by node1 and node2 after {time.monotonic() - t0:.1f}s")
    assert n3.get_json("part/a/00") is None, "a write crossed the partition"
    assert n1.get_json("part/b/00") is None, "a write crossed the partition"
    assert n1.get_json("part/both/x") == {"side": "a"}
    assert n3.get_json("part/both/y") == {"side": "b"}
    assert n3.get_json("part/deleted") == {"v": 0}

    lab.heal(2)
    t0 = time.monotonic()
    secs, final = wait_converged(nodes, "part/", timeout=60, expect=expect)
    wait_members(nodes, timeout=30)
    measured(f"partition: {len(expect)} keys ({len(expect) - 1} written during the partition, "
             f"2 on both sides); converged {secs:.1f}s after the heal, members all alive after "
             f"{time.monotonic() - t0:.1f}s")
    for n in nodes:
        assert n.get_json("part/both/x") == {"side": "b"}, n
        assert n.get_json("part/both/y") == {"side": "a"}, n
        assert n.get_json("part/deleted") is None, n


@pytest.mark.timeout_s(150)
def test_lossy_rate_limited_link_still_delivers_every_write(lab, node_factory):
    n1, n2, n3 = nodes = ns_cluster(lab, node_factory)
    lab.lossy(2, probability=0.1, rate="1mbit")
    pad = "x" * 1000
    expect = {}
    t0 = time.monotonic()
    for i in range(200):
        key = f"lossy/{i:03d}"
        expect[key] = n1.put_json(key, {"i": i, "pad": pad})["uuid"]
    t_written = time.monotonic()
    secs, _ = wait_converged(nodes, "lossy/", timeout=100, expect=expect)
    counters = lab.counters(2)
    drops = [line.split()[:2] for line in counters.splitlines() if "statistic" in line]
    measured(f"lossy link (10% drop each way, tbf 1mbit on node3): 200 writes of ~1 KiB on "
             f"node1 in {t_written - t0:.1f}s; all on node2 and node3 {secs:.1f}s later; "
             f"node3 iptables drops [packets, bytes]: {drops}")
    assert n3.get_json("lossy/000") == {"i": 0, "pad": pad}


# ============================================================ 3. clock skew

@pytest.mark.timeout_s(120)
@pytest.mark.skipif(os.environ.get("KVS_SANITIZER") == "thread",
                    reason="libfaketime wraps pthread_cond_timedwait, which ThreadSanitizer "
                           "then misreads as double locks and races")
def test_clock_skew_overwrite_on_correct_clock_wins(node_factory):
    if not os.path.exists(FAKETIME_LIB):
        pytest.skip(f"{FAKETIME_LIB} missing: install faketime/libfaketime (scripts/deps.sh test)")
    skew = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "+30s", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
    # the clock guard (issue 18, max_clock_offset_ms, tested in test_time.py) would
    # refuse n1's records and its writes: opened wide here, this test checks that a
    # skew the guard lets through still resolves by the larger timestamp
    wide = dict(FAST, max_clock_offset_ms=120_000)
    n1 = node_factory.create("n1", extra=dict(wide), env=skew)
    n2 = node_factory.create("n2", extra=dict(wide))
    n3 = node_factory.create("n3", extra=dict(wide))
    nodes = [n1, n2, n3]
    for n in nodes:
        n.config["seed_nodes"] = [m.address for m in nodes if m is not n]
    start_and_join(nodes)

    # background writes on every node, before and after the scenario: none may be lost
    expect = {}
    for i in range(30):
        n = nodes[i % 3]
        expect[f"skew/bg/{i:02d}"] = n.put_json(f"skew/bg/{i:02d}", {"by": n.node_id, "i": i})["uuid"]

    before = now_ms()
    k1 = n1.put_json("skew/k", {"by": "n1"})
    skew_ms = k1["timestamp"] - before
    assert 25_000 < skew_ms < 40_000, \
        f"n1 is not 30 s ahead (libfaketime not effective?): timestamp {k1['timestamp']}, now {before}"

    def replicated(key, uuid_, where):
        for n in where:
            r = n.get("/kv/" + key)
            if r.status_code != 200 or r.headers.get("ETag") != f'"{uuid_}"':
                return False
        return True
    t0 = time.monotonic()
    wait_until(lambda: replicated("skew/k", k1["uuid"], [n2, n3]), timeout=15, interval=0.05,
               msg="n1's skewed write of skew/k on n2 and n3")
    lag = time.monotonic() - t0

    k2 = n2.put_json("skew/k", {"by": "n2"})
    assert k2["timestamp"] > k1["timestamp"], \
        f"n2's overwrite got ts {k2['timestamp']}, not above the version it replaces ({k1['timestamp']})"
    expect["skew/k"] = k2["uuid"]

    # the other direction: a key written on a correct clock, overwritten on the skewed node
    j3 = n3.put_json("skew/j", {"by": "n3"})
    wait_until(lambda: replicated("skew/j", j3["uuid"], [n1]), timeout=15, interval=0.05,
               msg="skew/j on n1")
    j1 = n1.put_json("skew/j", {"by": "n1"})
    assert j1["timestamp"] > j3["timestamp"]
    expect["skew/j"] = j1["uuid"]

    for i in range(30, 45):
        n = nodes[i % 3]
        expect[f"skew/bg/{i:02d}"] = n.put_json(f"skew/bg/{i:02d}", {"by": n.node_id, "i": i})["uuid"]

    secs, final = wait_converged(nodes, "skew/", timeout=30, expect=expect)
    # still so a few sync / anti-entropy rounds later (the skewed node does not revert it)
    time.sleep(5)
    secs2, _ = wait_converged(nodes, "skew/", timeout=10, expect=expect)
    measured(f"clock skew: n1 ahead by {skew_ms} ms; its write on n2/n3 after {lag:.2f}s; "
             f"n2 overwrite ts {k2['timestamp']} = n1 ts + {k2['timestamp'] - k1['timestamp']}; "
             f"{len(expect)} keys identical everywhere {secs:.1f}s later, still after 5 s more")
    for n in nodes:
        assert n.get_json("skew/k") == {"by": "n2"}, n
        assert n.get_json("skew/j") == {"by": "n1"}, n


# ============================================================ 6. resource limits

def normal_requests(node, count=3, timeout=4.0, key="limits/probe", pause=0.0, give_up=3):
    """count rounds of (GET /health, PUT, GET) on fresh connections, pause s apart;
    stops after give_up failures (to bound the test).  Returns
    [(what, status or exception name, seconds)]."""
    out = []
    failures = 0
    for i in range(count):
        for what, fn in (
                ("GET /health", lambda: requests.get(node.url("/health"), timeout=timeout)),
                ("PUT", lambda: requests.put(node.url(f"/kv/{key}"), data=json.dumps(i),
                                             timeout=timeout)),
                ("GET", lambda: requests.get(node.url(f"/kv/{key}"), timeout=timeout))):
            t = time.monotonic()
            try:
                r = fn()
                out.append((what, r.status_code, round(time.monotonic() - t, 3)))
                failures += r.status_code != 200
            except requests.RequestException as e:
                out.append((what, type(e).__name__, round(time.monotonic() - t, 3)))
                failures += 1
            if failures >= give_up:
                return out
        time.sleep(pause)
    return out


def all_fast_ok(results, limit):
    return all(st == 200 and secs < limit for _, st, secs in results)


def open_idle(node, count, mode):
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", node.port), timeout=5)
        if mode != "connect-only":
            s.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{node.port}\r\n\r\n".encode())
        socks.append(s)
    return socks


def closed_by_server(s, timeout):
    """True once the server closed s (reads drain any answer first)."""
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
        return True
    except OSError:
        return False


@pytest.mark.timeout_s(90)
@pytest.mark.parametrize("mode", ["connect-only", "keep-alive-after-one-request"])
def test_idle_connections_within_http_threads_do_not_starve_clients(node_factory, mode):
    """http_threads sized above the connections (README, "Resource limits"):
    300 idle connections and normal requests are all served at once."""
    node = node_factory.start("n1", extra={"http_threads": 512})
    socks = open_idle(node, 300, mode)
    try:
        time.sleep(0.5)
        results = normal_requests(node, count=2, timeout=4.0)
    finally:
        for s in socks:
            s.close()
    measured(f"300 idle connections ({mode}), http_threads 512: normal requests {results}")
    assert node.running()
    assert all_fast_ok(results, 3.0), results


@pytest.mark.timeout_s(90)
@pytest.mark.parametrize("mode", ["connect-only", "keep-alive-after-one-request"])
def test_idle_connections_beyond_http_threads_are_cut(node_factory, mode):
    """More idle connections than workers (300 > 128): the request and idle
    timeouts cut them, so normal requests are served within a few timeouts
    rather than never, and the idle sockets are closed by the server."""
    node = node_factory.start("n1", extra={"http_request_timeout_ms": 1000,
                                           "http_idle_timeout_ms": 1000})
    socks = open_idle(node, 300, mode)
    try:
        time.sleep(0.2)
        t0 = time.monotonic()
        results = normal_requests(node, count=2, timeout=15.0)
        spent = time.monotonic() - t0
        cut = sum(closed_by_server(s, 5.0) for s in socks)
    finally:
        for s in socks:
            s.close()
    measured(f"300 idle connections ({mode}), http_threads 128, timeouts 1 s: normal requests "
             f"{results} ({spent:.1f}s); {cut}/300 idle sockets closed by the server")
    assert node.running()
    # 300 connections over 128 workers: at most three rounds of the 1 s timeout
    assert all(st == 200 and secs < 6.0 for _, st, secs in results), results
    assert cut == 300


@pytest.mark.timeout_s(90)
@pytest.mark.parametrize("clients", [1, 200])
def test_slow_body_clients_are_cut_and_do_not_starve_clients(node_factory, clients):
    """Clients dripping a body at 1 byte/s get 408 after http_request_timeout_ms
    (civetweb's own timeout is per read and would never fire), store
    nothing, and normal requests meanwhile are served at once."""
    node = node_factory.start("n1", extra={"http_threads": 512, "http_request_timeout_ms": 3000})
    stop = threading.Event()
    socks = []
    sent = collections.Counter()

    def drip():
        while not stop.is_set():
            for s in socks:
                try:
                    s.sendall(b"x")
                    sent["bytes"] += 1
                except OSError:
                    sent["closed by server"] += 1
            stop.wait(1.0)

    head = (f"PUT /kv/limits/slow HTTP/1.1\r\nHost: 127.0.0.1:{node.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n").encode()
    t = None
    try:
        for _ in range(clients):
            s = socket.create_connection(("127.0.0.1", node.port), timeout=5)
            s.sendall(head)
            socks.append(s)
        t = threading.Thread(target=drip, daemon=True)
        t.start()
        time.sleep(1.0)
        results = normal_requests(node, count=4, timeout=4.0, pause=0.5)
        # every slow client is answered 408 and cut once its deadline passes
        socks[0].settimeout(10)
        answer = socks[0].recv(4096)
    finally:
        stop.set()
        if t is not None:
            t.join(5)
        for s in socks:
            s.close()
    measured(f"{clients} slow-body client(s): normal requests {results}; drip {dict(sent)}; "
             f"first slow client got {answer[:40]!r}")
    assert node.running()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b'"error"' in answer
    assert requests.get(node.url("/kv/limits/slow"), timeout=5).status_code == 404
    assert all_fast_ok(results, 3.0), results


@pytest.mark.parametrize("layout", ["data_dir-is-a-file", "parent-is-a-file"])
def test_data_dir_that_is_a_file_fails_clearly(node_factory, tmp_path, layout):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory\n")
    data_dir = blocker if layout == "data_dir-is-a-file" else blocker / "data"
    node = node_factory.create("n1", extra={"data_dir": str(data_dir)})
    node.start(wait=False)
    rc = node.wait_exit(15)
    log = node.log_text()
    measured(f"data_dir {layout}: exit {rc}; log {log.strip().splitlines()[-1:]}")
    assert rc is not None, f"node with an unusable data_dir still running:\n{node.log_tail()}"
    assert rc > 0, f"exit status {rc} (a signal is a crash):\n{log}"
    assert str(blocker) in log, f"the log does not name the data dir:\n{log}"
    assert blocker.read_text() == "not a directory\n", "the file in the way was changed"


@pytest.mark.timeout_s(60)
def test_read_only_data_dir(node_factory, tmp_path):
    mnt = tmp_path / "ro"
    mount_tmpfs(mnt, "16M")
    node = None
    try:
        node = node_factory.create("n1", extra={"data_dir": str(mnt / "data")})
        node.start()
        v = {k: node.put_json(f"ro/{k}", {"k": k})["uuid"] for k in range(10)}
        assert node.stop() == 0
        p = subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        node.start(wait=False)
        # either refuses to start with a clear message, or serves reads and refuses writes
        deadline = time.monotonic() + 15
        state = None
        while time.monotonic() < deadline and state is None:
            if node.returncode() is not None:
                state = "exited"
            else:
                try:
                    if node.get("/health", timeout=1).status_code == 200:
                        state = "serving"
                except requests.RequestException:
                    pass
            time.sleep(0.1)
        log = node.log_text()
        tail = log.strip().splitlines()[-1:]
        if state == "exited":
            rc = node.returncode()
            measured(f"read-only data dir at start: exit {rc}; log {tail}")
            assert rc > 0, f"exit {rc} (a signal is a crash):\n{log}"
            assert str(mnt) in log, f"the log does not name the data dir:\n{log}"
        else:
            assert state == "serving", f"node neither served nor exited:\n{node.log_tail()}"
            for k, u in v.items():
                r = node.get(f"/kv/ro/{k}")
                assert r.status_code == 200 and r.headers["ETag"] == f'"{u}"', r.text
            r = node.put("/kv/ro/new", "1")
            measured(f"read-only data dir at start: serving; PUT {r.status_code} {r.text[:120]}")
            assert_json_error(r, 500)
            assert node.running()
    finally:
        if node is not None:
            node.kill()
        umount(mnt)


@pytest.mark.timeout_s(90)
def test_full_disk_gives_500_and_reads_keep_working(node_factory, tmp_path):
    mnt = tmp_path / "full"
    mount_tmpfs(mnt, "8M")
    node = None
    try:
        filler = mnt / "filler"
        filler.write_bytes(b"\0" * (1 << 20))
        node = node_factory.create("n1", extra={"data_dir": str(mnt / "data")})
        node.start()
        big = json.dumps("y" * (200 * 1024))
        acked, failure = {}, None
        for i in range(200):
            try:
                r = node.put(f"/kv/full/{i:03d}", big)
            except requests.RequestException as e:
                # the node died: say how, and whether the acknowledged writes survived
                node.wait_exit(5)
                rc, tail = node.returncode(), node.log_tail(3)
                filler.unlink()
                node.start()
                lost = [k for k, u in acked.items()
                        if node.get("/kv/" + k).headers.get("ETag") != f'"{u}"']
                measured(f"full disk: node died on PUT #{i} (exit {rc}); after freeing space and "
                         f"a restart {len(acked) - len(lost)} of {len(acked)} acknowledged "
                         f"writes present")
                raise AssertionError(
                    f"PUT #{i} on a full disk got no answer ({type(e).__name__}): the node died "
                    f"(exit status {rc}) after {len(acked)} acknowledged writes; after a restart "
                    f"{len(lost)} of them lost.  Log tail:\n{tail}") from None
            if r.status_code != 200:
                failure = r
                break
            acked[f"full/{i:03d}"] = r.json()["uuid"]
        df = shutil.disk_usage(mnt)
        measured(f"full disk (8 MiB tmpfs): {len(acked)} writes of 200 KiB acknowledged, then "
                 f"{failure.status_code if failure is not None else None} "
                 f"{failure.text[:120] if failure is not None else ''}; free {df.free} bytes")
        assert failure is not None, "200 writes of 200 KiB fitted in 8 MiB?"
        assert_json_error(failure, 500)
        assert node.running(), f"node died on a full disk:\n{node.log_tail()}"
        assert acked, "not even one write fitted"

        # reads keep working, further writes get 500 quickly, node alive
        for k, u in acked.items():
            r = node.get("/kv/" + k)
            assert r.status_code == 200 and r.headers["ETag"] == f'"{u}"', (k, r.status_code)
        t = time.monotonic()
        r = node.put("/kv/full/small", "1")
        assert time.monotonic() - t < 5
        assert r.status_code in (200, 500), r.text
        if r.status_code == 500:
            assert_json_error(r, 500)
        assert node.health()["status"] == "ok"
        assert node.running()

        # space freed: writes may resume (reported); a restart keeps every acknowledged write
        filler.unlink()
        time.sleep(0.5)
        r = node.put("/kv/full/after", "2")
        measured(f"full disk: after freeing 1 MiB, PUT -> {r.status_code} {r.text[:120]}")
        if r.status_code == 200:
            acked["full/after"] = r.json()["uuid"]
        else:
            assert_json_error(r, 500)
        rc = node.stop()
        assert rc == 0, f"exit {rc} after a full disk:\n{node.log_tail()}"
        node.start()
        for k, u in acked.items():
            r = node.get("/kv/" + k)
            assert r.status_code == 200 and r.headers["ETag"] == f'"{u}"', \
                f"acknowledged {k} lost after restart: {r.status_code}"
    finally:
        if node is not None:
            node.kill()
        umount(mnt)
