"""
The backup and restore drill of issue 22 (README "Backup and restore"), on
a real three-node cluster under write load:

  1. keys written and deleted, keys written and kept, then a snapshot of
     node 1 (GET /admin/snapshot) while writers keep writing to nodes 1-2;
  2. after the snapshot: new keys, deletes of kept keys, an overwrite;
  3. node 3 is stopped, its data dir wiped, restored from node 1's
     snapshot with `kvs --restore`, and started again with its seeds;
  4. the cluster converges: node 3 holds exactly what nodes 1 and 2 hold;
     every write acknowledged by the writers is there, keys deleted before
     the snapshot and keys deleted after it stay deleted, and the
     overwrite after the snapshot wins over the snapshot's version.
"""
import shutil
import subprocess
import threading

import requests

from conftest import FAST_INTERVALS, start_and_join, wait_until


def test_backup_and_restore_drill(node_factory, kvs_bin):
    n1, n2, n3 = node_factory.cluster(3, extra=dict(FAST_INTERVALS), seeds="all", start=False)
    start_and_join([n1, n2, n3])

    for i in range(10):
        assert n1.put(f"/kv/del-before/{i}", f'"{i}"').status_code == 200
    for i in range(20):
        assert n2.put(f"/kv/keep/{i}", f'"v{i}"').status_code == 200
    for i in range(10):
        assert n1.delete(f"/kv/del-before/{i}").status_code == 204

    stop = threading.Event()
    acked = {n1.node_id: [], n2.node_id: []}
    errors = []

    def writer(node):
        s = requests.Session()
        i = 0
        while not stop.is_set():
            key = f"load/{node.node_id}/{i:06d}"
            try:
                r = s.put(node.url("/kv/" + key), data=str(i), timeout=10)
                assert r.status_code == 200, r.text
            except Exception as e:  # noqa: BLE001 - reported at the end
                errors.append(e)
                return
            acked[node.node_id].append(key)
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in (n1, n2)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: all(len(v) >= 50 for v in acked.values()), timeout=30,
                   msg="writers under way")
        r = n1.get("/admin/snapshot", timeout=60)
        assert r.status_code == 200
        snap = n3.dir / "backup.snap"
        snap.write_bytes(r.content)

        # after the snapshot
        for i in range(20):
            assert n2.put(f"/kv/after/{i}", f'"a{i}"').status_code == 200
        for i in range(5):
            assert n1.delete(f"/kv/keep/{i}").status_code == 204
        assert n2.put("/kv/keep/10", '"overwritten"').status_code == 200

        # lose node 3, restore it from node 1's snapshot, bring it back
        n3.stop()
        shutil.rmtree(n3.data_dir)
        p = subprocess.run([str(kvs_bin), "--restore", str(snap), str(n3.config_path)],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert "restored" in p.stdout
        n3.start()
        wait_until(lambda: n3.health()["mode"] == "normal", timeout=60, msg="n3 bootstrapped")
        # writes continue while it catches up, then stop
        wait_until(lambda: all(len(v) >= 150 for v in acked.values()), timeout=30)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors

    def items(node):
        return [(i["key"], i["value"], i["uuid"], i["timestamp"])
                for i in node.list_all(values=True)]

    def converged():
        a = items(n1)
        return a == items(n2) and a == items(n3) and a
    wait_until(converged, timeout=60, interval=0.5, msg="the three nodes hold the same items")

    keys = set(n3.list_all())
    for node_keys in acked.values():
        assert set(node_keys) <= keys  # no acknowledged write lost
    assert not any(k.startswith("del-before/") for k in keys)
    assert not any(f"keep/{i}" in keys for i in range(5))
    assert {f"after/{i}" for i in range(20)} <= keys
    assert {f"keep/{i}" for i in range(5, 20)} <= keys
    for i in (0, 9):
        assert n3.get(f"/kv/del-before/{i}").status_code == 404
    assert n3.get_json("keep/10") == "overwritten"
