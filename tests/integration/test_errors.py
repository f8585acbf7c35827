"""SPEC section 3, errors: every error is JSON {"error": "..."} with a fitting status,
and nothing a client sends crashes the node or changes its data."""

import errno
import http.client
import json
import socket
import time

import pytest

from conftest import assert_json_error, raw_request, snapshot


@pytest.fixture(scope="module")
def err_node(module_factory):
    """One node holding a few known values; every test checks they did not change."""
    n = module_factory.start("err")
    for k, v in [("keep/a", b'{"v": 1}'), ("keep/b", b'"two"'), ("x", b"3")]:
        assert n.put("/kv/" + k, v).status_code == 200
    return n


@pytest.fixture
def intact(err_node):
    """Yields the node; afterwards asserts it still serves and its data is unchanged."""
    before = snapshot(err_node)
    yield err_node
    assert err_node.returncode() is None, "node died"
    assert err_node.get("/health", timeout=5).status_code == 200
    assert snapshot(err_node) == before, "data changed"


# ---------------------------------------------------------------- bad paths

BAD_PATHS = [
    ("/kv/a//b", "empty segment"),
    ("/kv//a", "leading empty segment"),
    ("/kv/a//", "empty segment before slash"),
    ("/kv/./a", "dot segment"),
    ("/kv/a/./b", "inner dot"),
    ("/kv/a/.", "trailing dot"),
    ("/kv/../a", "dotdot"),
    ("/kv/a/../b", "inner dotdot"),
    ("/kv/a/..", "trailing dotdot"),
    ("/kv/%2e%2e/a", "encoded dotdot"),
    ("/kv/%2E/a", "encoded dot"),
    ("/kv/a%00b", "NUL"),
    ("/kv/a%2Fb", "encoded slash"),
    ("/kv/a%2fb", "encoded slash lower"),
    ("/kv/a%01b", "control 01"),
    ("/kv/a%0Ab", "control LF"),
    ("/kv/a%1Fb", "control 1F"),
    ("/kv/a%7Fb", "DEL"),
    ("/kv/a%zzb", "bad escape"),
    ("/kv/a%4", "truncated escape"),
    ("/kv/a%", "lone percent"),
    ("/kv/a%FFb", "invalid utf-8"),
    ("/kv/a%C3", "truncated utf-8"),
]


@pytest.mark.parametrize("path,why", BAD_PATHS, ids=[w for _, w in BAD_PATHS])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_bad_path_400(intact, method, path, why):
    body = b'"v"' if method == "PUT" else None
    r = raw_request(intact.port, method, path, body=body)
    if method == "PUT" and path.endswith("/"):
        assert_json_error(r, statuses=(400, 405))  # also a PUT to a listing form
    else:
        assert_json_error(r, 400)


@pytest.mark.parametrize("path", [b"/kv/a\x01b", b"/kv/a\x7fb", b"/kv/a\x1bb"],
                         ids=["raw-01", "raw-7f", "raw-esc"])
def test_raw_control_char_in_path_400(intact, path):
    r = raw_request(intact.port, "PUT", path, body=b"1")
    assert_json_error(r, 400)


def test_long_key_refused_not_crash(intact):
    r = raw_request(intact.port, "PUT", "/kv/" + "a" * 5000, body=b"1")
    assert r.status in (400, 414), r
    if r.status == 400:
        assert_json_error(r, 400)


# ---------------------------------------------------------------- bad bodies

