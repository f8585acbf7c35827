"""Tombstone grace (issue 4, part 6): purge after the grace, and a node back
from an absence longer than the grace refuses to hand peers old records.

The absence is made with libfaketime: the node runs once on the real clock,
then restarts with its clock 5 minutes ahead and tombstone_grace 60 s, so
for it every stored record is older than the grace and its last heartbeat
is 5 minutes old.
"""

import json
import os
from pathlib import Path

import pytest

from conftest import parse_metrics, wait_until

FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")

pytestmark = pytest.mark.skipif(
    not FAKETIME_LIB.exists() or os.environ.get("KVS_SANITIZER") == "thread",
    reason="needs libfaketime (Debian libfaketime); confuses ThreadSanitizer")


def metric(node, name):
    return sum(v for n, _, v in parse_metrics(node.get("/metrics").text) if n == name)


def peer_fetch(node, keys):
    r = node.request("POST", "/members/fetch", data=json.dumps({"keys": keys}))
    assert r.status_code == 200, r.text
    return {it["key"]: it for it in r.json()["items"]}


def test_node_back_after_the_grace_purges_and_refuses_to_share_old_records(node_factory):
    n = node_factory.start("n1", extra={"tombstone_grace": 60})
    n.put_json("tomb/kept", {"v": 1})
    n.put_json("tomb/gone", {"v": 2})
    assert n.delete("/kv/tomb/gone").status_code == 204
    assert set(peer_fetch(n, ["tomb/kept", "tomb/gone"])) == {"tomb/kept", "tomb/gone"}
    assert n.stop() == 0

    # five minutes later, for the node
    n.env.update({"LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME": "+300s",
                  "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                  "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"})
    n.start()
    wait_until(lambda: "stale_node" in n.log_text(), timeout=5,
               msg="the node notices it was away longer than tombstone_grace")

    # the delete marker is purged; the live value stays readable by clients
    wait_until(lambda: metric(n, "kvs_tombstones_purged_total") >= 1, timeout=15,
               msg="tombstone purged after the grace")
    assert metric(n, "kvs_tombstones") == 0
    assert n.get_json("tomb/kept") == {"v": 1}
    assert n.get("/kv/tomb/gone").status_code == 404

    # but peers are never handed records older than the grace
    assert peer_fetch(n, ["tomb/kept"]) == {}
    r = n.get("/members/recent", params={"limit": "100"})
    assert r.status_code == 200 and r.json()["items"] == []
    r = n.get("/members/since", params={"ts": "0", "limit": "100", "values": "true"})
    assert r.status_code == 200 and r.json()["items"] == []

    # new writes are shared as usual
    n.put_json("tomb/new", {"v": 3})
    assert set(peer_fetch(n, ["tomb/kept", "tomb/new"])) == {"tomb/new"}
