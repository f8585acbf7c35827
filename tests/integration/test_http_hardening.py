"""HTTP hardening (src/http/): ambiguous framing refused and the connection
closed, replies that say "Connection: close" really close, requests civetweb
used to drop silently (OPTIONS *, absolute-form) get a JSON answer, and
connections that send nothing or drip a byte a second from one address do
not starve clients on another address (finding M4).

Every exchange uses a raw socket with a timeout; "closed" means the server
ended the connection: recv() returned b'' before a deadline.
"""

import http.client
import io
import json
import math
import selectors
import socket
import threading
import time

import pytest

from conftest import assert_json_error, wait_until

DEADLINE = 5.0  # seconds for any single exchange in the framing tests

# socket.IP_BIND_ADDRESS_NO_PORT (Linux 24): the source port is picked at
# connect() time, so hundreds of reconnects from one address cannot run out
# of bind()-time ports.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def measured(text):
    print(f"MEASURED {text}", flush=True)


# ---------------------------------------------------------------- helpers

class Reply:
    """One parsed response and whether the server then closed the connection."""

    def __init__(self, status, headers, body, closed, raw):
        self.status = status
        self.headers = headers
        self.body = body
        self.closed = closed
        self.raw = raw

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Reply {self.status} closed={self.closed} {self.raw[:300]!r}>"


def parse_reply(raw):
    """The first response in raw; (status, headers, body) or None."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        return None
    msg = http.client.parse_headers(io.BytesIO(b"\r\n".join(lines[1:]) + b"\r\n\r\n"))
    n = int(msg.get("Content-Length", "0"))
    return int(parts[1]), msg, rest[:n]


def exchange(port, data, deadline=DEADLINE):
    """Sends data on a fresh connection, then reads until the server closes it
    or the deadline passes.  Returns Reply (status None when nothing parsed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=deadline)
    raw, closed = b"", False
    end = time.monotonic() + deadline
    try:
        s.sendall(data)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            raw += chunk
    finally:
        s.close()
    parsed = parse_reply(raw)
    if parsed is None:
        return Reply(None, None, b"", closed, raw)
    return Reply(*parsed, closed, raw)


def request(port, first_line, headers=(), body=b""):
    """Raw request bytes: first_line, Host, the given (name, value) pairs in order."""
    out = first_line.encode("latin-1") + b"\r\n" + f"Host: 127.0.0.1:{port}\r\n".encode()
    for k, v in headers:
        out += f"{k}: {v}\r\n".encode("latin-1")
    return out + b"\r\n" + body


def assert_refused_and_closed(r, statuses):
    assert r.status is not None, f"no response: {r!r}"
    assert_json_error(_AsResponse(r), statuses=statuses)
    assert r.closed, f"connection left open after {r.status}: {r!r}"


class _AsResponse:
    """Adapter so conftest.assert_json_error accepts a Reply."""

    def __init__(self, r):
        self.status = r.status
        self.headers = r.headers
        self.body = r.body


@pytest.fixture(scope="module")
def hnode(module_factory):
    return module_factory.start("h1")


@pytest.fixture
def live(hnode):
    """The shared node; afterwards asserts it still serves and stored nothing
    under framing/ (a refused request must not reach a handler)."""
    yield hnode
    assert hnode.returncode() is None, "node died"
    assert hnode.get("/health", timeout=5).status_code == 200
    r = hnode.get("/kv/framing/", timeout=5)
    assert r.status_code == 200 and r.json()["keys"] == [], r.text


# ------------------------------------------------------------ framing

def test_two_equal_content_lengths_refused(live):
    r = exchange(live.port, request(live.port, "PUT /kv/framing/a HTTP/1.1",
                                    [("Content-Length", "1"), ("Content-Length", "1")], b"1"))
    assert_refused_and_closed(r, [400])
    assert "Content-Length" in r.json()["error"]


def test_two_different_content_lengths_refused(live):
    r = exchange(live.port, request(live.port, "PUT /kv/framing/a HTTP/1.1",
                                    [("Content-Length", "1"), ("Content-Length", "2")], b"12"))
    assert_refused_and_closed(r, [400])