BAD_BODIES = [
    (b"01", "leading zero"),
    (b"[01]", "leading zero in array"),
    (b"-01", "negative leading zero"),
    (b"01.5", "leading zero frac"),
    (b'"a\x01b"', "raw control char"),
    (b'"a\nb"', "raw newline in string"),
    (b'"a\tb"', "raw tab in string"),
    (b'"\xff"', "invalid utf-8 ff"),
    (b'"\xc3\x28"', "invalid utf-8 continuation"),
    (b'"\xc0\xaf"', "overlong utf-8"),
    (b'"\xed\xa0\x80"', "utf-8 surrogate"),
    (b'"\xe6\x97"', "truncated utf-8"),
    (b'{"a":1} x', "trailing garbage"),
    (b'{"a":1}{"b":2}', "two values"),
    (b"1 2", "two numbers"),
    (b"", "empty body"),
    (b"   \n", "whitespace only"),
    (b"NaN", "NaN"),
    (b"nan", "nan"),
    (b"Infinity", "Infinity"),
    (b"-Infinity", "-Infinity"),
    (b"[1,]", "trailing comma array"),
    (b'{"a":1,}', "trailing comma object"),
    (b"'s'", "single quotes"),
    (b"{a:1}", "unquoted key"),
    (b"1.", "dot without digits"),
    (b".5", "leading dot"),
    (b"+1", "plus sign"),
    (b"0x10", "hex"),
    (b"1e", "empty exponent"),
    (b"[1 2]", "missing comma"),
    (b'"unterminated', "unterminated string"),
    (b"tru", "truncated literal"),
    (b"True", "capitalised literal"),
    (b'"\\x41"', "bad escape"),
    (b'"\\u12"', "short unicode escape"),
    (b'{"a"}', "key without value"),
    (b"\x00", "NUL"),
    (b"[1]\x00", "trailing NUL"),
    (b"/* c */ 1", "comment"),
    (b"[" * 100000, "deep unclosed nesting"),
    (b"[" * 5000 + b"]" * 5000, "very deep nesting"),
]


@pytest.mark.parametrize("body,why", BAD_BODIES, ids=[w for _, w in BAD_BODIES])
def test_bad_json_400(intact, body, why):
    # on an existing key: the old value must stay
    r = intact.put("/kv/keep/a", body)
    assert_json_error(r, 400)
    # on a new key: nothing is created
    r = intact.put("/kv/new/bad", body)
    assert_json_error(r, 400)
    assert intact.get("/kv/new/bad").status_code == 404


# ---------------------------------------------------------------- 404

@pytest.mark.parametrize("method,path", [
    ("GET", "/nope"), ("GET", "/"), ("GET", "/kvx"), ("GET", "/kvx/a"), ("GET", "/kv/absent"),
    ("DELETE", "/kv/absent"), ("GET", "/kv/keep/a/absent"), ("PUT", "/unknown/route"),
])
def test_404_json(intact, method, path):
    body = b"1" if method == "PUT" else None
    r = raw_request(intact.port, method, path, body=body)
    assert_json_error(r, 404)


# ---------------------------------------------------------------- 405

@pytest.mark.parametrize("method,path", [
    ("POST", "/kv/x"), ("PATCH", "/kv/x"), ("POST", "/kv/"), ("DELETE", "/kv/"),
    ("PUT", "/health"), ("DELETE", "/health"), ("POST", "/metrics"), ("PUT", "/members/"),
])
def test_405_with_allow(intact, method, path):
    r = raw_request(intact.port, method, path, body=b"1")
    assert_json_error(r, 405)
    allow = r.headers.get("Allow")
    assert allow, "405 must carry an Allow header"
    allowed = {m.strip().upper() for m in allow.split(",")}
    assert method not in allowed, allow
    assert "GET" in allowed, allow


def test_405_allow_for_key_lists_write_methods(intact):
    r = raw_request(intact.port, "POST", "/kv/x", body=b"1")
    allowed = {m.strip().upper() for m in r.headers.get("Allow", "").split(",")}
    assert {"GET", "PUT", "DELETE"} <= allowed, allowed


def test_put_to_listing_form(intact):
    r = intact.put("/kv/keep/", b"1")
    assert_json_error(r, statuses=(400, 405))
    r = intact.put("/kv/", b"1")
    assert_json_error(r, statuses=(400, 405))


# ---------------------------------------------------------------- 411 / 413

def test_put_without_content_length_411(intact):
    r = raw_request(intact.port, "PUT", "/kv/nolen", body=b"", content_length=False)
    assert_json_error(r, 411)
    assert intact.get("/kv/nolen").status_code == 404


def test_chunked_put_ok_or_411(intact):
    body = b'{"chunked": true}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    r = raw_request(intact.port, "PUT", "/kv/chunked", body=chunked, content_length=False,
                    headers={"Transfer-Encoding": "chunked"})
    if r.status == 200:
        assert intact.get("/kv/chunked").content == body
        assert intact.delete("/kv/chunked").status_code == 204
    else:
        assert_json_error(r, 411)


