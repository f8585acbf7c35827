#!/usr/bin/python3
"""Helpers for bench/run.sh (stdlib only).

    benchlib.py ports N                         N free loopback TCP ports, one per line
    benchlib.py waitup URL T0_NS TIMEOUT_S [PID]
                                                poll URL every 2 ms until 200; print ms since
                                                T0_NS; fail at once if PID exits
    benchlib.py metric URL NAME                 value of an unlabelled metric in URL/metrics
    benchlib.py snapshot URL FILE               save URL/metrics to FILE
    benchlib.py lagq BEFORE AFTER [BEFORE AFTER...]
                                                p50/p99 (s), count and share <= 0.25 s of
                                                kvs_replication_lag_seconds between snapshots,
                                                buckets of several nodes merged
    benchlib.py paced --writer HOST:PORT --readers HOST:PORT,... --rate R --duration S
                      --prefix P [--sample-every K] [--threads T] [--out FILE]
                                                paced PUT load with sampled ack->readable lag
    benchlib.py flood --port PORT --conns N --duration S [--src 127.0.0.2] [--out FILE]
                                                GET /health latency from 127.0.0.1 without,
                                                then with, N slow clients from --src
    benchlib.py members_wait T0_NS TIMEOUT_S HOST:PORT...
                                                seconds from T0_NS until every node is normal
                                                and lists all of them alive
    benchlib.py report RESULTS                  markdown report from run.sh's results file
"""
import http.client
import json
import math
import multiprocessing
import os
import queue
import selectors
import socket
import statistics
import sys
import threading
import time
import urllib.request


def cmd_ports(n):
    socks = []
    for _ in range(int(n)):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    for s in socks:
        print(s.getsockname()[1])
    for s in socks:
        s.close()


def alive(pid):
    try:
        with open("/proc/%s/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmd_waitup(url, t0_ns, timeout, pid=None):
    deadline = time.monotonic() + float(timeout)
    while time.monotonic() < deadline:
        if pid and not alive(pid):
            print("process %s exited" % pid, file=sys.stderr)
            return 1
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    print("%.1f" % ((time.time_ns() - int(t0_ns)) / 1e6))
                    return 0
        except Exception:
            pass
        time.sleep(0.002)
    print("timeout", file=sys.stderr)
    return 1


def fetch_metrics(url):
    with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=10) as r:
        return r.read().decode()


def cmd_metric(url, name):
    for line in fetch_metrics(url).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            print(parts[1])
            return 0
    print("metric %s not found" % name, file=sys.stderr)
    return 1


def cmd_snapshot(url, path):
    with open(path, "w") as f:
        f.write(fetch_metrics(url))


def lag_buckets(path):
    """{le: cumulative count} of kvs_replication_lag_seconds."""
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("kvs_replication_lag_seconds_bucket{"):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                out[math.inf if le == "+Inf" else float(le)] = float(line.split()[-1])
    return out


def hist_quantile(q, buckets):
    """Prometheus histogram_quantile: linear interpolation inside the bucket."""
    les = sorted(buckets)
    total = buckets[les[-1]]
    if total <= 0:
        return None
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le in les:
        c = buckets[le]
        if c >= rank:
            if le == math.inf:
                return ">%g" % prev_le  # beyond the largest finite bucket
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return les[-2]


def cmd_lagq(paths):
    merged = {}
    for before, after in zip(paths[0::2], paths[1::2]):
        b, a = lag_buckets(before), lag_buckets(after)
        for le in a:
            merged[le] = merged.get(le, 0) + a[le] - b.get(le, 0)
    if not merged:
        print("nan nan 0 nan")
        return
    total = merged[math.inf]
    p50 = hist_quantile(0.5, merged)
    p99 = hist_quantile(0.99, merged)
    share = merged.get(0.25, 0) / total if total else float("nan")
    f = lambda v: "nan" if v is None else v if isinstance(v, str) else "%.4f" % v
    print(f(p50), f(p99), int(total), "%.4f" % share)


# ---------------------------------------------------------------- paced load

