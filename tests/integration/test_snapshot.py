"""
Snapshots and restore (SPEC section 11, issue 22), on real nodes:

* GET /admin/snapshot needs the admin scope: 401 without a token, 403 with
  a read token or a scoped token without admin, 200 with a write token or a
  scoped admin token; the rest of /admin/ is 404, to an admin only.
* The stream follows the format the README documents: parsed here by an
  independent reader (magic, version, node id, records in key order, count,
  SHA-256), with tombstones and TTLs kept and versions as they are.
* kvs --restore loads it into an empty data dir; the restored node answers
  every key with the same value, uuid, timestamp and expiry; deleted keys
  stay 404; a restored TTL still expires and is reaped (the expiry index);
  a node joining the restored one bootstraps from it (the time index).
* A snapshot taken under write load is consistent: every write
  acknowledged before the request is in it, and no transaction is in it
  by half.
* Every bad file is refused with exit 2, a clear message and no data dir
  left behind: empty, foreign, other format version, truncated anywhere,
  a flipped byte, a wrong count, bytes after the trailer, a record over
  max_value_bytes, keys out of order; a data dir that is not empty; a
  missing file.
"""
import hashlib
import json
import socket
import struct
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from conftest import (FAST_INTERVALS, assert_json_error, now_ms, parse_metrics, wait_until,
                      write_config)

READ = "read-token-0123456789"
WRITE = "write-token-0123456789"
APP = "app-token-0123456789ab"
ADMIN = "admin-token-0123456789"
SCOPED = {"name": "app", "token": APP, "rules": [{"prefix": "", "access": "write"}]}
ADMIN_TOKEN = {"name": "ops", "token": ADMIN, "admin": True,
               "rules": [{"prefix": "", "access": "read"}]}

MAGIC = b"KVSSNAP\0"


def bearer(t):
    return {"Authorization": f"Bearer {t}"} if t else {}


# --------------------------------------------------------------------------
# the format, read independently of the C code (README "Snapshot format")

def parse_snapshot(data):
    """bytes -> dict(version, node_id, taken_ms, records=[(key, rec dict)], count)."""
    assert data[:8] == MAGIC, data[:16]
    version = struct.unpack(">H", data[8:10])[0]
    n = data[10]
    node_id = data[11:11 + n].decode()
    taken = struct.unpack(">q", data[11 + n:19 + n])[0]
    pos = 19 + n
    records = []
    while data[pos:pos + 1] == b"R":
        klen, rlen = struct.unpack(">II", data[pos + 1:pos + 9])
        key = data[pos + 9:pos + 9 + klen].decode()
        rec = data[pos + 9 + klen:pos + 9 + klen + rlen]
        records.append((key, parse_record(rec)))
        pos += 9 + klen + rlen
    assert data[pos:pos + 1] == b"E"
    count = struct.unpack(">Q", data[pos + 1:pos + 9])[0]
    assert data[pos + 9:pos + 41] == hashlib.sha256(data[:pos + 9]).digest()
    assert len(data) == pos + 41
    return dict(version=version, node_id=node_id, taken_ms=taken, records=records,
                count=count)


def parse_record(rec):
    """record.h: format, flags, ts, uuid, [expires], [origin], value."""
    assert rec[0] == 1
    flags = rec[1]
    ts = struct.unpack(">q", rec[2:10])[0]
    uid = rec[10:26].hex()
    uid = f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:]}"
    pos, expires, origin = 26, 0, ""
    if flags & 4:
        expires = struct.unpack(">q", rec[pos:pos + 8])[0]
        pos += 8
    if flags & 2:
        origin = rec[pos + 1:pos + 1 + rec[pos]].decode()
        pos += 1 + rec[pos]
    return dict(tombstone=bool(flags & 1), ts=ts, uuid=uid, expires=expires,
                origin=origin, value=rec[pos:])


