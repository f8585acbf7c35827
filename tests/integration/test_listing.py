"""SPEC section 3, listing row: GET /kv/{prefix}/, /kv/, /kv with limit, after, values."""

import itertools
import json

import pytest

from conftest import assert_json_error

_seq = itertools.count()


@pytest.fixture(scope="module")
def kv(module_factory):
    return module_factory.start("ls")


def fresh_prefix():
    return f"list{next(_seq)}"


def put(n, key, body=b"1"):
    r = n.put("/kv/" + key, body)
    assert r.status_code == 200, f"PUT {key}: {r.status_code} {r.text}"
    return r.json()


def listing(n, path, **params):
    r = n.get(path, params=params or None)
    assert r.status_code == 200, f"GET {path} {params}: {r.status_code} {r.text}"
    assert r.headers.get("Content-Type", "").startswith("application/json")
    doc = r.json()
    assert {"prefix", "keys", "count", "next"} <= set(doc), doc
    assert doc["count"] == len(doc["keys"]), doc
    return doc


def bytewise(keys):
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def test_prefix_listing_shape(kv):
    p = fresh_prefix()
    put(kv, f"{p}/users/john/profile")
    doc = listing(kv, f"/kv/{p}/users/")
    assert doc == {"prefix": f"{p}/users/", "keys": [f"{p}/users/john/profile"],
                   "count": 1, "next": None}


def test_prefix_only_returns_keys_under_it(kv):
    p = fresh_prefix()
    for k in ["users", "users/a", "users/b/c", "usersx", "usersx/a", "user", "users0", "users-"]:
        put(kv, f"{p}/{k}")
    doc = listing(kv, f"/kv/{p}/users/")
    assert doc["keys"] == [f"{p}/users/a", f"{p}/users/b/c"]
    assert doc["count"] == 2 and doc["next"] is None
    # nested prefix
    assert listing(kv, f"/kv/{p}/users/b/")["keys"] == [f"{p}/users/b/c"]


def test_absent_prefix_is_empty_list(kv):
    doc = listing(kv, f"/kv/{fresh_prefix()}/nothing/here/")
    assert doc["keys"] == [] and doc["count"] == 0 and doc["next"] is None


def test_root_listing_three_forms(node):
    for path in ["/kv/", "/kv"]:
        assert listing(node, path) == {"prefix": "", "keys": [], "count": 0, "next": None}
    keys = ["b", "a/x", "a", "c/d/e", "z"]
    for k in keys:
        put(node, k)
    for path in ["/kv/", "/kv"]:
        doc = listing(node, path)
        assert doc["prefix"] == ""
        assert doc["keys"] == bytewise(keys)
        assert doc["count"] == len(keys) and doc["next"] is None


def test_sorted_bytewise(kv):
    p = fresh_prefix()
    names = ["b", "B", "a", "A", "0", "9", "_", "-", "~", "aa", "a-", "a0", "é", "z", "Z",
             "日本", "ab/c", "ab", "a%20b"]
    for name in names:
        put(kv, f"{p}/{name}")
    decoded = [f"{p}/{n.replace('%20', ' ')}" for n in names]
    doc = listing(kv, f"/kv/{p}/")
    assert doc["keys"] == bytewise(decoded)


def test_deleted_keys_absent(kv):
    p = fresh_prefix()
    for i in range(10):
        put(kv, f"{p}/k{i}")
    for i in (0, 3, 9):
        assert kv.delete(f"/kv/{p}/k{i}").status_code == 204
    doc = listing(kv, f"/kv/{p}/")
    assert doc["keys"] == [f"{p}/k{i}" for i in (1, 2, 4, 5, 6, 7, 8)]
    # and with values=true too
    doc = listing(kv, f"/kv/{p}/", values="true")
    assert [i["key"] for i in doc["items"]] == doc["keys"]


def test_pagination_walk(kv):
    p = fresh_prefix()
    expected = [f"{p}/k{i:04d}" for i in range(250)]
    for k in expected:
        put(kv, k)
    seen, after, pages = [], None, 0
    while True:
        params = {"limit": "100"}
        if after is not None:
            params["after"] = after
        doc = listing(kv, f"/kv/{p}/", **params)
        pages += 1
        assert doc["count"] <= 100
        if after is not None:
            assert all(k.encode() > after.encode() for k in doc["keys"]), "page starts after `after`"
        seen.extend(doc["keys"])
        if doc["next"] is None:
            break
        # next is the last key of this page (the `after` of the following one)
        assert doc["next"] == doc["keys"][-1], doc["next"]
        after = doc["next"]
        assert pages < 10
    assert seen == expected, "no key duplicated or missed across pages"
    assert pages == 3
    # explicit page contents
    d1 = listing(kv, f"/kv/{p}/", limit="100")
    assert d1["keys"] == expected[:100] and d1["next"] == expected[99]
    d3 = listing(kv, f"/kv/{p}/", limit="100", after=expected[199])
    assert d3["keys"] == expected[200:] and d3["count"] == 50 and d3["next"] is None