@pytest.fixture(scope="module")
def small_node(module_factory):
    return module_factory.start("small", extra={"max_value_bytes": 1024})


def test_max_value_bytes_boundary(small_node):
    ok = b'"' + b"a" * 1022 + b'"'
    assert len(ok) == 1024
    r = small_node.put("/kv/big", ok)
    assert r.status_code == 200, r.text
    etag = r.headers.get("ETag") or r.json()["uuid"]
    too = b'"' + b"a" * 1023 + b'"'
    assert len(too) == 1025
    assert_json_error(small_node.put("/kv/big", too), 413)
    r = small_node.get("/kv/big")
    assert r.content == ok
    assert_json_error(small_node.put("/kv/big2", too), 413)
    assert small_node.get("/kv/big2").status_code == 404
    del etag


def test_huge_content_length_answered_promptly(small_node):
    s = socket.create_connection(("127.0.0.1", small_node.port), timeout=5)
    try:
        s.sendall(b"PUT /kv/huge HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n"
                  b"Connection: close\r\n\r\n")
        t0 = time.monotonic()
        resp = http.client.HTTPResponse(s, method="PUT")
        resp.begin()  # raises socket.timeout if the node waits for the body
        elapsed = time.monotonic() - t0
        body = resp.read()
    finally:
        s.close()
    assert resp.status == 413, (resp.status, body)
    assert elapsed < 3, elapsed
    assert json.loads(body).get("error")
    assert small_node.get("/health").status_code == 200
    assert small_node.get("/kv/huge").status_code == 404


def test_default_max_value_bytes_is_1mib(err_node):
    node = err_node
    ok = b'"' + b"b" * (1048576 - 2) + b'"'
    r = node.put("/kv/mib", ok)
    assert r.status_code == 200, r.text[:200]
    assert node.get("/kv/mib").content == ok
    assert_json_error(node.put("/kv/mib", ok + b" "), 413)
    assert node.get("/kv/mib").content == ok
    assert node.delete("/kv/mib").status_code == 204


# ---------------------------------------------------------------- read-only

def test_read_only_node(node_factory):
    n = node_factory.create("ro")
    n.start()
    assert n.put("/kv/pre", b'"before"').status_code == 200
    assert n.stop() == 0
    n.config["read_only"] = True
    n.start()
    h = n.health()
    assert h["mode"] == "read-only", h
    assert_json_error(n.put("/kv/pre", b'"after"'), 403)
    assert_json_error(n.put("/kv/other", b"1"), 403)
    assert_json_error(n.delete("/kv/pre"), 403)
    r = n.get("/kv/pre")
    assert r.status_code == 200 and r.content == b'"before"'
    assert n.get("/kv/").json()["keys"] == ["pre"]
    assert n.get("/kv/other").status_code == 404


# ---------------------------------------------------------------- junk on the wire

@pytest.mark.parametrize("data", [
    b"HELLO\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /kv/x HTTP/9.9\r\n\r\n",
    b"FOO /kv/x HTTP/1.1\r\nHost: x\r\n\r\n",
    b"PUT /kv/x HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"PUT /kv/x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"GET /kv/x HTTP/1.1\r\n" + b"X-Long: " + b"a" * 100000 + b"\r\n\r\n",
    b"\x00\x01\x02\x03" * 100,
], ids=["garbage", "no-path", "bad-version", "unknown-method", "negative-length",
        "non-numeric-length", "huge-header", "binary"])
def test_junk_does_not_crash(intact, data):
    s = socket.create_connection(("127.0.0.1", intact.port), timeout=5)
    try:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            pass
        except OSError as e:
            # the node may close before our shutdown(): ENOTCONN is that, not a failure
            if e.errno != errno.ENOTCONN:
                raise
    finally:
        s.close()
    # `intact` checks the node still serves with its data unchanged


def test_half_open_connection_does_not_block_others(intact):
    # a client that sends half a request and stalls must not stop others being served
    s = socket.create_connection(("127.0.0.1", intact.port), timeout=5)
    try:
        s.sendall(b"PUT /kv/stall HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12")
        for _ in range(5):
            assert intact.get("/kv/x", timeout=3).content == b"3"
    finally:
        s.close()
    assert intact.get("/kv/stall").status_code == 404
