"""Secure by default (as Redis's protected mode), against the real binary.

* protected mode: a node binding a non-loopback address (0.0.0.0 here)
  with neither cluster_secret nor auth_tokens refuses to start (exit 2, one
  line naming file, line and what to set); with protected_mode: false it
  starts, and says at WARN that it is open;
* auth_tokens without a cluster secret, and a cluster secret under 16
  bytes (inline or from cluster_secret_file), are config errors (exit 2);
* the member table is capped at max_members: forged POST /members/gossip
  messages carrying thousands of made-up members leave at most
  max_members in GET /members/, and the node's memory stays put (M1).

Nodes bound to 0.0.0.0 are only ever spoken to over 127.0.0.1.  The forged
members' addresses are 127.0.0.1 ports in 40000..60000 found free at the
start (and kept from free_port() for the session), so the node's probes of
them are refused on loopback and nothing leaves the machine.
"""

import http.client
import json
import re
import socket
import subprocess
import time

import pytest

from conftest import (HTTP_TIMEOUT, MEMORY_MEASURABLE, NodeError, _used_ports, free_port,
                      now_ms, raw_request, wait_until, write_config)

SECRET = "0123456789abcdef-secret"     # 23 bytes
TOKEN = "write:0123456789abcdef-token"
FORGED_REQUESTS = 20
FORGED_PER_REQUEST = 4096              # the most one gossip message may carry
# Measured here: about 5 MiB (one message's parse); an uncapped table of
# 20 x 4096 members would take some 35 MiB more (432 bytes a member).
RSS_GROWTH_MAX = 25 << 20              # bytes


