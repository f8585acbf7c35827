#!/usr/bin/python3
"""Expiry measurements for bench/run.sh (issue 18; stdlib only).

    expiry.py run --writer HOST:PORT --peer HOST:PORT --peer-pid PID --count N --spread S
                  [--lead S] [--prefix P] [--out FILE]
        Writes N keys P/k<i> on --writer through POST /txn (100 puts each), each with a TTL
        such that the expiries are spread evenly over S seconds starting --lead seconds
        after the writes begin.  Meanwhile, on --peer (another node of the cluster):
          - a long-poll loop on /watch/P/ times each key's `expire` event against its
            expiry (the reaper's lateness: how long an expired value waits to become the
            derived tombstone on a node that did not take the write);
          - a sampler GETs 1 key in 100 from its expiry on until it answers 404 (the
            lateness a reader sees: 0 by design, since reads check the expiry);
          - the peer process's CPU (utime + stime from /proc/PID/stat) over the expiry
            window, and over as long an idle window before it.
        Prints one JSON line: count, spread_s, rate (keys expiring per second), event
        lateness p50/p99/max (ms), get lateness p50/p99/max (ms), events seen, missing,
        cpu_window and cpu_idle (fraction of one core).
"""
import argparse
import http.client
import json
import math
import os
import threading
import time


def hostport(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def pct(v, q):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[max(0, min(len(v) - 1, int(math.ceil(q * len(v))) - 1))]


def now_ms():
    return time.time() * 1000.0


def request(conn, method, path, body=None):
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, r.getheader("X-Kvs-Index"), r.read()


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])  # utime, stime (fields 14, 15)


def run(a):
    host, port = hostport(a.writer)
    phost, pport = hostport(a.peer)
    n, per_txn = a.count, 100
    expires = {}

    peer = http.client.HTTPConnection(phost, pport, timeout=30)
    _, idx, _ = request(peer, "GET", f"/kv/{a.prefix}/?limit=1")
    index = int(idx or 0)
    events, stop = {}, threading.Event()

    def watcher():
        nonlocal index
        c = http.client.HTTPConnection(phost, pport, timeout=60)
        while not stop.is_set():
            st, _, body = request(c, "GET", f"/watch/{a.prefix}/?index={index}&wait=2s"
                                  f"&values=false&limit=10000")
            t = now_ms()
            if st != 200:
                time.sleep(0.1)
                continue
            doc = json.loads(body)
            for e in doc["events"]:
                if e["type"] == "expire" and e["key"] not in events:
                    events[e["key"]] = t
            index = doc["index"]

    w = threading.Thread(target=watcher, daemon=True)
    w.start()

    # idle CPU window of the peer, as long as the expiry window will be (capped)
    idle_s = min(a.spread, 10.0)
    c0, t0 = cpu_ticks(a.peer_pid), time.monotonic()
    time.sleep(idle_s)
    cpu_idle = (cpu_ticks(a.peer_pid) - c0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t0)

    start_ms = now_ms() + a.lead * 1000.0
    conn = http.client.HTTPConnection(host, port, timeout=30)
    for b in range(0, n, per_txn):
        ops = []
        wrote = now_ms()
        for i in range(b, min(n, b + per_txn)):
            exp = start_ms + i * a.spread * 1000.0 / n
            ttl = max(1000, int(exp - wrote))
            key = f"{a.prefix}/k{i:07d}"
            ops.append({"op": "put", "key": key, "value": i, "ttl": f"{ttl}ms"})
        st, _, body = request(conn, "POST", "/txn", json.dumps({"ops": ops}))
        if st != 200:
            raise SystemExit(f"txn answered {st}: {body[:200]!r}")
        for op, res in zip(ops, json.loads(body)["results"]):
            expires[op["key"]] = res["expires"]
    write_s = (now_ms() - (start_ms - a.lead * 1000.0)) / 1000.0
    first = min(expires.values())
    if now_ms() > first:
        print(json.dumps({"error": "writes took longer than the lead", "write_s": write_s}))

    # sampler: 1 key in 100, from its expiry until 404
    sample = sorted(list(expires.items())[::100], key=lambda kv: kv[1])
    get_late = []

    def sampler():
        c = http.client.HTTPConnection(phost, pport, timeout=30)
        for key, exp in sample:
            wait = (exp - now_ms()) / 1000.0
            if wait > 0:
                time.sleep(wait)
            while True:
                st, _, _ = request(c, "GET", "/kv/" + key)
                if st == 404:
                    get_late.append(max(0.0, now_ms() - exp))
                    break
                if now_ms() - exp > 30000:
                    break

    s = threading.Thread(target=sampler, daemon=True)
    s.start()
    wait = (first - now_ms()) / 1000.0
    if wait > 0:
        time.sleep(wait)
    c1, t1 = cpu_ticks(a.peer_pid), time.monotonic()
    last = max(expires.values())
    time.sleep(max(0.0, (last - now_ms()) / 1000.0))
    cpu_window = (cpu_ticks(a.peer_pid) - c1) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t1)
    deadline = time.monotonic() + 30
    while len(events) < n and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    s.join(35)
    late = [events[k] - expires[k] for k in events if k in expires]
    res = {
        "count": n, "spread_s": a.spread, "rate": n / a.spread, "write_s": round(write_s, 2),
        "event_p50_ms": pct(late, 0.50), "event_p99_ms": pct(late, 0.99),
        "event_max_ms": max(late) if late else float("nan"),
        "events": len(late), "missing": n - len(late),
        "get_p50_ms": pct(get_late, 0.50), "get_p99_ms": pct(get_late, 0.99),
        "get_max_ms": max(get_late) if get_late else float("nan"), "get_samples": len(get_late),
        "cpu_window": round(cpu_window, 4), "cpu_idle": round(cpu_idle, 4),
    }
    line = json.dumps(res)
    if a.out:
        with open(a.out, "w") as f:
            f.write(line + "\n")
    print(line)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--writer", required=True)
    r.add_argument("--peer", required=True)
    r.add_argument("--peer-pid", type=int, required=True)
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--spread", type=float, required=True)
    r.add_argument("--lead", type=float, default=20.0)
    r.add_argument("--prefix", default="ttl")
    r.add_argument("--out")
    a = ap.parse_args()
    run(a)


if __name__ == "__main__":
    main()
