"""SPEC section 3, data API rows: PUT, GET, HEAD, DELETE on single keys."""

import itertools
import json

import pytest

from conftest import UUID4_RE, assert_json_error, now_ms

_seq = itertools.count()


def fresh_key(stem="k"):
    return f"api/{stem}{next(_seq)}"


@pytest.fixture(scope="module")
def kv(module_factory):
    """One node shared by this module; every test uses its own keys."""
    return module_factory.start("kv")


def check_put_reply(r):
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    assert r.headers.get("Content-Type", "").startswith("application/json")
    doc = r.json()
    assert set(doc) == {"uuid", "timestamp"}, doc
    assert isinstance(doc["uuid"], str) and UUID4_RE.match(doc["uuid"]), doc
    ts = doc["timestamp"]
    assert isinstance(ts, int) and not isinstance(ts, bool), doc
    return doc


def run_writers(write, writers, per_writer):
    """Runs `writers` threads, each with its own session, calling
    write(session, t, i) for i in range(per_writer); fails on any non-200
    answer or exception."""
    import threading

    import requests

    errors = []

    def writer(t):
        s = requests.Session()
        try:
            for i in range(per_writer):
                r = write(s, t, i)
                if r.status_code != 200:
                    errors.append((r.status_code, r.text))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
        finally:
            s.close()

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(writers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors[:5]


def test_put_returns_uuid_and_timestamp(kv):
    before = now_ms()
    doc = check_put_reply(kv.put("/kv/" + fresh_key(), b'{"a": 1}'))
    after = now_ms()
    # same machine, same clock: the timestamp is "now" in milliseconds
    assert before - 2000 <= doc["timestamp"] <= after + 2000, (before, doc, after)


def test_put_uuids_are_unique(kv):
    uuids = {check_put_reply(kv.put("/kv/" + fresh_key(), b"1"))["uuid"] for _ in range(50)}
    assert len(uuids) == 50


VALUES = [
    pytest.param(b'{"a": 1}', id="object"),
    pytest.param(b'{"b":1,"a":2}', id="key-order-kept"),
    pytest.param(b'  \t\r\n{ "a" :\n\t[1 ,2,  3 ] ,"b":{ } }  \n\r\t ', id="odd-whitespace"),
    pytest.param('{"name":"Zoë Ωμέγα 日本語 🎉"}'.encode("utf-8"), id="unicode-raw"),
    pytest.param(b'"\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/"', id="unicode-escapes"),
    pytest.param(b"1.0e+2", id="number-exp"),
    pytest.param(b"-0", id="minus-zero"),
    pytest.param(b"-12.50E-003", id="number-frac-exp"),
    pytest.param(b"123456789012345678901234567890", id="big-integer"),
    pytest.param(b"[[[]],[{}],[[1,[2,[3,[4,[5]]]]]]]", id="nested-arrays"),
    pytest.param(b'{"a":{"b":{"c":[null,true,false,-1.5E-3,"x"]}}}', id="nested-objects"),
    pytest.param(b'"str"', id="top-string"),
    pytest.param(b'""', id="empty-string"),
    pytest.param(b"42", id="top-int"),
    pytest.param(b"true", id="top-true"),
    pytest.param(b"false", id="top-false"),
    pytest.param(b"null", id="top-null"),
    pytest.param(b"{}", id="empty-object"),
    pytest.param(b"[]", id="empty-array"),
    pytest.param(b" 7 ", id="scalar-with-spaces"),
    pytest.param(('"' + "x" * 65536 + '"').encode(), id="64KiB-string"),
    pytest.param(json.dumps([{"i": i, "s": "v" * (i % 13)} for i in range(2000)]).encode(),
                 id="big-array"),
]


@pytest.mark.parametrize("body", VALUES)
def test_get_returns_exact_bytes(kv, body):
    key = fresh_key("v")
    doc = check_put_reply(kv.put("/kv/" + key, body))
    r = kv.get("/kv/" + key)
    assert r.status_code == 200, r.text
    assert r.content == body, "GET must return the stored bytes exactly"
    assert r.headers.get("Content-Type", "").split(";")[0].strip() == "application/json"
    assert r.headers.get("ETag") == f'"{doc["uuid"]}"'
    assert r.headers.get("X-Kvs-Timestamp") == str(doc["timestamp"])
    if "Content-Length" in r.headers:
        assert int(r.headers["Content-Length"]) == len(body)


@pytest.mark.parametrize("body", [b'{"a": [1, 2]}', b"null", b'"s"'], ids=["obj", "null", "str"])
def test_head_like_get_without_body(kv, body):
    key = fresh_key("h")
    doc = check_put_reply(kv.put("/kv/" + key, body))
    r = kv.head("/kv/" + key)
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers.get("Content-Type", "").split(";")[0].strip() == "application/json"
    assert r.headers.get("ETag") == f'"{doc["uuid"]}"'
    assert r.headers.get("X-Kvs-Timestamp") == str(doc["timestamp"])
    if "Content-Length" in r.headers:
        assert int(r.headers["Content-Length"]) == len(body)
    # the connection stays usable after a HEAD (no stray body bytes on it)
    assert kv.get("/kv/" + key).content == body


def test_head_absent_is_404_without_body(kv):
    r = kv.head("/kv/" + fresh_key("absent"))
    assert r.status_code == 404
    assert r.content == b""
    assert kv.get("/health").status_code == 200


def test_overwrite_gets_new_uuid_and_larger_timestamp(kv):
    key = fresh_key("o")
    d1 = check_put_reply(kv.put("/kv/" + key, b'"one"'))
    d2 = check_put_reply(kv.put("/kv/" + key, b'"two"'))
    assert d2["uuid"] != d1["uuid"]
    assert d2["timestamp"] > d1["timestamp"]
    r = kv.get("/kv/" + key)
    assert r.content == b'"two"'
    assert r.headers["ETag"] == f'"{d2["uuid"]}"'
    assert r.headers["X-Kvs-Timestamp"] == str(d2["timestamp"])


def test_rapid_overwrites_strictly_increase(kv):
    # many writes within the same millisecond must still get increasing timestamps
    key = fresh_key("rapid")
    stamps, uuids = [], set()
    for i in range(100):
        d = check_put_reply(kv.put("/kv/" + key, str(i)))
        stamps.append(d["timestamp"])
        uuids.add(d["uuid"])
    assert all(b > a for a, b in zip(stamps, stamps[1:])), stamps
    assert len(uuids) == 100
    assert kv.get("/kv/" + key).content == b"99"


def test_delete_then_get_404(kv):
    key = fresh_key("d")
    check_put_reply(kv.put("/kv/" + key, b"1"))
    r = kv.delete("/kv/" + key)
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_json_error(kv.get("/kv/" + key), 404)
    assert kv.head("/kv/" + key).status_code == 404


def test_delete_absent_404(kv):
    assert_json_error(kv.delete("/kv/" + fresh_key("never")), 404)


def test_delete_twice_second_404(kv):
    key = fresh_key("dd")
    check_put_reply(kv.put("/kv/" + key, b"1"))
    assert kv.delete("/kv/" + key).status_code == 204
    assert_json_error(kv.delete("/kv/" + key), 404)


def test_put_after_delete(kv):
    key = fresh_key("pad")
    d1 = check_put_reply(kv.put("/kv/" + key, b'"old"'))
    assert kv.delete("/kv/" + key).status_code == 204
    d2 = check_put_reply(kv.put("/kv/" + key, b'"new"'))
    assert d2["uuid"] != d1["uuid"]
    assert d2["timestamp"] > d1["timestamp"]
    r = kv.get("/kv/" + key)
    assert r.status_code == 200 and r.content == b'"new"'
    assert r.headers["ETag"] == f'"{d2["uuid"]}"'


def test_value_and_prefix_coexist(kv):
    base = fresh_key("vp")
    da = check_put_reply(kv.put(f"/kv/{base}", b'"parent"'))
    db = check_put_reply(kv.put(f"/kv/{base}/b", b'"child"'))
    dc = check_put_reply(kv.put(f"/kv/{base}/b/c", b'"grandchild"'))
    assert kv.get(f"/kv/{base}").content == b'"parent"'
    assert kv.get(f"/kv/{base}/b").content == b'"child"'
    assert kv.get(f"/kv/{base}/b/c").content == b'"grandchild"'
    assert len({da["uuid"], db["uuid"], dc["uuid"]}) == 3
    listing = kv.get(f"/kv/{base}/").json()
    assert listing["keys"] == [f"{base}/b", f"{base}/b/c"]
    # deleting the parent value leaves the children
    assert kv.delete(f"/kv/{base}").status_code == 204
    assert kv.get(f"/kv/{base}").status_code == 404
    assert kv.get(f"/kv/{base}/b").content == b'"child"'
    assert kv.get(f"/kv/{base}/").json()["keys"] == [f"{base}/b", f"{base}/b/c"]
    # and deleting a child leaves the others
    assert kv.delete(f"/kv/{base}/b").status_code == 204
    assert kv.get(f"/kv/{base}/b/c").content == b'"grandchild"'


def test_put_without_content_type(kv):
    key = fresh_key("noct")
    r = kv.put("/kv/" + key, b"[1]", headers={"Content-Type": None})
    check_put_reply(r)
    r = kv.put("/kv/" + key, b"[2]", headers={"Content-Type": "application/json"})
    check_put_reply(r)
    assert kv.get("/kv/" + key).content == b"[2]"


def test_percent_decoded_once(kv):
    stem = fresh_key("pct")
    # %41 is "A": same key either way
    d = check_put_reply(kv.put(f"/kv/{stem}/%41bc", b"1"))
    r = kv.get(f"/kv/{stem}/Abc")
    assert r.status_code == 200 and r.headers["ETag"] == f'"{d["uuid"]}"'
    # %2541 decodes once to the literal "%41", a different key from "A"
    check_put_reply(kv.put(f"/kv/{stem}/x%2541", b"2"))
    assert kv.get(f"/kv/{stem}/xA").status_code == 404
    assert kv.get(f"/kv/{stem}/x%2541").content == b"2"
    keys = kv.get(f"/kv/{stem}/").json()["keys"]
    assert keys == [f"{stem}/Abc", f"{stem}/x%41"]


def test_space_and_unicode_in_keys(kv):
    stem = fresh_key("uni")
    check_put_reply(kv.put(f"/kv/{stem}/hello%20world", b'"sp"'))
    check_put_reply(kv.put(f"/kv/{stem}/caf%C3%A9", b'"cafe"'))
    check_put_reply(kv.put(f"/kv/{stem}/%E6%97%A5%E6%9C%AC", b'"jp"'))
    assert kv.get(f"/kv/{stem}/hello%20world").content == b'"sp"'
    assert kv.get(f"/kv/{stem}/caf%C3%A9").content == b'"cafe"'
    assert kv.get(f"/kv/{stem}/%E6%97%A5%E6%9C%AC").content == b'"jp"'
    keys = kv.get(f"/kv/{stem}/").json()["keys"]
    assert sorted(keys) == sorted([f"{stem}/hello world", f"{stem}/café", f"{stem}/日本"])


def test_get_ignores_query_string(kv):
    key = fresh_key("q")
    check_put_reply(kv.put("/kv/" + key, b"5"))
    r = kv.get("/kv/" + key, params={"foo": "bar"})
    assert r.status_code == 200 and r.content == b"5"


def test_keepalive_many_requests_one_session(kv):
    key = fresh_key("ka")
    for i in range(200):
        check_put_reply(kv.put("/kv/" + key, str(i)))
        assert kv.get("/kv/" + key).content == str(i).encode()


def test_concurrent_writers_same_key(kv):
    """Writes racing on one key: every one acknowledged with a distinct timestamp,
    and the value left is the one with the largest timestamp."""
    key = fresh_key("race")
    results = []

    def write(s, t, i):
        body = f'{{"t":{t},"i":{i}}}'
        r = s.put(kv.url("/kv/" + key), data=body, timeout=10)
        if r.status_code == 200:
            d = r.json()
            results.append((d["timestamp"], d["uuid"], body))
        return r

    run_writers(write, writers=8, per_writer=40)
    assert len(results) == 320
    stamps = [r[0] for r in results]
    assert len(set(stamps)) == len(stamps), "each write replaces a version: timestamps distinct"
    assert len({r[1] for r in results}) == 320
    ts, uuid, body = max(results)
    r = kv.get("/kv/" + key)
    assert r.headers["ETag"] == f'"{uuid}"'
    assert r.headers["X-Kvs-Timestamp"] == str(ts)
    assert r.content == body.encode()


def test_concurrent_writers_many_keys(kv):
    stem = fresh_key("many")
    run_writers(lambda s, t, i: s.put(kv.url(f"/kv/{stem}/t{t}/k{i:02d}"), data=str(i), timeout=10),
                writers=8, per_writer=50)
    keys = kv.list_all(prefix=f"{stem}/")
    assert keys == sorted(f"{stem}/t{t}/k{i:02d}" for t in range(8) for i in range(50))
