"""SPEC sections 1 and 2: command line and configuration file."""

import re
import socket
import subprocess
import time

import pytest
import requests
import yaml

from conftest import REPO, free_port, port_is_free, wait_until, write_config

SPEC_KEYS = [
    "node_id", "bind_address", "port", "advertise_address", "data_dir", "seed_nodes",
    "read_only", "log_level", "gossip_interval_min", "gossip_interval_max", "sync_interval",
    "sync_items", "catchup_interval", "bootstrap_max_age_hours", "throttle_delay_ms",
    "fetch_delay_ms", "failure_timeout", "removal_timeout",
    "max_value_bytes", "http_threads", "sync_writes", "log_format", "probe_interval",
    "anti_entropy_interval", "tombstone_grace", "cluster_secret", "max_members", "protected_mode",
]


def run(kvs_bin, *args, cwd=None, timeout=10):
    return subprocess.run([str(kvs_bin), *map(str, args)], cwd=cwd, capture_output=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def good_config(tmp_path, **over):
    cfg = {"node_id": "cfgtest", "bind_address": "127.0.0.1", "port": free_port(),
           "data_dir": str(tmp_path / "data"), "log_level": "info", "seed_nodes": []}
    cfg.update(over)
    return cfg


# ---------------------------------------------------------------- flags

def test_version(kvs_bin, tmp_path):
    p = run(kvs_bin, "--version", cwd=tmp_path)
    assert p.returncode == 0, p
    out = p.stdout.decode()
    assert re.search(r"\d+\.\d+", out), out


def test_help(kvs_bin, tmp_path):
    p = run(kvs_bin, "--help", cwd=tmp_path)
    assert p.returncode == 0, p
    out = p.stdout.decode() + p.stderr.decode()
    assert "--check-config" in out and "--version" in out, out


def test_unknown_flag_fails_without_starting(kvs_bin, tmp_path):
    p = run(kvs_bin, "--bogus-flag", cwd=tmp_path)
    assert p.returncode != 0, p
    assert not (tmp_path / "data").exists()


# ---------------------------------------------------------------- --check-config

def test_check_config_good(kvs_bin, tmp_path):
    cfg = good_config(tmp_path, node_id="alpha", port=18123, sync_items=42)
    path = tmp_path / "good.yaml"
    write_config(path, cfg)
    p = run(kvs_bin, "--check-config", path, cwd=tmp_path)
    assert p.returncode == 0, p
    out = p.stdout.decode()
    assert "alpha" in out and "18123" in out and "42" in out, out
    for key in SPEC_KEYS:
        if key == "cluster_secret":
            continue  # may be hidden when unset
        assert key in out, f"effective setting {key} missing from:\n{out}"
    assert not (tmp_path / "data").exists(), "--check-config must not create the data dir"


def test_check_config_output_is_yaml_with_effective_values(kvs_bin, tmp_path):
    path = tmp_path / "c.yaml"
    write_config(path, {"port": 18124, "data_dir": str(tmp_path / "d")})
    p = run(kvs_bin, "--check-config", path, cwd=tmp_path)
    assert p.returncode == 0, p
    doc = yaml.safe_load(p.stdout.decode())
    assert isinstance(doc, dict), p.stdout
    assert doc["port"] == 18124
    assert doc["node_id"] == socket.gethostname()  # default: hostname
    assert doc["bind_address"] == "127.0.0.1"
    assert doc["advertise_address"] == "127.0.0.1:18124"
    assert doc["sync_interval"] == 300 and doc["sync_items"] == 15
    assert doc["max_value_bytes"] == 1048576 and doc["read_only"] is False
    assert doc["gossip_interval_min"] == 60 and doc["gossip_interval_max"] == 120


def test_check_config_all_keys_accepted(kvs_bin, tmp_path):
    cfg = {
        "node_id": "full", "bind_address": "127.0.0.1", "port": 18125,
        "advertise_address": "127.0.0.1:18125", "data_dir": str(tmp_path / "d"),
        "seed_nodes": ["127.0.0.1:18126", "127.0.0.1:18127"], "read_only": True,
        "log_level": "debug", "gossip_interval_min": 5, "gossip_interval_max": 10,
        "sync_interval": 30, "sync_items": 20, "catchup_interval": 12,
        "bootstrap_max_age_hours": 24, "throttle_delay_ms": 10, "fetch_delay_ms": 5,
        "failure_timeout": 30, "removal_timeout": 60, "max_value_bytes": 4096,
        "http_threads": 16, "sync_writes": True, "log_format": "json", "probe_interval": 2,
        "cache_bytes": 0, "anti_entropy_interval": 15, "tombstone_grace": 3600,
        "cluster_secret": "s3cret-of-16-bytes-or-more", "max_members": 100, "protected_mode": False,
    }
    path = tmp_path / "full.yaml"
    write_config(path, cfg)
    p = run(kvs_bin, "--check-config", path, cwd=tmp_path)
    assert p.returncode == 0, p
    doc = yaml.safe_load(p.stdout.decode())
    for k, v in cfg.items():
        if k == "cluster_secret":
            continue  # may be masked
        assert doc.get(k) == v, f"{k}: wrote {v!r}, effective {doc.get(k)!r}"


def test_check_config_plain_yaml_styles(kvs_bin, tmp_path):
    # block sequences, comments, quoted and unquoted scalars
    path = tmp_path / "styles.yaml"
    path.write_text(
        "# comment\n"
        "node_id: 'quoted'\n"
        "port: 18128   # trailing comment\n"
        f"data_dir: \"{tmp_path / 'd'}\"\n"
        "seed_nodes:\n"
        "  - 127.0.0.1:18129\n"
        "  - \"127.0.0.1:18130\"\n"
        "read_only: false\n"
        "log_level: warn\n")
    p = run(kvs_bin, "--check-config", path, cwd=tmp_path)
    assert p.returncode == 0, p
    doc = yaml.safe_load(p.stdout.decode())
    assert doc["node_id"] == "quoted" and doc["port"] == 18128
    assert doc["seed_nodes"] == ["127.0.0.1:18129", "127.0.0.1:18130"]


BAD_CONFIGS = [
    # (name, lines, line number of the error, key named in the message or None)
    ("unknown-key", ["node_id: a", "port: 18131", "bogus_key: 1"], 3, "bogus_key"),
    ("port-wrong-type", ["node_id: a", "port: abc"], 2, "port"),
    ("port-out-of-range", ["node_id: a", "data_dir: /tmp/x", "port: 70000"], 3, "port"),
    ("port-zero", ["port: 0"], 1, "port"),
    ("port-negative", ["port: -1"], 1, "port"),
    ("bool-wrong-type", ["port: 18132", "read_only: maybe"], 2, "read_only"),
    ("log-level-invalid", ["log_level: verbose"], 1, "log_level"),
    ("log-format-invalid", ["port: 18133", "log_format: xml"], 2, "log_format"),
    ("seeds-not-a-list", ["seed_nodes: {a: 1}"], 1, "seed_nodes"),
    ("negative-max-value", ["max_value_bytes: -5"], 1, "max_value_bytes"),
    ("negative-cache", ["cache_bytes: -1"], 1, "cache_bytes"),
    ("huge-cache", ["cache_bytes: 1099511627777"], 1, "cache_bytes"),
    ("float-for-int", ["sync_items: 1.5"], 1, "sync_items"),
    ("max-members-too-small", ["port: 18134", "max_members: 1"], 2, "max_members"),
    ("max-members-too-big", ["max_members: 4097"], 1, "max_members"),
    ("protected-mode-wrong-type", ["protected_mode: off"], 1, "protected_mode"),
    # secure by default: a non-loopback bind needs a secret (or protected_mode: false),
    # tokens need a secret, a secret needs 16 bytes
    ("open-on-all-interfaces", ["node_id: a", "bind_address: 0.0.0.0"], 2, "bind_address"),
    ("open-on-an-interface", ["bind_address: 10.1.2.3", "port: 18135"], 1, "bind_address"),
    ("tokens-without-secret", ["port: 18136", "auth_tokens: ['read:0123456789abcdef']"], 2,
     "auth_tokens"),
    ("short-secret", ["cluster_secret: 0123456789abcde"], 1, "cluster_secret"),
    ("ipv6-seed", ["seed_nodes: ['[::1]:8080']"], 1, "seed_nodes"),
    ("bad-ipv4-advertise", ["advertise_address: 10.0.0.300:8080"], 1, "advertise_address"),
    ("bad-yaml", ["node_id: a", "port: [1, 2", "log_level: info"], None, None),
    ("bad-yaml-indent", ["node_id: a", "  port: 1", " x"], None, None),
    ("not-a-mapping", ["- a", "- b"], None, None),
]


@pytest.mark.parametrize("name,lines,line,key", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_check_config_bad(kvs_bin, tmp_path, name, lines, line, key):
    path = tmp_path / "bad.yaml"
    path.write_text("\n".join(lines) + "\n")
    p = run(kvs_bin, "--check-config", path, cwd=tmp_path)
    assert p.returncode == 2, p
    err = p.stderr.decode()
    err_lines = err.strip("\n").splitlines()
    assert len(err_lines) == 1, f"expected ONE line on stderr, got:\n{err}"
    msg = err_lines[0]
    m = re.match(r"^(.+?):(\d+): (.+)$", msg)
    assert m and m.group(1) == str(path), f"not FILE:LINE: ...: {msg!r}"
    if line is not None:
        assert int(m.group(2)) == line, msg
    if key is not None:
        assert m.group(3).startswith(f"{key}: ") and len(m.group(3)) > len(key) + 2, msg


def test_check_config_missing_file(kvs_bin, tmp_path):
    path = tmp_path / "absent.yaml"
    p = run(kvs_bin, "--check-config", path, cwd=tmp_path)
    assert p.returncode == 2, p
    assert str(path) in p.stderr.decode()
    assert not path.exists(), "--check-config must not write a default config"


# ---------------------------------------------------------------- starting on a config

def test_start_on_bad_config_exits_2_without_data_dir(kvs_bin, tmp_path):
    data = tmp_path / "must-not-exist"
    path = tmp_path / "bad.yaml"
    path.write_text(f"node_id: a\nport: {free_port()}\ndata_dir: {data}\nno_such_key: 1\n")
    p = run(kvs_bin, path, cwd=tmp_path)
    assert p.returncode == 2, p
    err = p.stderr.decode()
    assert re.search(rf"^{re.escape(str(path))}:4: no_such_key: .+", err, re.M), err
    assert not data.exists(), "an invalid config must stop the node before the data dir"


def test_start_on_out_of_range_port_exits_2(kvs_bin, tmp_path):
    data = tmp_path / "d"
    path = tmp_path / "bad.yaml"
    path.write_text(f"data_dir: {data}\nport: 70000\n")
    p = run(kvs_bin, path, cwd=tmp_path)
    assert p.returncode == 2, p
    assert re.search(rf"{re.escape(str(path))}:2: port: ", p.stderr.decode()), p.stderr
    assert not data.exists()


def test_missing_config_creates_default_and_starts(kvs_bin, tmp_path):
    """A nonexistent CONFIG gets a commented default config written and the node starts.

    The default port is 8080, which may be busy on this machine: if it is, the
    node may fail to bind; the file must be written either way.
    """
    path = tmp_path / "new.yaml"
    free_8080 = port_is_free(8080)
    proc = subprocess.Popen([str(kvs_bin), str(path)], cwd=tmp_path, stdin=subprocess.DEVNULL,
                            stdout=open(tmp_path / "out.log", "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_until(lambda: path.exists() and path.stat().st_size > 0, timeout=10,
                   msg="default config written")
        if free_8080:
            def healthy():
                if proc.poll() is not None:
                    raise AssertionError(f"node exited {proc.returncode}: "
                                         f"{(tmp_path / 'out.log').read_text()[-2000:]}")
                r = requests.get("http://127.0.0.1:8080/health", timeout=1)
                return r.status_code == 200 and r.json()
            h = wait_until(healthy, timeout=15, msg="node on default port 8080")
            assert h["node_id"] == socket.gethostname(), h
            assert (tmp_path / "data").is_dir(), "default data_dir ./data, relative to the cwd"
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    text = path.read_text()
    for key in SPEC_KEYS:
        assert re.search(rf"^\s*#?\s*{key}\s*:", text, re.M), f"default config lacks {key}:\n{text}"
    assert "#" in text, "the default config is commented"
    # the file written is the generated default text, which config/kvs.yaml holds
    assert text == (REPO / "config" / "kvs.yaml").read_text(), "written default != config/kvs.yaml"
    p = run(kvs_bin, "--check-config", path, cwd=tmp_path)
    assert p.returncode == 0, p
    doc = yaml.safe_load(p.stdout.decode())
    assert doc["port"] == 8080 and doc["data_dir"] in ("./data", "data")


def test_started_node_uses_config_values(node_factory):
    n = node_factory.start("cfgnode", extra={"max_value_bytes": 100})
    h = n.health()
    assert h["node_id"] == "cfgnode"
    assert n.put("/kv/a", b'"' + b"x" * 98 + b'"').status_code == 200
    assert n.put("/kv/a", b'"' + b"x" * 99 + b'"').status_code == 413
    assert n.data_dir.is_dir(), "data_dir created if missing"


def test_port_busy_exits_nonzero(node_factory):
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        n = node_factory.create("busy", port=busy.getsockname()[1])
        n.start(wait=False)
        t0 = time.monotonic()
        rc = n.wait_exit(10)
        assert rc is not None, "node on a busy port must exit, not hang"
        assert rc != 0
        assert time.monotonic() - t0 < 10
    finally:
        busy.close()