def rebuild(parsed, records=None, count=None, version=None):
    """A snapshot file from parsed parts, with a correct checksum."""
    out = bytearray(MAGIC)
    out += struct.pack(">H", parsed["version"] if version is None else version)
    nid = parsed["node_id"].encode()
    out += bytes([len(nid)]) + nid + struct.pack(">q", parsed["taken_ms"])
    recs = parsed["raw"] if records is None else records
    for key, raw in recs:
        out += b"R" + struct.pack(">II", len(key), len(raw)) + key + raw
    out += b"E" + struct.pack(">Q", len(recs) if count is None else count)
    out += hashlib.sha256(bytes(out)).digest()
    return bytes(out)


def raw_records(data):
    """[(key bytes, record bytes)] of a snapshot file."""
    n = data[10]
    pos, out = 19 + n, []
    while data[pos:pos + 1] == b"R":
        klen, rlen = struct.unpack(">II", data[pos + 1:pos + 9])
        out.append((data[pos + 9:pos + 9 + klen], data[pos + 9 + klen:pos + 9 + klen + rlen]))
        pos += 9 + klen + rlen
    return out


# --------------------------------------------------------------------------
# helpers

def snapshot(node, token=None):
    r = node.get("/admin/snapshot", headers=bearer(token), timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/octet-stream"
    # chunked: a stream cut short is an error to the client, never a short file
    assert r.headers.get("Transfer-Encoding") == "chunked", r.headers
    return r.content


def restore(kvs_bin, file, config, expect=0):
    p = subprocess.run([str(kvs_bin), "--restore", str(file), str(config)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == expect, (p.returncode, p.stdout, p.stderr)
    return p


def restored_node(node_factory, kvs_bin, data, name, extra=None, seeds=None):
    """A node (not started) whose data dir is restored from the snapshot bytes."""
    n = node_factory.create(name, extra=extra, seeds=seeds)
    f = n.dir / "snap.bin"
    f.write_bytes(data)
    write_config(n.config_path, n.config)
    restore(kvs_bin, f, n.config_path)
    return n


def version_of(node, key, token=None):
    r = node.get("/kv/" + key, headers=bearer(token))
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return (r.content, r.headers["ETag"].strip('"'), int(r.headers["X-Kvs-Timestamp"]),
            r.headers.get("X-Kvs-Expires"))


def metric(node, name):
    total = 0.0
    for n, _labels, v in parse_metrics(node.get("/metrics").text):
        if n == name:
            total += v
    return total


# --------------------------------------------------------------------------
# access

def test_snapshot_needs_the_admin_scope(node_factory, tmp_path):
    audit = tmp_path / "audit.log"
    n = node_factory.start("a1", extra={
        "cluster_secret": "cluster-secret-0123456789", "audit_log": str(audit),
        "auth_tokens": [f"read:{READ}", f"write:{WRITE}", SCOPED, ADMIN_TOKEN]})
    assert n.put("/kv/k", '"v"', headers=bearer(WRITE)).status_code == 200
    r = n.get("/admin/snapshot")
    assert_json_error(r, 401)
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert_json_error(n.get("/admin/snapshot", headers=bearer("nobody-0123456789")), 401)
    assert_json_error(n.get("/admin/snapshot", headers=bearer(READ)), 403)
    assert_json_error(n.get("/admin/snapshot", headers=bearer(APP)), 403)
    for token in (WRITE, ADMIN):
        snap = parse_snapshot(snapshot(n, token))
        assert [k for k, _ in snap["records"]] == ["k"]
    # other methods (a client resource asks what the method would need)
    assert_json_error(n.request("POST", "/admin/snapshot", headers=bearer(READ)), 403)
    assert_json_error(n.request("POST", "/admin/snapshot", headers=bearer(ADMIN)), 405)
    assert_json_error(n.get("/admin/other", headers=bearer(ADMIN)), 404)

    # every snapshot request is audited, granted or refused, with the token's name
    def audited():
        lines = [json.loads(x) for x in audit.read_text().splitlines() if x.strip()]
        got = {(x["path"], x["status"], x["token"]) for x in lines if x["method"] == "GET"}
        return {("/admin/snapshot", 401, None), ("/admin/snapshot", 403, "app"),
                ("/admin/snapshot", 200, "ops")} <= got
    wait_until(audited, timeout=5, msg="audit lines for /admin/snapshot")


def test_at_most_two_snapshots_stream_at_once(node_factory):
    """Two clients that do not read hold their streams open; a third request gets 503
    with Retry-After; once they hang up, snapshots are served again."""
    n = node_factory.start("l1")
    big = json.dumps("x" * 900_000)
    for i in range(40):  # 36 MB: more than loopback socket buffers hold
        assert n.put(f"/kv/big/{i:02d}", big).status_code == 200
    holders = []
    try:
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", n.port), timeout=10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /admin/snapshot HTTP/1.1\r\nHost: x\r\n\r\n")
            holders.append(s)
        for s in holders:
            assert s.recv(12) == b"HTTP/1.1 200"
        # (a Response is falsy when not ok: wait for a list holding it)
        r = wait_until(lambda: [r for r in [n.get("/admin/snapshot")] if r.status_code == 503],
                       timeout=10, msg="a third snapshot refused")[0]
        assert_json_error(r, 503)
        assert r.headers["Retry-After"] == "5"
    finally:
        for s in holders:
            s.close()
    data = wait_until(lambda: (lambda r: r.content if r.status_code == 200 else None)(
        n.get("/admin/snapshot", timeout=60)), timeout=30, msg="snapshots served again")
    assert parse_snapshot(data)["count"] == 40


# --------------------------------------------------------------------------
# round trip

def test_snapshot_and_restore_keep_every_record_as_it_is(node_factory, kvs_bin):
    src = node_factory.start("s1", extra=dict(FAST_INTERVALS))
    big = json.dumps({"blob": "x" * 200_000})
    values = {"a/1": '{"v":1}', "a/2": "[1,2,3]", "b/\u00e9t\u00e9": '"unicode"',
              "big": big, "ttl/long": '"stays"', "ttl/short": '"goes"', "gone": '"soon"',
              "z": "null"}
    for k, v in values.items():
        params = {"ttl": "1h"} if k == "ttl/long" else {"ttl": "3s"} if k == "ttl/short" else {}
        assert src.put("/kv/" + k, v, params=params).status_code == 200, k
    assert src.delete("/kv/gone").status_code == 204
    before = {k: version_of(src, k) for k in values}
    assert before["gone"] is None and before["ttl/long"][3] and before["ttl/short"][3]

    data = snapshot(src)
    snap = parse_snapshot(data)
    assert snap["version"] == 1 and snap["node_id"] == "s1"
    assert abs(snap["taken_ms"] - now_ms()) < 60_000
    keys = [k for k, _ in snap["records"]]
    assert keys == sorted(values, key=lambda k: k.encode())  # tombstone included
    assert snap["count"] == len(values)
    recs = dict(snap["records"])
    assert recs["gone"]["tombstone"] and recs["gone"]["value"] == b""
    for k, v in before.items():
        if v is None:
            continue
        assert recs[k]["value"] == v[0] and recs[k]["uuid"] == v[1] and recs[k]["ts"] == v[2]
        assert recs[k]["origin"] == "s1"
        assert (str(recs[k]["expires"]) if recs[k]["expires"] else None) == v[3]

    dst = restored_node(node_factory, kvs_bin, data, "r1", extra=dict(FAST_INTERVALS))
    assert not Path(str(dst.data_dir) + ".restoring").exists()
    dst.start()
    for k, v in before.items():
        if k != "ttl/short":
            assert version_of(dst, k) == v, k
    assert dst.list_all() == src.list_all()
    # the expiry index came back: the short TTL expires and is reaped there
    wait_until(lambda: metric(dst, "kvs_expired_total") >= 1, timeout=15,
               msg="restored TTL reaped")
    assert version_of(dst, "ttl/short") is None
    # the time index came back: a new node bootstraps everything from it
    j = node_factory.start("j1", seeds=[dst.address], extra=dict(FAST_INTERVALS))
    wait_until(lambda: j.health()["mode"] == "normal", timeout=30)
    wait_until(lambda: version_of(j, "big") == before["big"], timeout=30)
    assert version_of(j, "gone") is None
    # a snapshot of the restored node holds the same records (the reaped
    # TTL aside: now a tombstone with its derived version)
    again = dict(parse_snapshot(snapshot(dst))["records"])
    for k in values:
        if k != "ttl/short":
            assert again[k] == recs[k], k
    assert again["ttl/short"]["tombstone"] and again["ttl/short"]["ts"] == \
        recs["ttl/short"]["expires"]


def test_snapshot_of_an_empty_node_restores_to_an_empty_node(node_factory, kvs_bin):
    src = node_factory.start("e1")
    snap = parse_snapshot(snapshot(src))
    assert snap["records"] == [] and snap["count"] == 0
    dst = restored_node(node_factory, kvs_bin, snapshot(src), "e2")
    dst.start()
    assert dst.list_all() == []


# --------------------------------------------------------------------------
# consistency under load

def test_snapshot_under_write_load_is_consistent(node_factory, kvs_bin):
    n = node_factory.start("w1")
    stop = threading.Event()
    acked = {"seq": -1, "pair": 0}
    errors = []

    def writer():
        s = requests.Session()
        i = 0
        while not stop.is_set():
            try:
                r = s.put(n.url(f"/kv/seq/{i:06d}"), data=str(i), timeout=10)
                assert r.status_code == 200, r.text
                acked["seq"] = i
                ops = [{"op": "put", "key": f"pair/{c}", "value": i} for c in "xyz"]
                r = s.post(n.url("/txn"), json={"ops": ops}, timeout=10)
                assert r.status_code == 200, r.text
                acked["pair"] = i
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return
            i += 1

    threads = [threading.Thread(target=writer) for _ in range(1)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: acked["seq"] >= 200, timeout=30, msg="writes under way")
        for _ in range(3):
            seq_before, pair_before = acked["seq"], acked["pair"]
            snap = parse_snapshot(snapshot(n))
            recs = dict(snap["records"])
            seqs = {k for k in recs if k.startswith("seq/")}
            # every write acknowledged before the request is in it
            assert all(f"seq/{i:06d}" in seqs for i in range(seq_before + 1))
            # each transaction whole or not at all
            pair = {recs[f"pair/{c}"]["value"] for c in "xyz"}
            assert len(pair) == 1, pair
            assert int(pair.pop()) >= pair_before
            assert snap["count"] == len(snap["records"])
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors
    # and it restores
    dst = restored_node(node_factory, kvs_bin, snapshot(n), "w2")
    dst.start()
    assert len(dst.list_all("seq/")) == acked["seq"] + 1


# --------------------------------------------------------------------------
# refused files

@pytest.fixture(scope="module")
def good_snapshot(module_factory):
    n = module_factory.start("g1")
    for i in range(20):
        assert n.put(f"/kv/k/{i:02d}", json.dumps({"i": i})).status_code == 200
    assert n.delete("/kv/k/05").status_code == 204
    return snapshot(n)


def damaged_files(good):
    parsed = parse_snapshot(good)
    parsed["raw"] = raw_records(good)
    end_of_header = 19 + len(parsed["node_id"])
    first_record = end_of_header + 9 + 4
    flipped = bytearray(good)
    flipped[first_record + 30] ^= 0x01  # a byte inside the first record's value
    raw = parsed["raw"]
    big_value = raw[0][1][:26] + b'"' + b"x" * 5000 + b'"'  # a record over 4 KiB
    return {
        "empty": (b"", "truncated"),
        "foreign": (b'{"this": "is json, not a snapshot"}\n' * 10, "not a kvs snapshot"),
        "version 2": (rebuild(parsed, version=2), "format version 2"),
        "header cut": (good[:12], "truncated"),
        "record cut": (good[:first_record + 10], "truncated"),
        "no trailer": (good[:len(good) - 41], "truncated"),
        "checksum cut": (good[:-5], "truncated"),
        "flipped byte": (bytes(flipped), "checksum"),
        "wrong count": (rebuild(parsed, count=len(raw) + 1), "counts"),
        "trailing bytes": (good + b"\0", "follow the trailer"),
        "out of order": (rebuild(parsed, records=[raw[1], raw[0]] + raw[2:]), "key order"),
        "bad tag": (good[:end_of_header] + b"X" + good[end_of_header + 1:], "frame tag"),
        "bad record": (rebuild(parsed, records=[(raw[0][0], b"\x09" + raw[0][1][1:])] + raw[1:]),
                       "does not decode"),
        "bad key": (rebuild(parsed, records=[(b"a//b", raw[0][1])] + raw[1:]), "invalid key"),
        "over max_value_bytes": (rebuild(parsed, records=[(raw[0][0], big_value)] + raw[1:]),
                                 "max_value_bytes"),
    }


CASES = ["empty", "foreign", "version 2", "header cut", "record cut", "no trailer",
         "checksum cut", "flipped byte", "wrong count", "trailing bytes", "out of order",
         "bad tag", "bad record", "bad key", "over max_value_bytes"]


@pytest.mark.parametrize("case", CASES)
def test_restore_refuses_a_bad_file_and_leaves_nothing(tmp_path, kvs_bin, good_snapshot, case):
    data, why = damaged_files(good_snapshot)[case]
    f = tmp_path / "bad.snap"
    f.write_bytes(data)
    data_dir = tmp_path / "data"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"node_id: r\ndata_dir: {data_dir}\nmax_value_bytes: 4096\n")
    p = restore(kvs_bin, f, cfg, expect=2)
    assert why in p.stderr, p.stderr
    assert "restore refused" in p.stderr
    assert not data_dir.exists()
    assert not Path(str(data_dir) + ".restoring").exists()


def test_restore_takes_the_good_file_the_bad_ones_came_from(tmp_path, kvs_bin, good_snapshot):
    f = tmp_path / "good.snap"
    f.write_bytes(good_snapshot)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"node_id: r\ndata_dir: {tmp_path / 'data'}\nmax_value_bytes: 4096\n")
    p = restore(kvs_bin, f, cfg)
    assert "restored 20 records (1 tombstones)" in p.stdout
    assert (tmp_path / "data" / "CURRENT").exists()


