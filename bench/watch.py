#!/usr/bin/python3
"""Watch clients for bench/run.sh (issue 16; stdlib only).

    watch.py latency --writer HOST:PORT --local HOST:PORT --remote HOST:PORT
                     --rate R --duration S --prefix P [--threads T] [--out FILE]
        Paced PUTs to --writer at R writes/s for S s, watched meanwhile on the prefix P/ by
        an SSE stream and a long-poll loop on --local (the node written to) and on --remote
        (another node of its cluster).  Each write's acknowledgement (its 200 read) and each
        event's arrival are timed with CLOCK_MONOTONIC, in two processes (writer; all four
        watchers in one select loop) so neither holds the other's GIL; events are matched to
        writes by uuid.  Prints one JSON line: rate, and per watcher p50/p99/max (s) of
        arrival - acknowledgement, samples, missing, early (arrived before the ack).
    watch.py hold --port PORT --count N --prefix P [--wait 600s] [--stats FILE]
        Opens N long-polls GET /watch/P/<i>/?wait=... on 127.0.0.1:PORT, each on its own
        connection, and holds them (re-asking when one answers) until SIGTERM or SIGINT; then
        closes them and writes its counts to --stats.
    watch.py waitopen --url URL --count N [--timeout S]
        Waits until the node's open-watcher gauge (from URL/metrics) is N; prints the
        seconds it took.  Exit 1 on timeout; 2 if the node has no such gauge (after
        sleeping 2 s, so that the watchers had time to arrive).
"""
import argparse
import http.client
import json
import math
import multiprocessing
import os
import resource
import selectors
import signal
import socket
import sys
import threading
import time
import urllib.request


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def hostport(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def pct(v, q):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[max(0, min(len(v) - 1, int(math.ceil(q * len(v))) - 1))]


# ---------------------------------------------------------------- HTTP responses, incrementally

class Response:
    """Incremental HTTP/1.1 response parser: feed() bytes as they arrive and get back
    ("head", status, headers), ("data", bytes) and ("end",) items.  Content-Length,
    chunked and close-delimited bodies; several responses in a row (keep-alive)."""

    def __init__(self):
        self.buf = b""
        self.state = "head"
        self.left = None

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            st = self.state
            if st == "head":
                i = self.buf.find(b"\r\n\r\n")
                if i < 0:
                    break
                lines = self.buf[:i].decode("latin-1").split("\r\n")
                self.buf = self.buf[i + 4:]
                status = int(lines[0].split()[1])
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                out.append(("head", status, headers))
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    self.state = "size"
                elif "content-length" in headers:
                    self.left = int(headers["content-length"])
                    self.state = "body"
                    if self.left == 0:
                        out.append(("end",))
                        self.state = "head"
                else:
                    self.left = None
                    self.state = "body"
            elif st == "body":
                if not self.buf:
                    break
                if self.left is None:
                    out.append(("data", self.buf))
                    self.buf = b""
                    break
                n = min(len(self.buf), self.left)
                out.append(("data", self.buf[:n]))
                self.buf = self.buf[n:]
                self.left -= n
                if self.left == 0:
                    out.append(("end",))
                    self.state = "head"
            elif st == "size":
                i = self.buf.find(b"\r\n")
                if i < 0:
                    break
                size = int(self.buf[:i].split(b";")[0].strip() or b"0", 16)
                self.buf = self.buf[i + 2:]
                if size == 0:
                    self.state = "trailer"
                else:
                    self.left = size
                    self.state = "chunk"
            elif st == "chunk":
                if not self.buf:
                    break
                n = min(len(self.buf), self.left)
                out.append(("data", self.buf[:n]))
                self.buf = self.buf[n:]
                self.left -= n
                if self.left == 0:
                    self.state = "crlf"
            elif st == "crlf":
                if len(self.buf) < 2:
                    break
                self.buf = self.buf[2:]
                self.state = "size"
            elif st == "trailer":
                i = self.buf.find(b"\r\n")
                if i < 0:
                    break
                line = self.buf[:i]
                self.buf = self.buf[i + 2:]
                if not line:
                    out.append(("end",))
                    self.state = "head"
        return out


def request_bytes(host, port, path, headers=()):
    lines = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (host, port)]
    lines += ["%s: %s" % h for h in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def node_index(host, port, prefix):
    """The node's current change index: X-Kvs-Index of a /kv/ reply (None if absent)."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", "/kv/%s/?limit=1" % prefix)
        r = conn.getresponse()
        r.read()
        v = r.getheader("X-Kvs-Index")
        return int(v) if v is not None else None
    finally:
        conn.close()


# ---------------------------------------------------------------- watchers (one select loop)

class Watcher:
    """One watch on its own connection.  kind "sse": one streaming request; kind "poll":
    long-polls one after another on a keep-alive connection, each from the last reply's
    index.  Records the first arrival (monotonic) of each uuid."""

    def __init__(self, label, kind, host, port, prefix, index, wait):
        self.label, self.kind, self.host, self.port = label, kind, host, port
        self.prefix, self.index, self.wait = prefix, index, wait
        self.seen = {}
        self.events = 0
        self.replies = 0
        self.error = None
        self.ready = False
        self.parser = Response()
        self.body = b""
        self.sse_data = []
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.ask()

    def path(self):
        q = ["wait=%s" % self.wait] if self.kind == "poll" else []
        if self.index is not None:
            q.append("index=%d" % self.index)
        return "/watch/%s/?%s" % (self.prefix, "&".join(q))

    def ask(self):
        hdrs = [("Accept", "text/event-stream")] if self.kind == "sse" else []
        self.sock.setblocking(True)
        self.sock.sendall(request_bytes(self.host, self.port, self.path(), hdrs))
        self.sock.setblocking(False)
        if self.kind == "poll":
            self.ready = True   # from an explicit index: no event can be missed

    def event(self, ev, t):
        self.events += 1
        u = ev.get("uuid")
        if u is not None and u not in self.seen:
            self.seen[u] = t
        idx = ev.get("index")
        if isinstance(idx, int):
            self.index = max(self.index or 0, idx)

    def readable(self):
        try:
            data = self.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            data, self.error = b"", "recv: %s" % e
        t = time.monotonic()
        if not data:
            self.error = self.error or "closed by the server after %d events" % self.events
            return
        for item in self.parser.feed(data):
            if item[0] == "head":
                if item[1] != 200:
                    self.error = "HTTP %d" % item[1]
                elif self.kind == "sse":
                    self.ready = True
            elif item[0] == "data":
                if self.kind == "sse":
                    self.sse_feed(item[1], t)
                else:
                    self.body += item[1]
            elif item[0] == "end":
                if self.kind == "poll":
                    self.poll_reply(t)
                else:
                    self.error = self.error or "stream ended after %d events" % self.events

    def sse_feed(self, data, t):
        self.body += data
        while True:
            i = self.body.find(b"\n")
            if i < 0:
                return
            line = self.body[:i].rstrip(b"\r")
            self.body = self.body[i + 1:]
            if not line:
                if self.sse_data:
                    try:
                        self.event(json.loads(b"\n".join(self.sse_data)), t)
                    except ValueError:
                        self.error = "bad SSE data: %r" % self.sse_data[:1]
                    self.sse_data = []
            elif line.startswith(b"data:"):
                self.sse_data.append(line[5:].lstrip(b" ") if line[5:6] == b" " else line[5:])

    def poll_reply(self, t):
        body, self.body = self.body, b""
        self.replies += 1
        if self.error:
            return
        try:
            doc = json.loads(body)
        except ValueError:
            self.error = "bad long-poll reply: %r" % body[:80]
            return
        for ev in doc.get("events", []):
            self.event(ev, t)
        if isinstance(doc.get("index"), int):
            self.index = max(self.index or 0, doc["index"])
        self.ask()


def watch_loop(specs, ready, stop, counts, conn):
    """Child process: the watchers of specs, until stop is set; sends back
    {label: {"seen": {uuid: t}, "error", "events", "replies"}}."""
    ws = []
    try:
        for i, s in enumerate(specs):
            ws.append(Watcher(*s))
        sel = selectors.DefaultSelector()
        for w in ws:
            sel.register(w.sock, selectors.EVENT_READ, w)
        deadline = time.monotonic() + 10
        while not stop.is_set():
            for key, _ in sel.select(0.05):
                w = key.data
                w.readable()
                if w.error:
                    try:
                        sel.unregister(w.sock)
                    except (KeyError, ValueError):
                        pass
            for i, w in enumerate(ws):
                counts[i] = len(w.seen)
            if not ready.is_set():
                if all(w.ready or w.error for w in ws):
                    ready.set()
                elif time.monotonic() > deadline:
                    for w in ws:
                        if not w.ready:
                            w.error = w.error or "no reply headers in 10 s"
                    ready.set()
    except Exception as e:  # report it rather than die silently
        conn.send({"_fatal": "%s: %s" % (type(e).__name__, e)})
        ready.set()
        return
    conn.send({w.label: {"seen": w.seen, "error": w.error, "events": w.events,
                         "replies": w.replies} for w in ws})
    for w in ws:
        w.sock.close()


def cmd_latency(argv):
    ap = argparse.ArgumentParser(prog="watch.py latency")
    ap.add_argument("--writer", required=True)
    ap.add_argument("--local", required=True)
    ap.add_argument("--remote", required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--grace", type=float, default=10.0,
                    help="longest wait for the last events after the last write, s")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)

    specs = []
    for where, node in (("local", a.local), ("remote", a.remote)):
        host, port = hostport(node)
        idx = node_index(host, port, a.prefix)
        for kind in ("sse", "poll"):
            specs.append(("%s_%s" % (where, kind), kind, host, port, a.prefix, idx, "30s"))

    ctx = multiprocessing.get_context("fork")
    ready, stop = ctx.Event(), ctx.Event()
    counts = ctx.Array("q", len(specs), lock=False)
    parent_end, child_end = ctx.Pipe(duplex=False)
    child = ctx.Process(target=watch_loop, name="watchers", daemon=True,
                        args=(specs, ready, stop, counts, child_end))
    child.start()
    ready.wait(15)

    host, port = hostport(a.writer)
    total = int(a.rate * a.duration)
    body = ('{"data":"' + "w" * max(0, a.size - 11) + '"}').encode()
    lock = threading.Lock()
    nxt = [0]
    acks = {}          # uuid -> t_ack
    failed = [0]
    late = [0]         # writes sent more than 50 ms behind schedule
    t0 = time.monotonic() + 0.2

    def writer():
        conn = http.client.HTTPConnection(host, port, timeout=10)
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
            try:
                conn.request("PUT", "/kv/%s/k%08d" % (a.prefix, i), body,
                             {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                t_ack = time.monotonic()
                u = json.loads(data).get("uuid") if r.status == 200 else None
            except Exception:
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
                u = None
            with lock:
                if u:
                    acks[u] = t_ack
                else:
                    failed[0] += 1

    ws = [threading.Thread(target=writer) for _ in range(a.threads)]
    for t in ws:
        t.start()
    for t in ws:
        t.join()
    elapsed = time.monotonic() - t0
    # the last events: until every watcher has seen as many as were acknowledged, or grace
    end = time.monotonic() + a.grace
    while time.monotonic() < end and child.is_alive() and \
            any(counts[i] < len(acks) for i in range(len(specs))):
        time.sleep(0.02)
    stop.set()
    got = parent_end.recv() if parent_end.poll(30) else {"_fatal": "no results from the watchers"}
    child.join(10)

    res = {"target_rate": a.rate, "achieved_rate": len(acks) / elapsed if elapsed > 0 else 0,
           "acked": len(acks), "failed": failed[0], "late_writes": late[0], "watchers": {}}
    if "_fatal" in got:
        res["error"] = got["_fatal"]
    for label, w in got.items():
        if label.startswith("_"):
            continue
        lat, early, missing = [], 0, 0
        for u, ta in acks.items():
            te = w["seen"].get(u)
            if te is None:
                missing += 1
                continue
            d = te - ta
            if d < 0:
                early += 1
            lat.append(max(0.0, d))
        res["watchers"][label] = {
            "p50": pct(lat, 0.50), "p99": pct(lat, 0.99), "max": max(lat) if lat else float("nan"),
            "samples": len(lat), "missing": missing, "early": early, "events": w["events"],
            "replies": w["replies"], "error": w["error"]}
    line = json.dumps(res)
    print(line)
    if a.out:
        with open(a.out, "w") as f:
            f.write(line + "\n")
    return 0 if "error" not in res else 1


# ---------------------------------------------------------------- idle watchers, held open

def cmd_hold(argv):
    ap = argparse.ArgumentParser(prog="watch.py hold")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--prefix", default="idle")
    ap.add_argument("--wait", default="600s")
    ap.add_argument("--stats", default=None)
    a = ap.parse_args(argv)
    raise_nofile()

    stopping = [False]

    def on_signal(signum, frame):
        stopping[0] = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    host = "127.0.0.1"
    st = {"count": a.count, "opened": 0, "open_errors": 0, "replies": 0, "refused": 0,
          "other_status": 0, "closed_by_server": 0}
    sel = selectors.DefaultSelector()
    conns = {}    # socket -> [i, Response, retry_at]

    def open_one(i):
        try:
            s = socket.create_connection((host, a.port), timeout=10)
            s.sendall(request_bytes(host, a.port, "/watch/%s/%d/?wait=%s" % (a.prefix, i, a.wait)))
            s.setblocking(False)
        except OSError:
            st["open_errors"] += 1
            return False
        sel.register(s, selectors.EVENT_READ)
        conns[s] = [i, Response(), None]   # index, parser, status of the reply being read
        st["opened"] += 1
        return True

    def drop(s):
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()
        conns.pop(s, None)

    parent = os.getppid()
    retry = []    # (time, i): reopened after a 503 or a close
    for i in range(a.count):
        if stopping[0]:
            break
        if not open_one(i):
            retry.append((time.monotonic() + 1, i))
    while not stopping[0] and os.getppid() == parent:
        try:
            events = sel.select(0.2)
        except InterruptedError:
            continue
        for key, _ in events:
            s = key.fileobj
            c = conns[s]
            i, parser = c[0], c[1]
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                st["closed_by_server"] += 1
                drop(s)
                retry.append((time.monotonic() + 0.1, i))
                continue
            for item in parser.feed(data):
                if item[0] == "head":
                    c[2] = item[1]
                    if c[2] == 503:
                        st["refused"] += 1
                    elif c[2] != 200:
                        st["other_status"] += 1
                elif item[0] == "end":
                    st["replies"] += 1
                    if c[2] == 200:   # the wait ran out (or a change): ask again
                        try:
                            s.setblocking(True)
                            s.sendall(request_bytes(host, a.port, "/watch/%s/%d/?wait=%s"
                                                    % (a.prefix, i, a.wait)))
                            s.setblocking(False)
                        except OSError:
                            drop(s)
                            retry.append((time.monotonic() + 0.1, i))
                    else:
                        drop(s)
                        retry.append((time.monotonic() + 1, i))
        now = time.monotonic()
        due = [r for r in retry if r[0] <= now]
        retry = [r for r in retry if r[0] > now]
        for _, i in due:
            if not open_one(i):
                retry.append((now + 1, i))
    st["open_at_end"] = len(conns)
    for s in list(conns):
        drop(s)
    if a.stats:
        with open(a.stats, "w") as f:
            f.write(json.dumps(st) + "\n")
    return 0


# ---------------------------------------------------------------- the node's open-watcher gauge

def open_watchers(url):
    """Value of the node's gauge of open watchers (the first unlabelled metric named like
    kvs_watch*open* or kvs_*watchers), or None if it has none."""
    with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=10) as r:
        text = r.read().decode()
    for line in text.splitlines():
        p = line.split()
        if len(p) != 2 or line.startswith("#") or "{" in p[0]:
            continue
        name = p[0]
        if name.startswith("kvs_") and "watch" in name and \
                ("open" in name or name.endswith("watchers")) and not name.endswith("_total"):
            return float(p[1])
    return None


def cmd_waitopen(argv):
    ap = argparse.ArgumentParser(prog="watch.py waitopen")
    ap.add_argument("--url", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    while time.monotonic() - t0 < a.timeout:
        v = open_watchers(a.url)
        if v is None:
            time.sleep(2)
            print("%.1f" % (time.monotonic() - t0))
            return 2
        if int(v) == a.count:
            print("%.1f" % (time.monotonic() - t0))
            return 0
        time.sleep(0.05)
    print("%.1f" % (time.monotonic() - t0))
    print("open watchers: %s, expected %d" % (open_watchers(a.url), a.count), file=sys.stderr)
    return 1


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    c, args = sys.argv[1], sys.argv[2:]
    if c == "latency":
        return cmd_latency(args)
    if c == "hold":
        return cmd_hold(args)
    if c == "waitopen":
        return cmd_waitopen(args)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
