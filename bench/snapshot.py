#!/usr/bin/python3
"""Snapshot measurements for bench/run.sh (issue 22; stdlib only).

    snapshot.py take --port PORT --pid PID [--file FILE] [--out FILE]
        One GET /admin/snapshot from 127.0.0.1:PORT, read in 64 KiB pieces (written to
        --file, else dropped), while a sampler reads the node's VmRSS (/proc/PID/status)
        every 20 ms.  Prints one JSON line: bytes, seconds, mb_s, records (from the
        trailer), rss_before_mb, rss_peak_mb.

    snapshot.py loop --port PORT --pid PID --stop FILE [--out FILE]
        Snapshots back to back (data dropped) until FILE exists; the last one is finished.
        Prints one JSON line: snapshots, bytes, seconds, mb_s, rss_before_mb, rss_peak_mb.
"""
import argparse
import http.client
import json
import os
import struct
import threading
import time


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class Sampler(threading.Thread):
    """The peak VmRSS of pid while it runs."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, rss_mb(pid), threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.02)


def snapshot(port, sink=None):
    """One snapshot: (bytes, seconds, records)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.monotonic()
    conn.request("GET", "/admin/snapshot")
    r = conn.getresponse()
    if r.status != 200:
        raise SystemExit(f"snapshot: HTTP {r.status}: {r.read()[:200]!r}")
    total, tail = 0, b""
    while True:
        chunk = r.read(65536)
        if not chunk:
            break
        total += len(chunk)
        tail = (tail + chunk)[-41:]
        if sink:
            sink.write(chunk)
    secs = time.monotonic() - t0
    conn.close()
    records = struct.unpack(">Q", tail[1:9])[0] if len(tail) == 41 and tail[:1] == b"E" else -1
    return total, secs, records


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["take", "loop"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--file")
    ap.add_argument("--stop")
    ap.add_argument("--out")
    a = ap.parse_args()

    before = rss_mb(a.pid)
    s = Sampler(a.pid)
    s.start()
    if a.cmd == "take":
        sink = open(a.file, "wb") if a.file else None
        total, secs, records = snapshot(a.port, sink)
        if sink:
            sink.close()
        res = dict(bytes=total, seconds=round(secs, 3), records=records)
    else:
        n, total, t0 = 0, 0, time.monotonic()
        while n == 0 or not os.path.exists(a.stop):
            b, _, _ = snapshot(a.port)
            n, total = n + 1, total + b
        secs = time.monotonic() - t0
        res = dict(snapshots=n, bytes=total, seconds=round(secs, 3))
    s.stop.set()
    s.join()
    res.update(mb_s=round(total / 1e6 / max(res["seconds"], 1e-9), 1),
               rss_before_mb=round(before, 1), rss_peak_mb=round(s.peak, 1))
    line = json.dumps(res)
    if a.out:
        with open(a.out, "w") as f:
            f.write(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