def cmd_paced(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="benchlib.py paced")
    ap.add_argument("--writer", required=True)
    ap.add_argument("--readers", required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--sample-every", type=int, default=20)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--pollers", type=int, default=8)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)

    readers = [r for r in a.readers.split(",") if r]
    total = int(a.rate * a.duration)
    body = ('{"data":"' + "p" * (a.size - 11) + '"}').encode()
    lock = threading.Lock()
    nxt = [0]
    t0 = time.monotonic() + 0.2
    acked = [0]
    failed = [0]
    late = [0]          # writes sent more than 50 ms behind schedule
    samples = queue.Queue()
    lags = []           # seconds until readable on every reader
    per_node = {r: [] for r in readers}
    missing = [0]
    late_start = [0]    # samples a poller picked up > 10 ms after the ack
    stop_polling = threading.Event()

    def writer():
        conn = http.client.HTTPConnection(a.writer, timeout=10)
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= total:
                break
            due = t0 + i / a.rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            elif now - due > 0.05:
                with lock:
                    late[0] += 1
            key = "/kv/%s/k%08d" % (a.prefix, i)
            try:
                conn.request("PUT", key, body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except Exception:
                conn.close()
                conn = http.client.HTTPConnection(a.writer, timeout=10)
                ok = False
            t_ack = time.monotonic()
            with lock:
                if ok:
                    acked[0] += 1
                else:
                    failed[0] += 1
            if ok and i % a.sample_every == 0:
                samples.put((key, t_ack))

    def poller():
        conns = {r: http.client.HTTPConnection(r, timeout=10) for r in readers}
        while True:
            try:
                key, t_ack = samples.get(timeout=0.1)
            except queue.Empty:
                if stop_polling.is_set():
                    return
                continue
            start = time.monotonic()
            pending = set(readers)
            seen = {}
            first = True
            deadline = t_ack + 30
            while pending and time.monotonic() < deadline:
                for r in list(pending):
                    try:
                        conns[r].request("GET", key)
                        resp = conns[r].getresponse()
                        resp.read()
                        if resp.status == 200:
                            seen[r] = max(0.0, time.monotonic() - t_ack)
                            pending.discard(r)
                    except Exception:
                        conns[r].close()
                        conns[r] = http.client.HTTPConnection(r, timeout=10)
                if pending:
                    first = False
                    time.sleep(0.001)
            if first and start - t_ack > 0.010:
                late_start[0] += 1
            with lock:
                if pending:
                    missing[0] += 1
                else:
                    lags.append(max(seen.values()))
                    for r, v in seen.items():
                        per_node[r].append(v)

    ws = [threading.Thread(target=writer) for _ in range(a.threads)]
    ps = [threading.Thread(target=poller) for _ in range(a.pollers)]
    for t in ws + ps:
        t.start()
    for t in ws:
        t.join()
    elapsed = time.monotonic() - t0
    stop_polling.set()
    for t in ps:
        t.join()

    def pct(v, q):
        if not v:
            return float("nan")
        v = sorted(v)
        return v[min(len(v) - 1, int(math.ceil(q * len(v))) - 1)]

    res = {
        "target_rate": a.rate,
        "achieved_rate": acked[0] / elapsed if elapsed > 0 else 0,
        "acked": acked[0],
        "failed": failed[0],
        "late_writes": late[0],
        "samples": len(lags),
        "missing": missing[0],
        "late_start": late_start[0],
        "lag_p50": pct(lags, 0.50),
        "lag_p99": pct(lags, 0.99),
        "lag_max": max(lags) if lags else float("nan"),
    }
    line = json.dumps(res)
    print(line)
    if a.out:
        with open(a.out, "w") as f:
            f.write(line + "\n")


def cmd_members_wait(argv):
    """members_wait T0_NS TIMEOUT HOST:PORT...: polls every node's /health and /members/
    until each is `normal` and lists all of them alive; prints the seconds since T0_NS, or
    exits 1 with the nodes still short of it."""
    t0_ns, timeout, nodes = int(argv[0]), float(argv[1]), argv[2:]
    n = len(nodes)
    deadline = time.monotonic() + timeout
    pending = set(nodes)

    def full(node):
        try:
            with urllib.request.urlopen("http://%s/health" % node, timeout=2) as r:
                if json.load(r).get("mode") != "normal":
                    return False
            with urllib.request.urlopen("http://%s/members/" % node, timeout=2) as r:
                return sum(1 for m in json.load(r) if m.get("status") == "alive") == n
        except (OSError, ValueError):
            return False

    while pending and time.monotonic() < deadline:
        for node in list(pending):
            if full(node):
                pending.discard(node)
        if pending:
            time.sleep(0.05)
    if pending:
        print("not full after %.0f s: %s" % (timeout, " ".join(sorted(pending))), file=sys.stderr)
        sys.exit(1)
    print("%.2f" % ((time.time_ns() - t0_ns) / 1e9))


# ---------------------------------------------------------------- slow-client flood

# socket.IP_BIND_ADDRESS_NO_PORT (Linux 24): the source port is picked at connect() from the
# whole 4-tuple, so hundreds of sockets bound to one source address do not run out of ports
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
FLOOD_HOSTS = ("127.0.0.1", "127.0.0.2")   # the only addresses this command talks to or from


def flood_worker(port, count, src, stop, deadline, ctr):
    """Child process: keeps count connections from src to 127.0.0.1:port, each sending
    'GET /' and then one byte a second of a request line that never ends, reopened as soon
    as the server closes it.  Runs until stop is set, the monotonic deadline passes or its
    parent exits; closes every socket it opened.  ctr: shared [open now, opened, closed by server,
    open errors]."""
    sel = selectors.DefaultSelector()
    socks = {}  # socket -> time of its next byte (0: nothing sent yet)
    parent = os.getppid()

    def drop(s):
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()
        socks.pop(s, None)

    try:
        while not stop.is_set() and time.monotonic() < deadline and os.getppid() == parent:
            while len(socks) < count:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                    s.bind((src, 0))
                    s.setblocking(False)
                    s.connect_ex(("127.0.0.1", port))
                    sel.register(s, selectors.EVENT_READ)
                except OSError:
                    s.close()
                    ctr[3] += 1
                    break  # retried on the next round
                socks[s] = 0.0
                ctr[1] += 1
            ctr[0] = len(socks)
            for key, _ in sel.select(0.05):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:  # closed (or reset) by the server: reopened next round
                    ctr[2] += 1
                    drop(s)
            now = time.monotonic()
            for s, due in list(socks.items()):
                if now < due:
                    continue
                try:
                    s.send(b"GET /" if due == 0 else b"a")
                    socks[s] = now + 1.0
                except OSError:
                    pass  # not connected yet, or reset: the read side notices
    finally:
        for s in list(socks):
            drop(s)
        sel.close()
        ctr[0] = 0


def health_probe(port, timeout):
    """GET /health on a fresh connection from 127.0.0.1: (ok, seconds to the whole reply)."""
    t = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/health", headers={"Connection": "close"})
        r = conn.getresponse()
        r.read()
        ok = r.status == 200
    except (OSError, http.client.HTTPException):
        ok = False
    finally:
        conn.close()
    return ok, time.monotonic() - t


def probe_window(port, duration, gap, timeout):
    """Sequential probes for duration seconds (a probe started before the end finishes):
    {requests, errors, p50, p99, max} in seconds."""
    lat, errors = [], 0
    end = time.monotonic() + duration
    while time.monotonic() < end:
        ok, secs = health_probe(port, timeout)
        lat.append(secs)
        errors += 0 if ok else 1
        time.sleep(gap)

    def pct(q):
        v = sorted(lat)
        return v[max(0, math.ceil(q * len(v)) - 1)]

    return {"requests": len(lat), "errors": errors, "p50": pct(0.50), "p99": pct(0.99),
            "max": max(lat)}


def cmd_flood(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="benchlib.py flood")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=300)
    ap.add_argument("--duration", type=float, required=True, help="seconds per window")
    ap.add_argument("--src", default="127.0.0.2")
    ap.add_argument("--gap", type=float, default=0.01, help="pause between probes, s")
    ap.add_argument("--timeout", type=float, default=10.0, help="per probe, s")
    ap.add_argument("--ramp", type=float, default=10.0,
                    help="longest wait for the flood's connections to open, s")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    if a.src not in FLOOD_HOSTS:
        ap.error("--src must be one of %s" % ", ".join(FLOOD_HOSTS))

    res = {"conns": a.conns, "src": a.src, "duration": a.duration, "gap": a.gap}
    # 1. baseline: the same probes, no flood
    res["base"] = probe_window(a.port, a.duration, a.gap, a.timeout)

    # 2. the flood, in a child process so that its Python work does not hold the prober's
    # GIL; bounded by its own deadline even if this process dies
    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    ctr = ctx.Array("q", 4, lock=False)
    deadline = time.monotonic() + a.ramp + a.duration + a.timeout + 30
    child = ctx.Process(target=flood_worker, name="flood", daemon=True,
                        args=(a.port, a.conns, a.src, stop, deadline, ctr))
    child.start()
    try:
        t0 = time.monotonic()
        while ctr[0] < a.conns and time.monotonic() - t0 < a.ramp and child.is_alive():
            time.sleep(0.01)
        res["ramp_s"] = round(time.monotonic() - t0, 2)
        res["open_at_start"] = ctr[0]
        opened0, closed0 = ctr[1], ctr[2]
        res["flood"] = probe_window(a.port, a.duration, a.gap, a.timeout)
        res["open_at_end"] = ctr[0]
        res["opened"] = ctr[1] - opened0           # during the measured window
        res["closed_by_server"] = ctr[2] - closed0
        res["open_errors"] = ctr[3]
    finally:
        stop.set()
        child.join(10)
        if child.is_alive():
            child.terminate()
            child.join(5)
    b, f = res["base"]["p99"], res["flood"]["p99"]
    res["p99_ratio"] = f / b if b > 0 else float("nan")
    line = json.dumps(res)
    print(line)
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(line + "\n")