def test_restore_refuses_a_data_dir_in_use_and_a_missing_file(tmp_path, kvs_bin, good_snapshot):
    f = tmp_path / "good.snap"
    f.write_bytes(good_snapshot)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "precious").write_text("keep me")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"node_id: r\ndata_dir: {data_dir}\n")
    p = restore(kvs_bin, f, cfg, expect=2)
    assert "not empty" in p.stderr
    assert (data_dir / "precious").read_text() == "keep me"
    assert sorted(x.name for x in data_dir.iterdir()) == ["precious"]
    (data_dir / "precious").unlink()
    p = restore(kvs_bin, tmp_path / "absent.snap", cfg, expect=2)
    assert "cannot open" in p.stderr
    assert list(data_dir.iterdir()) == []
    # an empty dir is fine, and so is a leftover of an interrupted restore
    leftover = Path(str(data_dir) + ".restoring")
    leftover.mkdir()
    (leftover / "junk").write_text("x")
    restore(kvs_bin, f, cfg)
    assert not leftover.exists() and (data_dir / "CURRENT").exists()
    # a data_dir written with a trailing slash is the same directory
    slash = tmp_path / "slash"
    cfg.write_text(f"node_id: r\ndata_dir: {slash}/\n")
    restore(kvs_bin, f, cfg)
    assert (slash / "CURRENT").exists() and not Path(str(slash) + ".restoring").exists()
    # usage errors, and a config that does not exist (never created by --restore)
    p = subprocess.run([str(kvs_bin), "--restore"], capture_output=True, text=True)
    assert p.returncode == 2 and "usage" in p.stderr
    p = restore(kvs_bin, f, tmp_path / "absent.yaml", expect=2)
    assert "cannot open" in p.stderr and not (tmp_path / "absent.yaml").exists()
