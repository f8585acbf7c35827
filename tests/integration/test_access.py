"""
Access control and audit (SPEC section 12, issue 19), on real processes.

What is checked:

* every client route against every kind of caller: no token, an unknown one,
  a "read:" and a "write:" token, a scoped token (prefix rules with a nested
  deny) and a scoped admin token: 401 with WWW-Authenticate, 403, or served,
  as the README's table says; peer routes never take a client token;
* listings and watches return only the keys a token may read (nested
  prefixes, deny), never a count of what they hid, and page through all of
  them; a transaction with one forbidden key is refused whole (403) and
  changes nothing;
* tokens from token_sha256, token_env, token_file and auth_tokens_file;
  ``--check-config`` prints names and rules, never a token;
* every bad token or rule config exits 2 naming the file and line;
* the audit log: a line for a write, a delete, a transaction, an admin
  request and refused ones, with the token's name and never a token;
  reopened on SIGHUP (logrotate).

Waits are wait-untils with deadlines.
"""

import hashlib
import json
import os
import signal
import subprocess

import pytest

from conftest import NodeError, assert_json_error, wait_until, write_config

SECRET = "cluster-secret-0123456789"
READ = "read-token-0123456789"
WRITE = "write-token-0123456789"
APP = "app-token-0123456789ab"
ADMIN = "admin-token-0123456789"
NOBODY = "unknown-token-0123456789"

SCOPED = {"name": "app", "token": APP, "rules": [
    {"prefix": "app/", "access": "write"},
    {"prefix": "app/secret/", "access": "deny"},
    {"prefix": "app/secret/open/", "access": "read"},
    {"prefix": "shared/", "access": "read"}]}
ADMIN_TOKEN = {"name": "ops", "token_sha256": hashlib.sha256(ADMIN.encode()).hexdigest(),
               "admin": True, "rules": [{"prefix": "", "access": "read"}]}

KEYS = ["app/a", "app/secret/s", "app/secret/open/o", "shared/b", "other/c"]


def bearer(t):
    return {"Authorization": f"Bearer {t}"} if t else {}


def base_config(tmp_path, **extra):
    cfg = {"cluster_secret": SECRET,
           "auth_tokens": [f"read:{READ}", f"write:{WRITE}", SCOPED, ADMIN_TOKEN],
           "audit_log": str(tmp_path / "audit.log")}
    cfg.update(extra)
    return cfg