def run(kvs_bin, *args, cwd, timeout=15):
    return subprocess.run([str(kvs_bin), *map(str, args)], cwd=cwd, capture_output=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def base_config(tmp_path, **over):
    cfg = {"node_id": "sec", "bind_address": "127.0.0.1", "port": free_port(),
           "data_dir": str(tmp_path / "data"), "seed_nodes": []}
    cfg.update(over)
    return cfg


def expect_config_error(kvs_bin, tmp_path, cfg, key, *fragments):
    """Starts kvs on cfg; asserts exit 2 before the data dir exists, and one
    stderr line "FILE:LINE: KEY: ..." (LINE that of key) holding fragments."""
    path = tmp_path / "node.yaml"
    where = write_config(path, cfg)
    p = run(kvs_bin, path, cwd=tmp_path)
    err = p.stderr.decode()
    assert p.returncode == 2, f"rc {p.returncode}, stderr:\n{err}"
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, f"expected ONE line on stderr, got:\n{err}"
    m = re.match(r"^(.+?):(\d+): (\w+): (.+)$", lines[0])
    assert m, f"not FILE:LINE: KEY: REASON: {lines[0]!r}"
    assert m.group(1) == str(path) and m.group(3) == key, lines[0]
    assert int(m.group(2)) == where[key], f"line {m.group(2)}, {key} is on {where[key]}"
    for f in fragments:
        assert f in m.group(4), f"{f!r} not in {lines[0]!r}"
    assert not (tmp_path / "data").exists(), "a config error must stop the node before data_dir"
    # --check-config says the same
    q = run(kvs_bin, "--check-config", path, cwd=tmp_path)
    assert q.returncode == 2 and q.stderr.decode() == err, q
    return m.group(4)


# ----------------------------------------------------------- protected mode

def test_open_non_loopback_bind_refused(kvs_bin, tmp_path):
    """(a) 0.0.0.0 without secret or tokens: exit 2, and the message says what to set."""
    reason = expect_config_error(kvs_bin, tmp_path, base_config(tmp_path, bind_address="0.0.0.0"),
                                 "bind_address", "0.0.0.0 is not a loopback address",
                                 "protected mode", "cluster_secret", "protected_mode: false")
    assert "auth_tokens" in reason, reason


def test_protected_mode_counts_secret_file_and_tokens(kvs_bin, tmp_path):
    """A secret, inline or from a file, makes a non-loopback bind acceptable."""
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    for extra in ({"cluster_secret": SECRET},
                  {"cluster_secret_file": str(secret_file)},
                  {"cluster_secret": SECRET, "auth_tokens": [TOKEN]}):
        path = tmp_path / "ok.yaml"
        write_config(path, base_config(tmp_path, bind_address="0.0.0.0", **extra))
        p = run(kvs_bin, "--check-config", path, cwd=tmp_path)
        assert p.returncode == 0, (extra, p.stderr.decode())
        assert "protected_mode: true" in p.stdout.decode()


def test_protected_mode_false_starts_open_with_a_warning(node_factory):
    """(b) protected_mode: false on 0.0.0.0 starts; a WARN line says it is open."""
    port = free_port("0.0.0.0")
    n = node_factory.create("open", port=port, extra={
        "bind_address": "0.0.0.0", "advertise_address": f"127.0.0.1:{port}",
        "protected_mode": False})
    n.start()  # waits for /health over 127.0.0.1
    assert n.health()["node_id"] == "open"
    n.put_json("open/k", 1)
    assert n.get_json("open/k") == 1
    warn = [ln for ln in n.log_text().splitlines() if "protected_mode_off" in ln]
    assert warn, f"no protected_mode_off line in the log:\n{n.log_tail()}"
    assert re.search(r"\bWARN\b", warn[0]) and "bind_address=0.0.0.0" in warn[0], warn[0]
    assert n.stop() == 0


def test_loopback_node_is_not_warned(node):
    """The default loopback node is not "open": no protected_mode_off line."""
    node.put_json("quiet/k", 1)
    assert "protected_mode_off" not in node.log_text()


# --------------------------------------------------------- secret and tokens

def test_tokens_without_secret_refused(kvs_bin, tmp_path):
    """(c) auth_tokens alone would leave /members/ open: exit 2."""
    expect_config_error(kvs_bin, tmp_path, base_config(tmp_path, auth_tokens=[TOKEN]),
                        "auth_tokens", "auth_tokens need cluster_secret",
                        "peer endpoints under /members/ are open to anyone")


def test_short_secret_refused(kvs_bin, tmp_path):
    """(d) a 10-byte secret: exit 2, and the secret is not echoed."""
    reason = expect_config_error(kvs_bin, tmp_path,
                                 base_config(tmp_path, cluster_secret="ten-bytes!"),
                                 "cluster_secret", "at least 16 bytes", "got 10")
    assert "ten-bytes!" not in reason


def test_short_secret_file_refused(kvs_bin, tmp_path):
    """(d) the same through cluster_secret_file (no line: the file is read after parsing)."""
    f = tmp_path / "secret"
    f.write_text("ten-bytes!\n")
    path = tmp_path / "node.yaml"
    write_config(path, base_config(tmp_path, cluster_secret_file=str(f)))
    p = run(kvs_bin, path, cwd=tmp_path)
    err = p.stderr.decode()
    assert p.returncode == 2, err
    assert err.startswith(f"{path}: cluster_secret_file: ") and "16 to 255 bytes" in err, err
    assert "ten-bytes!" not in err
    assert not (tmp_path / "data").exists()


def test_sixteen_byte_secret_starts(node_factory):
    n = node_factory.start(extra={"cluster_secret": "x" * 16})
    assert n.get("/members/digests").status_code == 401


# -------------------------------------------------------------- M1: the cap

_forged_ports = []


def loopback_ports_nobody_listens_on(count=64):
    """count 127.0.0.1 ports in 40000..60000, free when first looked up and
    kept from free_port() for the session (the same ones for every test)."""
    for port in range(40000, 60000, 97):
        if len(_forged_ports) >= count:
            break
        if port in _used_ports:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _used_ports.add(port)
        _forged_ports.append(port)
    if len(_forged_ports) < count:
        raise RuntimeError(f"fewer than {count} free loopback ports in 40000..60000")
    return _forged_ports[:count]


def forged_member(i, ports, t):
    return {"id": f"forged-{i}", "address": f"127.0.0.1:{ports[i % len(ports)]}",
            "last_seen": t, "joined_timestamp": t - 1000, "incarnation": t - 1000,
            "status": "alive"}


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/PID/status")


def flood_gossip(node, ports):
    """FORGED_REQUESTS gossip messages of FORGED_PER_REQUEST distinct new members each.

    Returns the statuses.  Every message is well formed: the node accepts it
    (200) and merges what fits.  One keep-alive connection carries them all,
    so one worker thread parses them: the RSS then measures what the node
    keeps (the member table), not what glibc's per-thread malloc arenas keep
    of each worker's last parse (about 4 MiB per arena, bounded by their
    number, whatever the member table does).
    """
    statuses = []
    t = now_ms()
    sender = {"id": "forger", "address": f"127.0.0.1:{ports[0]}", "last_seen": t,
              "joined_timestamp": t - 1000, "incarnation": t - 1000, "status": "alive"}
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=max(HTTP_TIMEOUT, 30.0))
    try:
        for r in range(FORGED_REQUESTS):
            base = r * FORGED_PER_REQUEST
            members = [forged_member(base + i, ports, t) for i in range(FORGED_PER_REQUEST)]
            body = json.dumps({"from": sender, "members": members}).encode()
            conn.request("POST", "/members/gossip", body=body,
                         headers={"Content-Type": "application/json",
                                  "X-Kvs-Cluster-Id": "kvs"})
            resp = conn.getresponse()
            resp.read()
            statuses.append(resp.status)
    finally:
        conn.close()
    return statuses