# ---------------------------------------------------------------- report

def cmd_report(path):
    """results file: tab-separated lines
         info  NAME  VALUE
         wrk   SCENARIO  RUN  RPS  P50_US  P99_US  REQUESTS  STATUS_ERR  SOCK_ERR  KEYS  NOTE
         val   NAME  VALUE                (numbers, reused by the targets)
    """
    info, wrk, val, order, notes = {}, {}, {}, [], {}
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if p[0] == "info":
                info[p[1]] = p[2]
            elif p[0] == "val":
                val[p[1]] = p[2]
            elif p[0] == "wrk":
                sc = p[1]
                if sc not in wrk:
                    wrk[sc] = []
                    order.append(sc)
                    notes[sc] = (p[9], p[10])
                wrk[sc].append([float(x) for x in p[3:9]])

    def med(sc, i):
        return statistics.median(r[i] for r in wrk[sc]) if sc in wrk else None

    def rps(sc):
        return med(sc, 0)

    out = []
    w = out.append
    w("## kvs benchmark (`make bench`)")
    w("")
    w("Machine: %s cores (%s), %s memory, kernel %s. Versions: kvs %s (%s), RocksDB %s, civetweb %s, "
      "etcd %s, wrk %s. Load: wrk %s threads, %s connections, %s s per run, median of %s runs "
      "(each column its own median), runs of every scenario interleaved, each run started once "
      "the servers were idle (no flush or compaction left from the run before); client and "
      "servers share the machine (loopback)."
      % (info.get("cores"), info.get("cpu"), info.get("memory"), info.get("kernel"),
         info.get("kvs"), info.get("source", "?"), info.get("rocksdb"), info.get("civetweb"),
         info.get("etcd"),
         info.get("wrk"), info.get("threads"), info.get("connections"), info.get("duration"),
         info.get("runs")))
    w("")
    if info.get("quick") == "1":
        w("Quick smoke run (`BENCH_QUICK=1`): every section once with short loads and small "
          "stores, and only some of the wrk scenarios; rough figures, not for "
          "comparison with a full run.")
        w("")
    if order:
        w("| scenario | keys | value | req/s | p50 ms | p99 ms | errors |")
        w("|---|---:|---:|---:|---:|---:|---:|")
    for sc in order:
        keys, size = notes[sc]
        errs = sum(r[4] + r[5] for r in wrk[sc])
        w("| %s | %s | %s | %s | %.2f | %.2f | %s |" % (
            sc, keys, size, "{:,.0f}".format(rps(sc)), med(sc, 1) / 1000, med(sc, 2) / 1000,
            "%d" % errs if errs else "0"))
    if order:
        w("")

    big = info.get("nbig", "1M")
    rows = [
        ("RSS idle, empty store (MB)", "rss_idle_mb"),
        ("RSS right after loading %s keys (MB)" % big, "rss_1m_mb"),
        ("RSS idle after restart with %s keys (MB)" % big, "rss_1m_idle_mb"),
        ("Disk bytes per key (%s keys, 100 B values, after a clean shutdown)" % big, "disk_per_key"),
        ("Start-up with %s keys, exec to first /health 200 (ms)" % big, "startup_1m_ms"),
        ("Start-up, empty store (ms)", "startup_empty_ms"),
        ("Loading %s keys with wrk (s)" % big, "fill_1m_s"),
        ("etcd RSS after its runs (MB)", "etcd_rss_mb"),
    ]
    if any(k in val for _, k in rows):
        w("| resource | value |")
        w("|---|---:|")
        for label, k in rows:
            if k in val:
                w("| %s | %s |" % (label, val[k]))
        w("")

    tags = val.get("cluster_tags", "").split()
    if tags:
        w("| cluster of 3, writes on node 1 | writes/s | lag p50 ms | lag p99 ms | ≤ 250 ms | "
          "applies seen / expected | repaired by anti-entropy | direct p50 ms | direct p99 ms | samples | "
          "caught up after s |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for tag in tags:
            w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                val.get(tag + "_label", tag), fmt_int(val.get(tag + "_rate")),
                ms(val.get(tag + "_hist_p50")), ms(val.get(tag + "_hist_p99")),
                pctf(val.get(tag + "_hist_share")), val.get(tag + "_hist_count", "?"),
                val.get(tag + "_repaired", "?"),
                ms(val.get(tag + "_direct_p50")), ms(val.get(tag + "_direct_p99")),
                val.get(tag + "_direct_samples", "?"), val.get(tag + "_converge_s", "?")))
        w("")
        w("Lag p50/p99: `kvs_replication_lag_seconds` of nodes 2 and 3 (origin timestamp to "
          "apply), interpolated inside its buckets; direct: sampled writes, from the 200 on "
          "node 1 until a GET answers 200 on both node 2 and node 3 (polled every ms); "
          "caught up: from the end of the load until a marker written after it is readable on "
          "nodes 2 and 3 and all three hold the same number of keys.")
        drops = ["%s %s" % (val.get(t + "_label", t), val[t + "_push_dropped"]) for t in tags
                 if val.get(t + "_push_dropped", "0") != "0"]
        w("Push queue drops on node 1: %s." % ("; ".join(drops) if drops else "none"))
        sustained = [t for t in tags if t != "cmax" and share_ok(val.get(t + "_hist_share"))]
        if sustained:
            best = max(sustained, key=lambda t: float(val.get(t + "_rate", 0) or 0))
            w("Highest measured rate with lag p99 ≤ 250 ms: %s writes/s (%s)."
              % (fmt_int(val.get(best + "_rate")), val.get(best + "_label")))
        w("")

    if "flood_p99" in val:
        w("| slow-client flood: GET /health from 127.0.0.1, a fresh connection each | requests | "
          "p50 ms | p99 ms | max ms | errors | p99 vs no flood |")
        w("|---|---:|---:|---:|---:|---:|---:|")
        for label, k, ratio in (
                ("no flood (baseline, same node, just before)", "flood_base_", "-"),
                ("%s connections from 127.0.0.2, a byte a second each"
                 % val.get("flood_conns", "?"), "flood_", times(val.get("flood_p99_ratio")))):
            w("| %s | %s | %s | %s | %s | %s | %s |" % (
                label, fmt_int(val.get(k + "requests")), ms2(val.get(k + "p50")),
                ms2(val.get(k + "p99")), ms2(val.get(k + "max")), val.get(k + "errors", "?"),
                ratio))
        w("")
        w("One node with the defaults (%s); %s s of sequential requests (%s ms between them) "
          "without the flood, then %s s with it. The flood's connections send `GET /` and then a "
          "byte a second of a request line that never ends, each reopened as soon as the server "
          "closes it: %s of %s open %s s after they started; the server closed %s of them "
          "during the window (%s opened in their place, %s open at its end)."
          % (val.get("flood_settings", "settings"), fmt_num(val.get("flood_duration")),
             fmt_num(float(val.get("flood_gap", "nan")) * 1000),
             fmt_num(val.get("flood_duration")), val.get("flood_open_at_start", "?"),
             val.get("flood_conns", "?"), val.get("flood_ramp_s", "?"),
             val.get("flood_closed_by_server", "?"), val.get("flood_opened", "?"),
             val.get("flood_open_at_end", "?")))
        few = [lbl for lbl, k in (("without", "flood_base_"), ("with", "flood_"))
               if 0 < float(val.get(k + "requests", 0) or 0) < 100]
        if few:
            w("Fewer than 100 requests %s the flood: its p99 is their maximum." % " and ".join(few))
        w("")

    watch_report(w, val, wrk, rps, info)
    expiry_report(w, val)
    cluster_report(w, val, rps)
    snapshot_report(w, val, rps, info)
    client_report(w, val)
    if "GET /health" not in wrk:   # BENCH_ONLY: the issue-7 scenarios did not run
        print("\n".join(out))
        return

    # targets
    w("### Targets (issue 7)")
    w("")
    w("| target | measured | result |")
    w("|---|---|---|")

    skipped = "not measured (quick)" if info.get("quick") == "1" else "not measured"

    def target(name, num, den, want, percent=False):
        if num is None or den is None or den == 0:
            w("| %s | %s | - |" % (name, skipped))
            return
        r = num / den
        shown = "%.0f%% (%s / %s req/s)" % (r * 100, "{:,.0f}".format(num), "{:,.0f}".format(den)) \
            if percent else "%.2f× (%s / %s req/s)" % (r, "{:,.0f}".format(num), "{:,.0f}".format(den))
        w("| %s | %s | %s |" % (name, shown, "PASS" if r >= want else "MISS"))

    health = rps("GET /health")
    target("GET /kv ≥ 90% of GET /health", rps("GET /kv"), health, 0.90, True)
    target("PUT /kv ≥ 60% of GET /health", rps("PUT /kv"), health, 0.60, True)
    target("PUT ≥ 2.5× etcd v2 PUT (default settings)", rps("PUT /kv"), rps("etcd v2 PUT"), 2.5)
    target("PUT ≥ 1.2× etcd v2 PUT (sync_writes: true)", rps("PUT /kv, sync_writes"),
           rps("etcd v2 PUT"), 1.2)
    target("GET ≥ 1.5× etcd v2 GET", rps("GET /kv"), rps("etcd v2 GET"), 1.5)
    target("GET ≥ 1.5× etcd v2 GET (sync_writes: true node)", rps("GET /kv, sync_writes"),
           rps("etcd v2 GET"), 1.5)
    target("conditional PUT (If-Match: *) ≥ 0.9× plain PUT (issue 17)",
           rps("PUT /kv, If-Match: * (conditional)"), rps("PUT /kv"), 0.9)
    target("PUT with ttl ≥ 0.9× plain PUT (issue 18)", rps("PUT /kv?ttl=1h"), rps("PUT /kv"), 0.9)
    target("PUT, 50 scoped tokens + audit log ≥ 0.9× no auth (issue 19)",
           rps("PUT /kv, 50 scoped tokens + audit log"), rps("PUT /kv"), 0.9)
    target("GET, 50 scoped tokens + audit log ≥ 0.9× no auth (issue 19)",
           rps("GET /kv, 50 scoped tokens + audit log"), rps("GET /kv"), 0.9)
    for ops in (1, 4, 16):
        num = rps("POST /txn, %d put%s" % (ops, "s" if ops > 1 else ""))
        if num is not None and rps("PUT /kv"):
            w("| POST /txn of %d put%s: transactions/s (keys written/s) vs plain PUT/s | "
              "%s (%s keys/s) / %s | %.2f× keys/s |" % (
                  ops, "s" if ops > 1 else "", "{:,.0f}".format(num),
                  "{:,.0f}".format(num * ops), "{:,.0f}".format(rps("PUT /kv")),
                  num * ops / rps("PUT /kv")))
    if "c1k_hist_p99" in val:
        hp = val["c1k_hist_p99"]
        dp = float(val.get("c1k_direct_p99", "nan"))
        share = float(val.get("c1k_hist_share", "nan"))
        ok = share >= 0.99 and (math.isnan(dp) or dp <= 0.25)
        w("| replication lag p99 ≤ 250 ms at 1,000 writes/s | histogram p99 %s ms (%s ≤ 250 ms), "
          "direct p99 %s ms | %s |" % (ms(hp), pctf(share), ms(dp), "PASS" if ok else "MISS"))
    else:
        w("| replication lag p99 ≤ 250 ms at 1,000 writes/s | not measured | - |")
    if "cstop_p99" in val:
        p99 = float(val["cstop_p99"]) * 1000
        up = float(val.get("cstop_catchup_s", "nan"))
        w("| a peer SIGSTOPped %s s at 1,000 writes/s: lag to the third p99 ≤ 50 ms, caught up ≤ 2 s "
          "after SIGCONT (issue 20) | p99 %.1f ms (p50 %.1f ms), caught up in %.2f s | %s |" % (
              val.get("cstop_s", "?"), p99, float(val.get("cstop_p50", "nan")) * 1000, up,
              "PASS" if p99 <= 50 and up <= 2 else "MISS"))
    if "join_1m_s" in val:
        j = float(val["join_1m_s"])
        w("| a node joining a %s-key node is `normal` within 30 s (issue 20) | %.1f s (%s keys) | %s |"
          % (big, j, val.get("join_1m_keys", "?"), "PASS" if j <= 30 else "MISS"))
    if "rss_idle_mb" in val:
        r = float(val["rss_idle_mb"])
        w("| idle RSS ≤ 40 MB | %.1f MB | %s |" % (r, "PASS" if r <= 40 else "MISS"))
    w("")
    print("\n".join(out))