@pytest.fixture(scope="module")
def anode(module_factory, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("access")
    n = module_factory.start("acl", extra=base_config(tmp))
    n.audit_path = tmp / "audit.log"
    for k in KEYS:
        assert n.put("/kv/" + k, json.dumps(k), headers=bearer(WRITE)).status_code == 200
    return n


def audit_lines(n):
    if not os.path.exists(n.audit_path):
        return []
    return [json.loads(x) for x in open(n.audit_path, encoding="utf-8") if x.strip()]


# ==========================================================================
# the route table, by caller

CALLERS = {"none": None, "unknown": NOBODY, "read": READ, "write": WRITE, "app": APP,
           "admin": ADMIN}

# (method, path, body, {caller: expected status})
MATRIX = [
    ("GET", "/health", None, dict.fromkeys(CALLERS, 200)),
    ("GET", "/metrics", None, dict(none=401, unknown=401, read=200, write=200, app=200, admin=200)),
    ("GET", "/members/", None, dict(none=401, unknown=401, read=200, write=200, app=200, admin=200)),
    ("GET", "/kv/app/a", None, dict(none=401, unknown=401, read=200, write=200, app=200, admin=200)),
    ("GET", "/kv/app/secret/s", None,
     dict(none=401, unknown=401, read=200, write=200, app=403, admin=200)),
    ("GET", "/kv/app/secret/open/o", None,
     dict(none=401, unknown=401, read=200, write=200, app=200, admin=200)),
    ("GET", "/kv/other/c", None, dict(none=401, unknown=401, read=200, write=200, app=403, admin=200)),
    ("PUT", "/kv/app/new", '"v"', dict(none=401, unknown=401, read=403, write=200, app=200, admin=403)),
    ("PUT", "/kv/shared/b", '"v"', dict(none=401, unknown=401, read=403, write=200, app=403, admin=403)),
    ("PUT", "/kv/app/secret/open/o", '"v"',
     dict(none=401, unknown=401, read=403, write=200, app=403, admin=403)),
    ("DELETE", "/kv/other/c", None, dict(none=401, unknown=401, read=403, app=403, admin=403)),
    ("GET", "/kv/", None, dict(none=401, unknown=401, read=200, write=200, app=200, admin=200)),
    ("POST", "/txn", json.dumps({"ops": [{"op": "put", "key": "app/t", "value": 1}]}),
     dict(none=401, unknown=401, read=403, write=200, app=200, admin=403)),
    ("GET", "/watch/app/a?wait=0s", None,
     dict(none=401, unknown=401, read=200, write=200, app=200, admin=200)),
    ("GET", "/watch/other/c?wait=0s", None,
     dict(none=401, unknown=401, read=200, write=200, app=403, admin=200)),
    ("GET", "/watch/?wait=0s", None,
     dict(none=401, unknown=401, read=200, write=200, app=200, admin=200)),
    ("DELETE", "/members/leave", None, dict(none=401, unknown=401, read=403, app=403)),
]


@pytest.mark.parametrize("method,path,body,want", MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_route_by_caller(anode, method, path, body, want):
    for who, expected in want.items():
        r = anode.request(method, path, data=body, headers=bearer(CALLERS[who]))
        assert r.status_code == expected, f"{who}: {method} {path} -> {r.status_code} {r.text[:200]}"
        if expected == 401:
            assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), who
        if expected >= 400:
            assert_json_error(r, expected)


def test_peer_routes_never_take_a_client_token(anode):
    for t in (WRITE, APP, ADMIN):
        r = anode.request("POST", "/members/push", json={"from": {}, "items": []},
                          headers=bearer(t))
        assert r.status_code == 401, (t, r.status_code)


def test_admin_may_leave(node_factory, tmp_path):
    n = node_factory.start("leaver", extra=base_config(tmp_path))
    r = n.delete("/members/leave", headers=bearer(ADMIN))
    assert r.status_code == 200, r.text


# ==========================================================================
# filtering

def test_listing_shows_only_readable_keys_and_pages(anode):
    r = anode.get("/kv/", headers=bearer(APP))
    doc = r.json()
    want = ["app/a", "app/secret/open/o", "shared/b"]
    got = [k for k in doc["keys"] if k in KEYS]
    assert got == want, doc
    assert doc["count"] == len(doc["keys"]), "count is what was returned"
    # page by page, one key a page: the same keys, and the pages end
    seen, after = [], None
    for _ in range(100):
        params = {"limit": "1"}
        if after:
            params["after"] = after
        page = anode.get("/kv/", params=params, headers=bearer(APP)).json()
        seen += page["keys"]
        after = page["next"]
        if after is None:
            break
    assert [k for k in seen if k in KEYS] == want
    assert all(not k.startswith(("other/", "app/secret/s")) for k in seen)
    # values too
    items = anode.get("/kv/app/", params={"values": "true"}, headers=bearer(APP)).json()["items"]
    assert "app/secret/s" not in [i["key"] for i in items]


def test_watch_shows_only_readable_keys(anode):
    start = int(anode.get("/kv/", headers=bearer(WRITE)).headers["X-Kvs-Index"])
    for k in ("app/w1", "other/w2", "app/secret/w3", "shared/w4"):
        anode.put("/kv/" + k, "1", headers=bearer(WRITE))
    r = anode.get("/watch/", params={"index": str(start), "wait": "1s"}, headers=bearer(APP))
    keys = [e["key"] for e in r.json()["events"]]
    assert keys == ["app/w1", "shared/w4"], keys


def test_txn_with_one_forbidden_key_changes_nothing(anode):
    before = anode.get("/kv/app/a", headers=bearer(WRITE)).headers["ETag"]
    idx = anode.get("/kv/", headers=bearer(WRITE)).headers["X-Kvs-Index"]
    r = anode.request("POST", "/txn", headers=bearer(APP), data=json.dumps({"ops": [
        {"op": "put", "key": "app/a", "value": "changed"},
        {"op": "put", "key": "shared/b", "value": "nope"}]}))
    doc = assert_json_error(r, 403)
    assert "ops[1]" in doc["error"]
    assert anode.get("/kv/app/a", headers=bearer(WRITE)).headers["ETag"] == before
    assert anode.get("/kv/", headers=bearer(WRITE)).headers["X-Kvs-Index"] == idx


# ==========================================================================
# token sources and config errors

def check_config(kvs_bin, path, env=None):
    return subprocess.run([str(kvs_bin), "--check-config", str(path)], capture_output=True,
                          text=True, timeout=10, env=env)


def test_token_env_file_and_tokens_file(node_factory, tmp_path):
    tfile = tmp_path / "t.secret"
    tfile.write_text("file-token-0123456789\n")
    more = tmp_path / "tokens.yaml"
    more.write_text('- "read:more-token-0123456789"\n'
                    '- {name: fromfile, token: "listed-token-0123456789", '
                    'rules: [{prefix: "", access: write}]}\n')
    n = node_factory.create("src", env={"KVS_TEST_TOKEN": "env-token-0123456789"}, extra={
        "cluster_secret": SECRET, "auth_tokens_file": str(more), "auth_tokens": [
            {"name": "env", "token_env": "KVS_TEST_TOKEN", "rules": [{"prefix": "", "access": "read"}]},
            {"name": "file", "token_file": str(tfile), "rules": [{"prefix": "", "access": "read"}]}]})
    n.start()
    for t in ("env-token-0123456789", "file-token-0123456789", "more-token-0123456789",
              "listed-token-0123456789"):
        assert n.get("/kv/", headers=bearer(t)).status_code == 200, t
    assert n.put("/kv/x", "1", headers=bearer("listed-token-0123456789")).status_code == 200
    assert n.put("/kv/x", "1", headers=bearer("env-token-0123456789")).status_code == 403
    out = check_config(n.kvs_bin, n.config_path, env=n.env).stdout
    for secret in ("env-token", "file-token", "more-token", "listed-token", SECRET):
        assert secret not in out, f"--check-config printed a secret: {secret}"
    assert "env:" in out and "fromfile:" in out and "4 token(s)" in out, out


BAD = [
    ({"name": "x", "token": APP, "rules": [{"prefix": "a/", "access": "sometimes"}]}, "access must be"),
    ({"name": "x", "token": APP, "rules": [{"prefix": "a/", "access": "read"},
                                          {"prefix": "a/", "access": "write"}]}, "given twice"),
    ({"name": "x", "token_sha256": "zz" * 32}, "64 hex digits"),
    ({"name": "x", "token_sha256": "ab"}, "64 hex digits"),
    ({"token": APP}, "needs a name"),
    ({"name": "x", "token": APP, "token_sha256": "ab" * 32}, "exactly one of"),
    ({"name": "x"}, "exactly one of"),
    ({"name": "x", "token": "short"}, "16 to"),
    ({"name": "x", "token_env": "KVS_SURELY_UNSET_VAR"}, "not set"),
    ({"name": "x", "token": APP, "admin": "maybe"}, "admin must be"),
    ({"name": "x", "token": APP, "color": "red"}, "unknown token member"),
    ({"name": "bad name", "token": APP}, "name must be"),
    ({"name": "x", "token": APP, "rules": [{"prefix": "a/"}]}, "needs prefix and access"),
]


@pytest.mark.parametrize("entry,why", BAD, ids=[w for _, w in BAD])
def test_bad_token_configs_exit_2_naming_the_line(kvs_bin, tmp_path, entry, why):
    cfg = {"node_id": "bad", "port": 1, "data_dir": str(tmp_path / "d"), "cluster_secret": SECRET,
           "auth_tokens": [f"read:{READ}", entry]}
    lines = write_config(tmp_path / "c.yaml", cfg)
    p = check_config(kvs_bin, tmp_path / "c.yaml")
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    msg = p.stderr + p.stdout
    assert why in msg, msg
    assert f"c.yaml:{lines['auth_tokens']}" in msg, msg


def test_duplicate_token_names_refused(kvs_bin, tmp_path):
    cfg = {"node_id": "bad", "port": 1, "data_dir": str(tmp_path / "d"), "cluster_secret": SECRET,
           "auth_tokens": [dict(SCOPED), dict(SCOPED, token=WRITE)]}
    write_config(tmp_path / "c.yaml", cfg)
    p = check_config(kvs_bin, tmp_path / "c.yaml")
    assert p.returncode == 2 and "used twice" in p.stderr + p.stdout


# ==========================================================================
# the audit log

def test_audit_lines_and_no_token_in_them(anode):
    anode.put("/kv/app/audited", "1", headers=bearer(APP))
    anode.delete("/kv/app/audited", headers=bearer(APP))
    anode.request("POST", "/txn", headers=bearer(WRITE),
                  data=json.dumps({"ops": [{"op": "put", "key": "aud/t", "value": 1}]}))
    anode.put("/kv/other/c", "1", headers=bearer(APP))          # 403
    anode.get("/kv/app/a", headers=bearer(NOBODY))              # 401
    anode.delete("/members/leave", headers=bearer(READ))        # admin route, refused
    anode.get("/kv/app/a", headers=bearer(READ))                # a read: not audited

    def have_all():
        lines = audit_lines(anode)
        want = {("PUT", "/kv/app/audited", 200, "app"), ("DELETE", "/kv/app/audited", 204, "app"),
                ("POST", "/txn", 200, "write-2"), ("PUT", "/kv/other/c", 403, "app"),
                ("GET", "/kv/app/a", 401, None), ("DELETE", "/members/leave", 403, "read-1")}
        got = {(x["method"], x["path"], x["status"], x["token"]) for x in lines}
        return want <= got
    wait_until(have_all, 5, msg="audit lines for each kind")
    text = open(anode.audit_path, encoding="utf-8").read()
    for secret in (READ, WRITE, APP, ADMIN, NOBODY, SECRET):
        assert secret not in text, "the audit log holds a token"
    for x in audit_lines(anode):
        assert set(x) == {"time", "token", "remote", "method", "path", "status"}, x
        assert x["remote"] == "127.0.0.1"
    reads = [x for x in audit_lines(anode) if x["method"] == "GET" and x["status"] == 200]
    assert not reads, "reads are not audited"


def test_audit_reopened_on_sighup(node_factory, tmp_path):
    n = node_factory.start("rot", extra=base_config(tmp_path))
    log = tmp_path / "audit.log"
    r = n.put("/kv/app/one", "1", headers=bearer(APP))
    assert r.status_code == 200, r.text  # (a refused request would never reach the audit)
    wait_until(lambda: log.exists() and "app/one" in log.read_text(), 15)
    os.rename(log, tmp_path / "audit.log.1")
    n.send_signal(signal.SIGHUP)
    # the event, not the bare word: this test's own directory, in the node_started line's
    # data_dir, is named test_audit_reopened_...
    wait_until(lambda: " audit_reopen file=" in n.log_text(), 15)
    r = n.put("/kv/app/two", "1", headers=bearer(APP))
    assert r.status_code == 200, r.text
    wait_until(lambda: log.exists() and "app/two" in log.read_text(), 15,
               msg="the audit log was not reopened")
    assert "app/two" not in (tmp_path / "audit.log.1").read_text()
    assert n.running()


def test_unwritable_audit_log_refuses_to_start(node_factory, tmp_path):
    n = node_factory.create("noaudit", extra=base_config(tmp_path,
                                                        audit_log="/nonexistent/dir/audit.log"))
    with pytest.raises(NodeError):
        n.start()
    assert n.returncode() != 0 and "audit_log: cannot open" in n.log_text()