@pytest.mark.parametrize("value", ["1e3", "+1", "1, 1", "-1", "0x1", "1.0", " ", "abc",
                                   "1 1", "12345678901234567890"])
def test_malformed_content_length_refused(live, value):
    r = exchange(live.port, request(live.port, "PUT /kv/framing/a HTTP/1.1",
                                    [("Content-Length", value)], b"1"))
    assert_refused_and_closed(r, [400])


def test_content_length_with_transfer_encoding_refused(live):
    r = exchange(live.port, request(live.port, "PUT /kv/framing/a HTTP/1.1",
                                    [("Content-Length", "1"), ("Transfer-Encoding", "chunked")],
                                    b"1\r\n1\r\n0\r\n\r\n"))
    assert_refused_and_closed(r, [400])


def test_transfer_encoding_then_content_length_refused(live):
    r = exchange(live.port, request(live.port, "PUT /kv/framing/a HTTP/1.1",
                                    [("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
                                    b"1\r\n1\r\n0\r\n\r\n"))
    assert_refused_and_closed(r, [400])


@pytest.mark.parametrize("value", ["gzip", "identity", "gzip, chunked", "chunked, chunked",
                                   "chunked;x=1", "xchunked"])
def test_transfer_encoding_other_than_chunked_refused(live, value):
    r = exchange(live.port, request(live.port, "PUT /kv/framing/a HTTP/1.1",
                                    [("Transfer-Encoding", value)], b"0\r\n\r\n"))
    assert_refused_and_closed(r, [400, 501])


def test_two_transfer_encodings_refused(live):
    r = exchange(live.port, request(live.port, "PUT /kv/framing/a HTTP/1.1",
                                    [("Transfer-Encoding", "chunked"),
                                     ("Transfer-Encoding", "chunked")], b"0\r\n\r\n"))
    assert_refused_and_closed(r, [400, 501])


def test_chunked_alone_still_accepted(live):
    r = exchange(live.port, request(live.port, "PUT /kv/framing-ok/c HTTP/1.1",
                                    [("Transfer-Encoding", "chunked"), ("Connection", "close")],
                                    b"2\r\n42\r\n0\r\n\r\n"))
    assert r.status == 200, r
    assert live.get_json("framing-ok/c") == 42


@pytest.mark.parametrize("count", [64, 70, 200])
def test_too_many_headers_refused(live, count):
    """civetweb keeps 64 headers and drops the rest unseen: 64 kept means the
    request may have been cut, so it is refused (63 is the most allowed)."""
    extra = [(f"X-H{i}", "v") for i in range(count - 1)]  # + Host
    r = exchange(live.port, request(live.port, "GET /health HTTP/1.1", extra))
    assert_refused_and_closed(r, [431])


def test_63_headers_accepted(live):
    extra = [(f"X-H{i}", "v") for i in range(61)] + [("Connection", "close")]  # + Host = 63
    r = exchange(live.port, request(live.port, "GET /health HTTP/1.1", extra))
    assert r.status == 200, r


def test_refused_request_is_not_followed_on_the_same_connection(live):
    """A pipelined second request after a refused one is never answered: the
    connection is closed right after the error."""
    first = request(live.port, "PUT /kv/framing/a HTTP/1.1",
                    [("Content-Length", "1"), ("Content-Length", "1")], b"1")
    second = request(live.port, "GET /health HTTP/1.1")
    r = exchange(live.port, first + second)
    assert_refused_and_closed(r, [400])
    assert r.raw.count(b"HTTP/1.1 ") == 1, r.raw


@pytest.mark.parametrize("line", [b" y", b"\ty", b":y", b"\x80y", b"\x01y"])
def test_header_line_civetweb_would_stop_at_refused(live, line):
    """civetweb stops parsing headers, without an error, at a line that
    cannot start a header (folding, ':', a high or control byte) and drops
    every header after it: here the Content-Length, so the body would be
    read as a second, smuggled request.  Refused and closed instead."""
    smuggled = b"GET /kv/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = (b"PUT /kv/framing/fold HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n" +
           f"Content-Length: {len(smuggled)}\r\n\r\n".encode() + smuggled)
    r = exchange(live.port, raw)
    assert_refused_and_closed(r, [400])
    assert r.raw.count(b"HTTP/1.1 ") == 1, r.raw
    assert live.get("/kv/framing/fold").status_code == 404


def test_bare_lf_line_ends_still_accepted(live):
    r = exchange(live.port, b"PUT /kv/framing-ok/lf HTTP/1.1\nHost: x\nContent-Length: 2\n"
                            b"Connection: close\n\n42")
    assert r.status == 200, r
    assert live.get_json("framing-ok/lf") == 42


# ------------------------------------------------------ Connection: close

def test_connection_close_request_closes(live):
    r = exchange(live.port, request(live.port, "GET /health HTTP/1.1", [("Connection", "close")]))
    assert r.status == 200, r
    assert r.closed, r


def test_path_too_long_closes(live):
    r = exchange(live.port, request(live.port, "GET /kv/" + "a" * 9000 + " HTTP/1.1"))
    assert_refused_and_closed(r, [400])
    assert r.headers.get("Connection", "").lower() == "close"


def test_keep_alive_still_kept_for_normal_requests(live):
    """Control: without Connection: close a normal request leaves the
    connection open, and a second request on it is served."""
    s = socket.create_connection(("127.0.0.1", live.port), timeout=DEADLINE)
    try:
        for _ in range(2):
            s.sendall(request(live.port, "GET /health HTTP/1.1"))
            raw = b""
            while parse_reply(raw) is None or len(parse_reply(raw)[2]) < \
                    int(parse_reply(raw)[1].get("Content-Length", "0")):
                chunk = s.recv(65536)
                assert chunk, f"closed after {raw!r}"
                raw += chunk
            assert parse_reply(raw)[0] == 200, raw
    finally:
        s.close()


# ----------------------------------------------- OPTIONS * and absolute-form

def test_options_asterisk_answered(live):
    r = exchange(live.port, request(live.port, "OPTIONS * HTTP/1.1"))
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("application/json")
    allow = [m.strip() for m in r.headers["Allow"].split(",")]
    assert {"GET", "HEAD", "PUT", "DELETE", "POST"} <= set(allow), allow
    assert r.json()["allow"] == allow
    assert r.closed, r


@pytest.mark.parametrize("target", ["http://host/kv/framing/a", "http://127.0.0.1:{port}/health",
                                    "https://127.0.0.1:{port}/kv/framing/a"])
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_absolute_form_answered(live, target, method):
    """Absolute-form targets are for proxies; kvs is not one: 400 JSON."""
    target = target.format(port=live.port)
    hdrs = [("Content-Length", "1")] if method == "PUT" else []
    r = exchange(live.port, request(live.port, f"{method} {target} HTTP/1.1", hdrs,
                                    b"1" if method == "PUT" else b""))
    assert_refused_and_closed(r, [400])
    assert "absolute" in r.json()["error"]


def test_options_on_a_resource_still_answered(live):
    r = exchange(live.port, request(live.port, "OPTIONS /kv/x HTTP/1.1", [("Connection", "close")]))
    assert r.status is not None, r
    assert r.closed


# ------------------------------------------------ connection exhaustion (M4)

class Flood:
    """count connections from src to the node that stay silent or drip one
    byte a second (of a request line that never ends), each reopened as soon
    as the server closes it.  Runs on one thread with a selector; stop()
    closes every socket it opened."""

    def __init__(self, port, count, mode, src="127.0.0.2"):
        assert mode in ("silent", "drip")
        self.port, self.count, self.mode, self.src = port, count, mode, src
        self.sel = selectors.DefaultSelector()
        self.socks = {}  # socket -> time of its next drip byte
        self.opened = self.closed_by_server = self.open_errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flood", daemon=True)
        self.error = None

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        for s in list(self.socks):
            self._drop(s)

    @property
    def open(self):
        return len(self.socks)

    def _open_one(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((self.src, 0))
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
            self.sel.register(s, selectors.EVENT_READ)
        except OSError:
            s.close()
            self.open_errors += 1
            return
        self.socks[s] = 0.0  # 0: nothing sent yet
        self.opened += 1

    def _drop(self, s):
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()
        self.socks.pop(s, None)

    def _run(self):
        try:
            while not self._stop.is_set():
                while len(self.socks) < self.count and not self._stop.is_set():
                    before = self.open_errors
                    self._open_one()
                    if self.open_errors > before:
                        break  # retried on the next round
                for key, _ in self.sel.select(0.05):
                    s = key.fileobj
                    try:
                        data = s.recv(4096)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        self.closed_by_server += 1
                        self._drop(s)
                if self.mode == "drip":
                    now = time.monotonic()
                    for s, due in list(self.socks.items()):
                        if now < due:
                            continue
                        try:
                            s.send(b"GET /" if due == 0 else b"a")
                            self.socks[s] = now + 1.0
                        except (BlockingIOError, InterruptedError):
                            pass
                        except OSError:
                            pass  # not connected yet, or reset: the read side notices
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            for s in list(self.socks):
                self._drop(s)


def timed_health(port, timeout):
    """GET /health on a fresh connection from 127.0.0.1; (status or error, seconds)."""
    t = time.monotonic()
    try:
        r = exchange(port, request(port, "GET /health HTTP/1.1", [("Connection", "close")]),
                     deadline=timeout)
        status = r.status if r.status is not None else "no reply"
    except OSError as e:
        status = type(e).__name__
    return status, time.monotonic() - t


def p99(values):
    s = sorted(values)
    return s[max(0, math.ceil(0.99 * len(s)) - 1)]


@pytest.mark.timeout_s(60)
@pytest.mark.parametrize("mode,window", [("drip", 8.0), ("silent", 20.0)])
def test_flood_from_one_address_does_not_starve_another(node_factory, mode, window):
    """300 connections from 127.0.0.2 that send nothing (or a byte a second),
    reopened whenever the server closes them, with the default http_threads
    (128) and timeouts: GET /health from 127.0.0.1 on fresh connections is
    answered within 1 s (p99).  At least 50 requests, sent over at least
    window seconds: the silent window covers the moment (about
    http_request_timeout_ms after they connect) the kernel hands the
    deferred silent connections to the server all at once."""
    node = node_factory.start("n1")
    flood = Flood(node.port, 300, mode).start()
    results = []
    try:
        wait_until(lambda: flood.open >= 300 or flood.error, timeout=10,
                   msg="300 flood connections open")
        assert flood.error is None, flood.error
        start = time.monotonic()
        give_up = start + 40.0  # bounds the test even if every request is slow
        while (len(results) < 50 or time.monotonic() - start < window) and \
                time.monotonic() < give_up:
            results.append(timed_health(node.port, timeout=10.0))
            time.sleep(0.1)  # pacing between probes, not a wait for a state
    finally:
        flood.stop()
    lat = [secs for _, secs in results]
    bad = [(st, round(secs, 3)) for st, secs in results if st != 200]
    measured(f"flood {mode} x300 from 127.0.0.2, http_threads 128: {len(results)} GET /health "
             f"from 127.0.0.1, p50 {sorted(lat)[len(lat) // 2]:.3f}s p99 {p99(lat):.3f}s "
             f"max {max(lat):.3f}s; flood opened {flood.opened}, closed by server "
             f"{flood.closed_by_server}; failures {bad}")
    assert flood.error is None, flood.error
    assert len(results) >= 50, results
    assert not bad, bad
    assert p99(lat) < 1.0, sorted(lat)[-5:]
    assert node.get("/health", timeout=5).status_code == 200


@pytest.mark.timeout_s(30)
def test_idle_keep_alive_connections_kept_without_pressure(node):
    """Without pressure on the worker pool (a few connections), idle
    keep-alive connections, like those between peers, are left alone past
    the reaper's grace: a second request on each is served."""
    socks = []
    try:
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", node.port), timeout=DEADLINE)
            socks.append(s)

        def ask_all():
            for s in socks:
                s.sendall(request(node.port, "GET /health HTTP/1.1"))
                raw = b""
                while True:
                    p = parse_reply(raw)
                    if p is not None and len(p[2]) >= int(p[1].get("Content-Length", "0")):
                        break
                    chunk = s.recv(65536)
                    assert chunk, "closed by the server"
                    raw += chunk
                assert p[0] == 200, raw
        ask_all()
        time.sleep(1.5)  # idle longer than the grace (0.25 s), shorter than http_idle_timeout_ms
        ask_all()
    finally:
        for s in socks:
            s.close()
