"""
Compressed pushes (issue 20), on real processes: zstd is negotiated, never
assumed.

A node that takes zstd push bodies says so in every push reply
(Accept-Encoding: zstd); a sender compresses a push of 16 KiB or more only
for a peer whose last answer said so, and sends the plain body again at
once when the peer refuses the frame (415: restarted with
peer_compression off, or an older kvs).  A receiver decompresses within the
same cap as a plain body and refuses anything else: another encoding 415, a
damaged frame 400, a frame that grows past the cap 413, and nothing of a
refused push is applied.  Bodies are made with the zstd command (Debian's
zstd package).
"""

import json
import subprocess

from conftest import FAST_INTERVALS, wait_members, wait_until
from test_hardening import metric, post, self_record

FAST = dict(FAST_INTERVALS, throttle_delay_ms=0, fetch_delay_ms=0)


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c", "-1"], input=data, check=True,
                          capture_output=True).stdout


def big_txn(node, prefix, n=4, size=40000):
    """One transaction of n values of size bytes: one push of n * size bytes."""
    ops = [{"op": "put", "key": f"{prefix}/k{i}", "value": {"blob": "ab" * (size // 2)}}
           for i in range(n)]
    r = node.request("POST", "/txn", json={"ops": ops})
    assert r.status_code == 200, r.text
    return [o["key"] for o in ops]


def has_all(node, keys):
    return all(node.get("/kv/" + k).status_code == 200 for k in keys)


def test_negotiated_both_ways_and_refused_cleanly(node_factory):
    n1, n2 = node_factory.cluster(2, extra=FAST, prefix="z")
    wait_members([n1, n2])

    # the first push of a sender goes plain; its answer offers zstd, the next are compressed
    keys = big_txn(n1, "a")
    wait_until(lambda: has_all(n2, keys), 15, msg="the first push never arrived")
    keys = big_txn(n1, "b")
    wait_until(lambda: has_all(n2, keys), 15, msg="the compressed push never arrived")
    assert metric(n1, "kvs_push_compressed_total") >= 1
    raw, wire = metric(n1, "kvs_push_bytes_total"), metric(n1, "kvs_push_wire_bytes_total")
    assert wire < raw, f"nothing saved: {wire} of {raw} bytes sent"
    assert n2.get_json("b/k3") == {"blob": "ab" * 20000}  # byte for byte after the trip
    # and the other way round
    keys = big_txn(n2, "c") + big_txn(n2, "d")
    wait_until(lambda: has_all(n1, keys), 15, msg="node 2's pushes never arrived")
    assert metric(n2, "kvs_push_compressed_total") >= 1

    # node 2 restarts as an "old" peer: peer_compression off.  Node 1 still thinks it takes
    # zstd, gets 415, and sends the same push again plain at once.
    n2.config["peer_compression"] = False
    n2.restart()
    wait_members([n1, n2])
    before = metric(n1, "kvs_push_compressed_total")
    keys = big_txn(n1, "e")
    wait_until(lambda: has_all(n2, keys), 15, msg="the push to the old peer never arrived")
    keys = big_txn(n1, "f")
    wait_until(lambda: has_all(n2, keys), 15, msg="a later push to the old peer never arrived")
    assert metric(n1, "kvs_push_compressed_total") == before  # never again to it
    assert metric(n1, "kvs_push_encoding_refused_total") == 1  # the one it had to resend
    assert metric(n1, "kvs_push_dropped_total") == 0


def test_receiver_refuses_bad_frames(node_factory):
    n1 = node_factory.start("solo", extra=FAST)
    me = self_record(n1)
    item = {"key": "zz/one", "uuid": "0b9c7f0e-8d43-4d7a-9d55-000000000001",
            "timestamp": 1700000000000, "tombstone": False, "value": json.dumps({"v": 1})}
    body = json.dumps({"from": me, "items": [item]}).encode()

    def push(data, encoding):
        return post(n1, "/members/push", body=data, headers={"Content-Encoding": encoding})

    r = push(zstd(body), "zstd")
    assert r.status == 200, r
    assert r.headers.get("Accept-Encoding") == "zstd"
    assert n1.get_json("zz/one") == {"v": 1}

    for data, enc, status in ((body, "gzip", 415), (body, "br, zstd", 415),
                              (b"\x28\xb5\x2f\xfd not a frame", "zstd", 400),
                              (zstd(body)[:-5], "zstd", 400),
                              (zstd(body) + b"tail", "zstd", 400)):
        r = push(data, enc)
        assert r.status == status, (enc, r)
        assert "error" in r.json(), r
    # a frame that decompresses past the body cap (8 x max_value_bytes + 8 MiB)
    bomb = zstd(b'{"from":' + b" " * (40 << 20) + b"}")
    assert len(bomb) < 1 << 20
    r = push(bomb, "zstd")
    assert r.status == 413, r

    # peer_compression off: zstd is another unknown encoding, and not offered
    n1.config["peer_compression"] = False
    n1.restart()
    r = push(zstd(body), "zstd")
    assert r.status == 415, r
    r = push(body, "identity")
    assert r.status == 200 and "Accept-Encoding" not in r.headers, r
    assert n1.get("/health").status_code == 200