def check_flood_capped(node, cap):
    ports = loopback_ports_nobody_listens_on(64)
    node.put_json("m1/warm", 1)
    node.members()
    rss0 = rss_bytes(node.pid)
    t0 = time.monotonic()
    statuses = flood_gossip(node, ports)
    elapsed = time.monotonic() - t0
    assert statuses == [200] * FORGED_REQUESTS, statuses
    members = node.members()
    assert len(members) <= cap, f"{len(members)} members listed, max_members {cap}"
    # the table filled up to the cap (so the messages were indeed merged) ...
    assert len(members) == cap, len(members)
    assert any(m["id"] == node.node_id for m in members), "this node is still listed"
    assert node.health()["member_count"] <= cap
    # ... and no further: nothing past the cap got in later either
    time.sleep(1.0)
    assert len(node.members()) <= cap
    growth = rss_bytes(node.pid) - rss0
    assert growth < RSS_GROWTH_MAX or not MEMORY_MEASURABLE, \
        f"RSS grew by {growth / 2**20:.1f} MiB over {FORGED_REQUESTS} forged messages"
    # the refusals are logged (rate limited, so a few lines at most)
    refused = [ln for ln in node.log_text().splitlines() if "member_refused" in ln]
    assert refused and len(refused) <= 10, refused[:12]
    assert f"max_members={cap}" in refused[0], refused[0]
    # the node still serves
    assert node.get_json("m1/warm") == 1
    return elapsed


@pytest.mark.timeout_s(120)
def test_forged_gossip_capped_at_max_members(node_factory):
    """(e) 20 x 4096 made-up members, max_members 64: at most 64 listed, RSS flat (M1)."""
    n = node_factory.start("m1", extra={"max_members": 64})
    check_flood_capped(n, 64)


@pytest.mark.timeout_s(120)
def test_forged_gossip_capped_at_default_max_members(node_factory):
    """(e) the same against the default cap of 1024."""
    n = node_factory.start("m1d")
    check_flood_capped(n, 1024)


def test_join_past_the_cap_refused(node_factory):
    """A join of a new member into a full table is refused; the table is unchanged."""
    n = node_factory.start("full", extra={"max_members": 2})
    ports = loopback_ports_nobody_listens_on(2)
    t = now_ms()
    first = forged_member(0, ports, t)
    r = raw_request(n.port, "POST", "/members/join", body=json.dumps({"member": first}).encode(),
                    headers={"Content-Type": "application/json"})
    assert r.status == 200, r
    second = forged_member(1, ports[1:], t)
    r = raw_request(n.port, "POST", "/members/join", body=json.dumps({"member": second}).encode(),
                    headers={"Content-Type": "application/json"})
    assert r.status >= 400, r
    assert "max_members" in r.json()["error"], r
    ids = sorted(m["id"] for m in n.members())
    assert ids == sorted(["full", "forged-0"]), ids
    wait_until(lambda: "member_refused" in n.log_text(), timeout=5)


def test_max_members_out_of_range_refused(kvs_bin, tmp_path):
    for v in (1, 4097):
        expect_config_error(kvs_bin, tmp_path, base_config(tmp_path, max_members=v),
                            "max_members", "must be between 2 and 4096")


def test_start_refused_leaves_no_process(node_factory):
    """Through the harness too: NodeError, exit status 2."""
    n = node_factory.create(extra={"bind_address": "0.0.0.0"})
    with pytest.raises(NodeError):
        n.start()
    assert n.returncode() == 2
    assert "protected mode" in n.log_text()
