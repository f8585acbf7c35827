"""
Push fan-out (issue 20), on real processes: a slow peer holds nobody back.

One of three nodes is stopped with SIGSTOP (it accepts connections, answers
nothing: every request to it waits for peer_timeout_ms) while writes go to
another node; the third node must keep receiving them at once, because each
peer has a sender and a queue of its own.  After SIGCONT the stopped node
catches up.  The bound is generous (benchmarks measure; this proves the
behaviour): with one sender for all peers, every batch waited for the
stopped peer's timeout (2 s) before the next one went anywhere.

Lag is timed from each write's 200 on node 1 to its event on a long-poll
watch of node 2.  Waits are wait-untils with deadlines.
"""

import http.client
import json
import signal
import threading
import time

from conftest import FAST_INTERVALS, wait_members, wait_until

FAST = dict(FAST_INTERVALS, failure_timeout=60, removal_timeout=120, throttle_delay_ms=0,
            fetch_delay_ms=0)


def test_stopped_peer_does_not_delay_the_others(node_factory):
    n1, n2, n3 = node_factory.cluster(3, extra=FAST, prefix="f")
    wait_members([n1, n2, n3])
    start = int(n2.get("/kv/").headers["X-Kvs-Index"])
    acked, arrived = {}, {}
    stop = threading.Event()

    def watcher():
        index = start
        c = http.client.HTTPConnection("127.0.0.1", n2.port, timeout=30)
        while not stop.is_set():
            try:
                c.request("GET", f"/watch/fan/?index={index}&wait=1s&values=false")
                r = c.getresponse()
                body = r.read()
            except (OSError, http.client.HTTPException):
                if stop.is_set():
                    return  # the node is being stopped under us at the end of the test
                raise
            t = time.monotonic()
            if r.status != 200:
                continue
            doc = json.loads(body)
            for e in doc["events"]:
                arrived.setdefault(e["key"], t)
            index = doc["index"]

    w = threading.Thread(target=watcher, daemon=True)
    w.start()
    n3.send_signal(signal.SIGSTOP)
    try:
        c = http.client.HTTPConnection("127.0.0.1", n1.port, timeout=10)
        deadline = time.monotonic() + 6
        i = 0
        while time.monotonic() < deadline:
            key = f"fan/k{i:05d}"
            c.request("PUT", "/kv/" + key, body=str(i))
            r = c.getresponse()
            r.read()
            assert r.status == 200
            acked[key] = time.monotonic()
            i += 1
            time.sleep(0.002)  # about 300-400 writes/s from one client
        wait_until(lambda: len(arrived) >= len(acked), 15, msg="node 2 never saw every write")
    finally:
        n3.send_signal(signal.SIGCONT)
        stop.set()
    lags = sorted(arrived[k] - acked[k] for k in acked)
    p99 = lags[int(0.99 * (len(lags) - 1))]
    print(f"MEASURED fan-out with a stopped peer: {len(lags)} writes, lag to node 2 "
          f"p50 {lags[len(lags) // 2] * 1000:.1f} ms p99 {p99 * 1000:.1f} ms")
    assert p99 < 1.0, f"node 2 waited for the stopped peer: p99 lag {p99:.2f} s"
    # the stopped node catches up once it runs again: its sender kept the batches it
    # could not deliver and tries them again
    t0 = time.monotonic()
    wait_until(lambda: len(n3.list_all("fan/")) == len(acked), 60,
               msg="node 3 never caught up after SIGCONT")
    print(f"MEASURED node 3 had every write {time.monotonic() - t0:.2f} s after SIGCONT")