def test_pagination_exact_multiple(kv):
    p = fresh_prefix()
    keys = [f"{p}/k{i}" for i in range(10)]
    for k in keys:
        put(kv, k)
    d = listing(kv, f"/kv/{p}/", limit="10")
    assert d["keys"] == keys
    if d["next"] is not None:
        # allowed: next set because the page is full; the following page is then empty
        assert d["next"] == keys[-1]
        d2 = listing(kv, f"/kv/{p}/", limit="10", after=d["next"])
        assert d2["keys"] == [] and d2["next"] is None


def test_after_between_keys_and_beyond(kv):
    p = fresh_prefix()
    for k in ["a", "c", "e"]:
        put(kv, f"{p}/{k}")
    assert listing(kv, f"/kv/{p}/", after=f"{p}/b")["keys"] == [f"{p}/c", f"{p}/e"]
    assert listing(kv, f"/kv/{p}/", after=f"{p}/c")["keys"] == [f"{p}/e"]
    d = listing(kv, f"/kv/{p}/", after=f"{p}/z")
    assert d["keys"] == [] and d["next"] is None


def test_limit_one_walk(kv):
    p = fresh_prefix()
    keys = [f"{p}/{c}" for c in "abcde"]
    for k in keys:
        put(kv, k)
    assert kv.list_all(prefix=f"{p}/", limit=1) == keys


def test_default_limit_1000(kv):
    p = fresh_prefix()
    keys = [f"{p}/k{i:05d}" for i in range(1001)]
    for k in keys:
        put(kv, k)
    d = listing(kv, f"/kv/{p}/")
    assert d["count"] == 1000 and d["keys"] == keys[:1000]
    assert d["next"] == keys[999]
    d2 = listing(kv, f"/kv/{p}/", after=d["next"])
    assert d2["keys"] == keys[1000:] and d2["next"] is None


def test_limit_max_10000_accepted(kv):
    p = fresh_prefix()
    put(kv, f"{p}/x")
    assert listing(kv, f"/kv/{p}/", limit="10000")["keys"] == [f"{p}/x"]


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "10001", "99999999999999999999", "", "1.5",
                                   "1e3"])
def test_bad_limit_400(kv, limit):
    assert_json_error(kv.get("/kv/", params={"limit": limit}), 400)
    assert kv.get("/health").status_code == 200


def test_values_true_items(kv):
    p = fresh_prefix()
    bodies = {f"{p}/a": b'{"x": [1, 2]}', f"{p}/b": b'"str"', f"{p}/c": b"null",
              f"{p}/d/e": b"1.0e+2", f"{p}/f": b"false"}
    versions = {k: put(kv, k, v) for k, v in bodies.items()}
    doc = listing(kv, f"/kv/{p}/", values="true")
    assert doc["keys"] == sorted(bodies)
    items = doc["items"]
    assert [i["key"] for i in items] == doc["keys"]
    for it in items:
        k = it["key"]
        assert set(it) >= {"key", "value", "uuid", "timestamp"}, it
        assert it["value"] == json.loads(bodies[k]), it
        assert it["uuid"] == versions[k]["uuid"]
        assert it["timestamp"] == versions[k]["timestamp"]


def test_values_true_with_pagination(kv):
    p = fresh_prefix()
    for i in range(7):
        put(kv, f"{p}/k{i}", str(i).encode())
    items = kv.list_all(prefix=f"{p}/", limit=3, values=True)
    assert [(i["key"], i["value"]) for i in items] == [(f"{p}/k{i}", i) for i in range(7)]


def test_no_items_without_values(kv):
    p = fresh_prefix()
    put(kv, f"{p}/a")
    assert "items" not in listing(kv, f"/kv/{p}/")
    assert "items" not in listing(kv, f"/kv/{p}/", values="false")


def test_percent_encoded_prefix(kv):
    p = fresh_prefix()
    put(kv, f"{p}/caf%C3%A9/x")
    put(kv, f"{p}/cafe/y")
    doc = listing(kv, f"/kv/{p}/caf%C3%A9/")
    assert doc["prefix"] == f"{p}/café/"
    assert doc["keys"] == [f"{p}/café/x"]