def cluster_report(w, val, rps):
    """Issue 20's goals: full speed on one node and spread over three, N-node clusters."""
    rows = []

    def lag_goal(tag, what):
        if tag + "_hist_p99" not in val:
            return
        p99 = float(val[tag + "_hist_p99"])
        up = float(val.get(tag + "_converge_s", "nan"))
        drops, fixed = val.get(tag + "_push_dropped", "?"), val.get(tag + "_repaired", "?")
        after = val.get(tag + "_ae_after")
        ok = p99 <= 1.0 and up <= 1.0 and drops == "0" and (after or fixed) == "0"
        rows.append((what, "lag p99 %s ms (histogram), caught up %.1f s after, %s push drops; "
                     "anti-entropy: %s records fetched during the load (ahead of their push), %s "
                     "in the %s s after it; %s records a regular sync brought before their push"
                     % (ms(p99), up, drops, fixed, after if after is not None else "not measured",
                        val.get(tag + "_ae_wait_s", "12"), val.get(tag + "_synced", "?")), ok))

    lag_goal("cfull", "3 nodes, full-speed PUT on node 1 for %s s (%s writes/s): lag p99 ≤ 1 s, "
             "caught up ≤ 1 s, nothing dropped or repaired" % (val.get("cfull_s", "?"),
                                                               fmt_int(val.get("cfull_rate"))))
    lag_goal("cspread", "3 nodes, full-speed PUT spread over all three: lag as above")
    if "cfull_push_wire" in val:
        rows.append(("push bodies sent by node 1 in the full-speed run, zstd as negotiated "
                     "(bytes as sent of their JSON size)", val["cfull_push_wire"], None))
    k, e = rps("PUT, 3-member kvs cluster, spread over all 3"), \
        rps("PUT, 3-member etcd cluster, spread over all 3")
    if k and e:
        rows.append(("3 nodes, PUT spread over all three ≥ 3× a 3-member etcd cluster",
                     "%.2f× (%s / %s writes/s)" % (k / e, "{:,.0f}".format(k), "{:,.0f}".format(e)),
                     k / e >= 3))
    if rows:
        w("### Targets (issue 20)")
        w("")
        w("| target | measured | result |")
        w("|---|---|---|")
        for what, got, ok in rows:
            w("| %s | %s | %s |" % (what, got, "-" if ok is None else "PASS" if ok else "MISS"))
        w("")
    sizes = val.get("scale_sizes", "").split()
    if sizes:
        w("| nodes on one machine (small-memory config) | full membership after s | "
          "writes/s on node 1 | readable on every node p50 ms | p99 ms | samples | "
          "RSS per node MB | CPU per node | node 1 CPU | push requests per write on node 1 |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in sizes:
            w("| %s | %s | %s | %s | %s | %s | %s | %s%% | %s%% | %s |" % (
                n, val.get("scale%s_members_s" % n, "?"), fmt_int(val.get("scale%s_rate" % n)),
                ms(val.get("scale%s_p50" % n)), ms(val.get("scale%s_p99" % n)),
                val.get("scale%s_samples" % n, "?"), val.get("scale%s_rss_mb" % n, "?"),
                val.get("scale%s_cpu_pct" % n, "?"), val.get("scale%s_origin_cpu_pct" % n, "?"),
                val.get("scale%s_pushes_per_write" % n, "?")))
        w("")
        w("All nodes seeded by node 1 and started at once; membership: from the first start until "
          "every node is `normal` and lists all of them alive. Readable on every node: from the "
          "200 on node 1 until a GET answers 200 on each other node, polled one after another "
          "(every 25th write; the sweep itself takes a few ms at 40 nodes). CPU: per node, "
          "while the writes ran.")
        w("")


def expiry_report(w, val):
    """The expiry figures of issue 18 (bench/expiry.py)."""
    if "expiry" not in val:
        return
    try:
        e = json.loads(val["expiry"])
    except ValueError:
        return
    w("### Expiry (issue 18)")
    w("")
    w("%s keys written on node 1 of 2 with TTLs expiring over %s s (%.0f keys/s), timed on node 2 "
      "against each key's expiry:" % ("{:,}".format(e["count"]), fmt_num(e["spread_s"]), e["rate"]))
    w("")
    w("| measurement | p50 | p99 | max | samples |")
    w("|---|---:|---:|---:|---:|")
    w("| expiry → 404 on node 2 (reads check the expiry) | %.1f ms | %.1f ms | %.1f ms | %s |" % (
        e["get_p50_ms"], e["get_p99_ms"], e["get_max_ms"], e["get_samples"]))
    w("| expiry → `expire` event on node 2 (its reaper) | %.1f ms | %.1f ms | %.1f ms | %s (%s missing) |"
      % (e["event_p50_ms"], e["event_p99_ms"], e["event_max_ms"], e["events"], e["missing"]))
    w("")
    w("Node 2's CPU while the keys expired: %.1f%% of a core (idle before: %.1f%%), i.e. %.1f%% "
      "per 1,000 keys/s expiring." % (100 * e["cpu_window"], 100 * e["cpu_idle"],
                                      100 * (e["cpu_window"] - e["cpu_idle"]) * 1000 / e["rate"]))
    w("")


def snapshot_report(w, val, rps, info):
    """The snapshot figures of issue 22 (bench/snapshot.py, bench_snapshot in run.sh)."""
    if "snap_idle" not in val:
        return
    try:
        idle = json.loads(val["snap_idle"])
        loops = [json.loads(v) for k, v in sorted(val.items()) if k.startswith("snap_loop|")]
    except ValueError:
        return
    big = info.get("nbig", "1M")
    w("### Snapshots (issue 22)")
    w("")
    w("| measurement | value |")
    w("|---|---:|")
    w("| GET /admin/snapshot of %s keys (100 B values), idle node | %.1f MB in %.2f s: %.0f MB/s |"
      % (big, idle["bytes"] / 1e6, idle["seconds"], idle["mb_s"]))
    w("| node RSS before / peak during that snapshot | %.1f / %.1f MB |"
      % (idle["rss_before_mb"], idle["rss_peak_mb"]))
    if loops:
        mbs = sorted(x["mb_s"] for x in loops)[len(loops) // 2]
        peak = max(x["rss_peak_mb"] for x in loops)
        w("| snapshots back to back under full PUT load | %s snapshots, median %.0f MB/s, "
          "peak RSS %.1f MB |" % (sum(x["snapshots"] for x in loops), mbs, peak))
    without = rps("PUT /kv, snapshot node, no snapshot")
    during = rps("PUT /kv, snapshots running")
    if without and during:
        w("| PUT req/s while snapshots run, as a ratio to without (same rounds) | %.2f "
          "(%s / %s) |" % (during / without, "{:,.0f}".format(during),
                           "{:,.0f}".format(without)))
    if val.get("snap_non200"):
        w("| answers other than 200 from the snapshot node | %s |" % val["snap_non200"])
    if "snap_restore_s" in val:
        w("| `kvs --restore` of that snapshot into an empty data dir | %s s (%s MB on disk) |"
          % (val["snap_restore_s"], val.get("snap_restore_mb", "?")))
    w("")


def client_report(w, val):
    """libkvs and kvsctl (issue 21): medians over the rounds of bench_client in run.sh."""
    if not any(k.startswith("client_") for k in val):
        return

    def runs_of(prefix):
        """{run: [req/s, p50 us, p99 us]} of the values named prefix_<run>."""
        return {k.rsplit("_", 1)[1]: [float(x) for x in val[k].split()] for k in val
                if k.startswith(prefix + "_") and len(val[k].split()) == 3}

    def med(prefix):
        """Median req/s, p50 and p99 (us) over the runs, each column its own median."""
        runs = list(runs_of(prefix).values())
        if not runs:
            return None
        return [statistics.median(r[i] for r in runs) for i in range(3)]

    def round_ratio(mode, other):
        """Median of the per-round ratios libkvs / other (rounds run side by side), and them."""
        lib, oth = runs_of("client_%s_lib" % mode), runs_of("client_%s_%s" % (mode, other))
        rs = [lib[r][0] / oth[r][0] for r in sorted(lib) if r in oth and oth[r][0]]
        if not rs:
            return "-"
        return "%.2f× (%s)" % (statistics.median(rs), ", ".join("%.2f" % x for x in rs))

    w("### libkvs and kvsctl (issue 21)")
    w("")
    w("| 100 B values | libkvs, 1 thread, keep-alive | wrk, 1 connection | libkvs / wrk 1 conn | "
      "wrk 2×64 | libkvs / wrk 2×64 |")
    w("|---|---:|---:|---:|---:|---:|")
    for mode in ("get", "put"):
        lib, one, many = (med("client_%s_%s" % (mode, t)) for t in ("lib", "wrk1", "wrk64"))
        if not lib:
            continue

        def cell(r):
            return "%s/s (p50 %.2f ms, p99 %.2f ms)" % ("{:,.0f}".format(r[0]), r[1] / 1000,
                                                         r[2] / 1000) if r else "-"

        w("| %s | %s | %s | %s | %s | %s |" % (mode.upper(), cell(lib), cell(one),
                                               round_ratio(mode, "wrk1"), cell(many),
                                               round_ratio(mode, "wrk64")))
    w("")
    w("Ratios: the median of the rounds' own ratios (each round runs the three side by side), "
      "the rounds' in brackets.")
    w("")
    if "client_hyperfine" in val:
        try:
            res = json.loads(val["client_hyperfine"])
        except ValueError:
            res = []
        w("| wall time per call (hyperfine, process start to exit) | mean | median | stddev | min |")
        w("|---|---:|---:|---:|---:|")
        for r in res:
            name = "`kvsctl get`" if "kvsctl" in r["command"] else "`curl -s` GET"
            w("| %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms |" % (
                name, r["mean"] * 1000, r["median"] * 1000, r["stddev"] * 1000, r["min"] * 1000))
        if len(res) == 2:
            w("")
            w("kvsctl / curl (mean): %.2f×" % (res[0]["mean"] / res[1]["mean"]))
        w("")


def watch_report(w, val, wrk, rps, info):
    """The watch figures of issue 16: its own table, each with its goal.  wrk: scenario ->
    its runs in order (req/s first)."""
    if "watch_skipped" in val:
        w("### Watches (issue 16)")
        w("")
        w("Not measured: this kvs binary has no watches (no `watch_history` setting).")
        w("")
        return
    if "watch_latency" not in val and "watch_count" not in val:
        return
    n = int(float(val.get("watch_count", "0") or 0))
    w("### Watches (issue 16)")
    w("")
    w("| measurement | value | goal | result |")
    w("|---|---|---|---|")

    def verdict(ok):
        return "-" if ok is None else "PASS" if ok else "MISS"

    lat = {}
    if "watch_latency" in val:
        try:
            lat = json.loads(val["watch_latency"])
        except ValueError:
            lat = {}
    names = (("local_sse", "this node, SSE stream", 0.005),
             ("remote_sse", "another node, SSE stream", 0.050),
             ("local_poll", "this node, long-poll", 0.005),
             ("remote_poll", "another node, long-poll", 0.050))
    for key, label, goal in names:
        st = lat.get("watchers", {}).get(key)
        if st is None:
            continue
        extra = []
        if st.get("missing"):
            extra.append("%d of %d events missing" % (st["missing"], lat.get("acked", 0)))
        if st.get("error"):
            extra.append("error: %s" % st["error"])
        p99 = st.get("p99")
        ok = None if p99 is None or (isinstance(p99, float) and math.isnan(p99)) else \
            (p99 <= goal and not st.get("missing"))
        w("| event delivery at %s writes/s, %s: p50 / p99 / max ms | %s / %s / %s%s | p99 ≤ %g ms "
          "| %s |" % (fmt_int(lat.get("achieved_rate")), label, ms2(st.get("p50")), ms2(p99),
                      ms2(st.get("max")), " (%s)" % "; ".join(extra) if extra else "",
                      goal * 1000, verdict(ok)))

    def ratio_row(label, num_sc, den_sc, want):
        num, den = rps(num_sc), rps(den_sc)
        if num is None or den is None or den == 0:
            w("| %s | not measured%s | ≥ %g | - |"
              % (label, " (quick)" if info.get("quick") == "1" else "", want))
            return
        r = num / den
        rounds = ""
        if len(wrk[num_sc]) > 1 and len(wrk[num_sc]) == len(wrk[den_sc]):
            rounds = "; round by round %s" % ", ".join(
                "%.2f" % (a[0] / b[0]) for a, b in zip(wrk[num_sc], wrk[den_sc]) if b[0])
        w("| %s | %.2f× (%s / %s req/s, medians%s) | ≥ %g | %s |" % (
            label, r, "{:,.0f}".format(num), "{:,.0f}".format(den), rounds, want,
            verdict(r >= want)))

    # server CPU per request: clock ticks over each scenario's runs / its requests
    tick_us = 1e6 / float(info.get("clk_tck", "100") or 100)
    cpu = {}
    for k, v in val.items():
        if k.startswith("watch_cpu|"):
            sc_name = k.split("|")[1]
            t, r = (float(x) for x in v.split())
            a = cpu.setdefault(sc_name, [0.0, 0.0])
            a[0] += t
            a[1] += r

    def cpu_row(label, num_sc, den_sc, want):
        if num_sc not in cpu or den_sc not in cpu or not cpu[num_sc][1] or not cpu[den_sc][1]:
            return
        a = cpu[num_sc][0] * tick_us / cpu[num_sc][1]
        b = cpu[den_sc][0] * tick_us / cpu[den_sc][1]
        r = a / b if b else float("nan")
        w("| %s | %.2f× (%.1f / %.1f µs) | ≤ %.2f× | %s |"
          % (label, r, a, b, want, verdict(r <= want)))

    sc = val.get("watch_sc", "|").split("|")
    ratio_row("PUT /kv with %s idle watchers / with none" % fmt_int(n), sc[0],
              "PUT /kv, change index on, no watchers", 0.8)
    ratio_row("GET /kv with %s idle watchers / with none" % fmt_int(n), sc[1],
              "GET /kv, change index on, no watchers", 0.8)
    ratio_row("PUT /kv, change index on / off (`watch_history: 0`)",
              "PUT /kv, change index on, no watchers", "PUT /kv, change index off", 0.95)
    ratio_row("GET /health, change index on / off", "GET /health, change index on",
              "GET /health, change index off", 0.95)
    cpu_row("server CPU per PUT, %s idle watchers / none" % fmt_int(n), sc[0],
            "PUT /kv, change index on, no watchers", 1 / 0.8)
    cpu_row("server CPU per GET, %s idle watchers / none" % fmt_int(n), sc[1],
            "GET /kv, change index on, no watchers", 1 / 0.8)
    cpu_row("server CPU per PUT, change index on / off", "PUT /kv, change index on, no watchers",
            "PUT /kv, change index off", 1 / 0.95)
    cpu_row("server CPU per GET /health, change index on / off", "GET /health, change index on",
            "GET /health, change index off", 1 / 0.95)
    if "watch_rss_kb" in val and n > 0:
        a, b = (float(x) for x in val["watch_rss_kb"].split())
        w("| memory per open watcher (RSS with %s idle watchers − without, ÷ %s) | %.1f KiB "
          "(%.1f → %.1f MB) | - | - |" % (fmt_int(n), fmt_int(n), (b - a) / n, a / 1024, b / 1024))
    if "watch_rss_reserved_kb" in val:
        z, a, slots = (float(x) for x in val["watch_rss_reserved_kb"].split())
        w("| memory per `max_watchers` slot, no watcher open (idle RSS with `max_watchers: %s` − "
          "with 0, ÷ %s: a worker thread each) | %.1f KiB (%.1f → %.1f MB) | - | - |"
          % (fmt_int(slots), fmt_int(slots), (a - z) / slots, z / 1024, a / 1024))
    freed = [val[k] for k in sorted(val) if k.startswith("watch_freed_")]
    if freed:
        nums = [float(x) for x in freed if x not in ("?", "")]
        w("| watchers freed after their clients closed (slowest of %d) | %s | within seconds | - |"
          % (len(freed), "%.1f s" % max(nums) if nums else "? (no open-watcher gauge)"))
    w("")
    notes = []
    if lat:
        notes.append("Event delivery: a 2-node cluster (the fast intervals of node1.yaml); %s "
                     "paced PUTs (100 B) to node 1 (%s failed, %s sent > 50 ms late), each timed "
                     "from its 200 read by the writer to the arrival of its event (matched by "
                     "uuid) on an SSE stream and on a long-poll loop (`index` from the last "
                     "reply) on node 1 and on node 2, watching the written prefix; client "
                     "processes on the same 2 cores as the nodes. An event that arrived before "
                     "its write's 200 counts as 0 ms (%s)."
                     % (fmt_int(lat.get("acked")), lat.get("failed", "?"),
                        lat.get("late_writes", "?"),
                        ", ".join("%s %s" % (k, v.get("early", 0))
                                  for k, v in sorted(lat.get("watchers", {}).items()))))
        if lat.get("error"):
            notes.append("The latency run failed: %s." % lat["error"])
    holds = [k for k in sorted(val) if k.startswith("watch_hold_")]
    if holds:
        refused = other = closed = 0
        for k in holds:
            try:
                h = json.loads(val[k])
            except ValueError:
                continue
            refused += h.get("refused", 0)
            other += h.get("other_status", 0)
            closed += h.get("closed_by_server", 0)
        notes.append("Idle watchers: long-polls `GET /watch/idle/<i>/?wait=600s` on their own "
                     "connections from one client process, opened %d times (memory, then once "
                     "per round around the runs with them): %d answered 503, %d another "
                     "error status, %d closed by the server while held. Change index on/off: "
                     "two single nodes with the same settings but `watch_history: 0`. Runs "
                     "interleaved, each pair in the opposite order every other round. Server CPU per "
                     "request: the nodes' user + system time during a scenario's runs (from "
                     "/proc, in clock ticks) over its requests, the same goals as the "
                     "throughput ratios turned round; steadier than req/s when other work "
                     "shares the cores, but it counts background work (flushes, compactions, "
                     "the history trimmer) only while it runs inside the timed window." % (len(holds), refused, other, closed))
    if notes:
        w(" ".join(notes))
        w("")


def share_ok(v):
    try:
        return float(v) >= 0.99
    except (TypeError, ValueError):
        return False


def fmt_int(v):
    try:
        return "{:,.0f}".format(float(v))
    except (TypeError, ValueError):
        return "?" if v is None else str(v)


def ms(v):
    if isinstance(v, str) and v.startswith(">"):
        return "> %g" % (float(v[1:]) * 1000)
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "?"
    return "nan" if math.isnan(x) else "%.1f" % (x * 1000)


def ms2(v):
    try:
        return "%.2f" % (float(v) * 1000)
    except (TypeError, ValueError):
        return "?"


def times(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "?"
    return "nan" if math.isnan(x) else "%.1f×" % x if x < 100 else "{:,.0f}×".format(x)


def fmt_num(v):
    try:
        return "%g" % float(v)
    except (TypeError, ValueError):
        return "?"


def pctf(v):
    try:
        return "%.1f%%" % (float(v) * 100)
    except (TypeError, ValueError):
        return "?"


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    c, args = sys.argv[1], sys.argv[2:]
    if c == "ports":
        cmd_ports(*args)
    elif c == "waitup":
        return cmd_waitup(*args)
    elif c == "metric":
        return cmd_metric(*args)
    elif c == "snapshot":
        cmd_snapshot(*args)
    elif c == "lagq":
        cmd_lagq(args)
    elif c == "paced":
        cmd_paced(args)
    elif c == "flood":
        cmd_flood(args)
    elif c == "members_wait":
        cmd_members_wait(args)
    elif c == "report":
        cmd_report(*args)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
