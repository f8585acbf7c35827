"""Security: cluster secret, cluster_id, client bearer tokens, TLS (issue 9).

Every refusal has its own test: wrong secret, no secret, wrong cluster_id,
wrong token, a read token writing, plain HTTP to a TLS node.  The TLS tests
make a throwaway CA and node certificates with openssl in a temp dir and run
a three-node cluster over mutual TLS.

Secrets are at least 16 bytes and client tokens need a cluster secret (the
config refuses anything else: see test_secure_defaults.py), so every node
with tokens here has a secret too.
"""

import json
import os
import shutil
import subprocess
import time
import uuid

import pytest
import requests

from conftest import FAST_INTERVALS, HTTP_TIMEOUT, Node, NodeError, now_ms, wait_until

FAST = dict(FAST_INTERVALS)
SECRET = "s3cret-shared-by-the-cluster"
OTHER_SECRET = "another-cluster-s3cret"  # as long as SECRET allows, and wrong
READ_TOKEN = "read-token-0123456789abcdef"
WRITE_TOKEN = "write-token-0123456789abcdef"


def fake_member(node_id="intruder", address="127.0.0.1:1"):
    return {"id": node_id, "address": address, "last_seen": now_ms(),
            "joined_timestamp": 1, "incarnation": 1, "status": "alive"}


def push_body(key, value):
    return json.dumps({
        "from": fake_member(),
        "items": [{"key": key, "uuid": str(uuid.uuid4()), "timestamp": now_ms(),
                   "tombstone": False, "value": json.dumps(value)}],
    })


# ----------------------------------------------------------------- secret

def test_peer_endpoints_refuse_missing_or_wrong_secret(node_factory):
    n = node_factory.start(extra={"cluster_secret": SECRET})
    for headers in ({}, {"X-Kvs-Cluster-Secret": "wrong"},
                    {"X-Kvs-Cluster-Secret": SECRET + "x"}):
        r = n.request("POST", "/members/push", data=push_body("sec/a", 1), headers=headers)
        assert r.status_code == 401, r.text
        assert "error" in r.json()
        for path in ("/members/digests", "/members/recent", "/members/bucket?b=0"):
            assert n.get(path, headers=headers).status_code == 401
        r = n.request("POST", "/members/join", headers=headers,
                      data=json.dumps({"member": fake_member()}))
        assert r.status_code == 401
    # nothing was applied and the intruder is not a member
    assert n.get("/kv/sec/a").status_code == 404
    assert [m["id"] for m in n.members()] == [n.node_id]
    assert "peer_refused" in n.log_text()
    # the right secret is accepted
    r = n.request("POST", "/members/push", data=push_body("sec/a", 1),
                  headers={"X-Kvs-Cluster-Secret": SECRET})
    assert r.status_code == 200, r.text
    assert n.get_json("sec/a") == 1


def test_node_with_wrong_secret_cannot_join(node_factory):
    a = node_factory.start("a", extra=dict(FAST, cluster_secret=SECRET))
    b = node_factory.start("b", seeds=[a.address], extra=dict(FAST, cluster_secret=OTHER_SECRET),
                           wait=False)
    c = node_factory.start("c", seeds=[a.address], extra=FAST, wait=False)
    b.wait_ready()
    c.wait_ready()
    wait_until(lambda: "join_failed" in b.log_text() and "join_failed" in c.log_text(),
               timeout=10, msg="refused joins are logged by the joiners")
    time.sleep(0.5)  # give a wrongly accepted join a chance to show up
    assert {m["id"] for m in a.members()} == {"a"}
    a.put_json("only/a", 1)
    assert b.get("/kv/only/a").status_code == 404


def test_cluster_with_secret_replicates(node_factory):
    nodes = node_factory.cluster(3, extra=dict(FAST, cluster_secret=SECRET))
    wait_until(lambda: all(n.health()["member_count"] == 3 for n in nodes), timeout=20)
    nodes[0].put_json("s/k", {"v": 1})
    wait_until(lambda: all(n.get_json("s/k") == {"v": 1} for n in nodes), timeout=5)


def test_secret_file(node_factory, tmp_path):
    f = tmp_path / "secret"
    f.write_text(SECRET + "\n")
    n = node_factory.start(extra={"cluster_secret_file": str(f)})
    assert n.get("/members/digests").status_code == 401
    assert n.get("/members/digests", headers={"X-Kvs-Cluster-Secret": SECRET}).status_code == 200


def test_secret_and_secret_file_together_is_a_config_error(node_factory, tmp_path):
    f = tmp_path / "secret"
    f.write_text(SECRET)
    n = node_factory.create(extra={"cluster_secret": SECRET, "cluster_secret_file": str(f)})
    with pytest.raises(NodeError):
        n.start()
    assert n.returncode() == 2


# ------------------------------------------------------------- cluster_id

def test_wrong_cluster_id_is_refused(node_factory):
    a = node_factory.start("a", extra=dict(FAST, cluster_id="blue"))
    r = a.request("POST", "/members/push", data=push_body("cid/a", 1),
                  headers={"X-Kvs-Cluster-Id": "green"})
    assert r.status_code == 401
    assert "cluster_id" in r.json()["error"]
    b = node_factory.start("b", seeds=[a.address], extra=dict(FAST, cluster_id="green"))
    wait_until(lambda: "join_failed" in b.log_text(), timeout=10)
    assert {m["id"] for m in a.members()} == {"a"}
    assert a.get("/kv/cid/a").status_code == 404


# ----------------------------------------------------------------- tokens

@pytest.fixture
def token_node(node_factory):
    return node_factory.start(extra={
        "cluster_secret": SECRET,
        "auth_tokens": [f"read:{READ_TOKEN}", f"write:{WRITE_TOKEN}"]})


def bearer(t):
    return {"Authorization": f"Bearer {t}"}


def test_tokens_required(token_node):
    n = token_node
    for headers in ({}, bearer("not-a-valid-token-000000"), {"Authorization": WRITE_TOKEN}):
        r = n.put("/kv/t/a", "1", headers=headers)
        assert r.status_code == 401, r.text
        assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
        assert n.get("/kv/t/a", headers=headers).status_code == 401
        assert n.get("/kv/", headers=headers).status_code == 401
        assert n.get("/metrics", headers=headers).status_code == 401
        assert n.get("/members/", headers=headers).status_code == 401
    # /health stays open
    assert n.get("/health").status_code == 200


def test_read_token_reads_but_cannot_write(token_node):
    n = token_node
    assert n.put("/kv/t/b", "2", headers=bearer(WRITE_TOKEN)).status_code == 200
    r = n.put("/kv/t/b", "3", headers=bearer(READ_TOKEN))
    assert r.status_code == 403
    assert "error" in r.json()
    assert n.delete("/kv/t/b", headers=bearer(READ_TOKEN)).status_code == 403
    assert n.request("DELETE", "/members/leave", headers=bearer(READ_TOKEN)).status_code == 403
    r = n.get("/kv/t/b", headers=bearer(READ_TOKEN))
    assert r.status_code == 200 and r.json() == 2
    assert n.get("/metrics", headers=bearer(READ_TOKEN)).status_code == 200
    assert n.get("/kv/t/", headers=bearer(READ_TOKEN)).json()["keys"] == ["t/b"]
    assert n.delete("/kv/t/b", headers=bearer(WRITE_TOKEN)).status_code == 204


def test_bad_token_config_is_refused(node_factory):
    for tokens in (["admin:" + WRITE_TOKEN], ["read:short"], "read:" + READ_TOKEN):
        # with a secret: refused for the tokens themselves
        n = node_factory.create(extra={"cluster_secret": SECRET, "auth_tokens": tokens})
        with pytest.raises(NodeError):
            n.start()
        assert n.returncode() == 2
        assert "auth_tokens: " in n.log_text()


def test_tokens_without_secret_are_refused_at_start(node_factory, tmp_path):
    """Client tokens with the peer endpoints open would be a false sense of security."""
    n = node_factory.create(extra={"auth_tokens": [f"read:{READ_TOKEN}", f"write:{WRITE_TOKEN}"]})
    with pytest.raises(NodeError):
        n.start()
    assert n.returncode() == 2
    assert "auth_tokens need cluster_secret" in n.log_text()
    assert not n.data_dir.exists()
    # a secret file is as good as an inline secret
    f = tmp_path / "secret"
    f.write_text(SECRET + "\n")
    n.config["cluster_secret_file"] = str(f)
    n.start()
    assert n.get("/kv/x").status_code == 401
    assert n.get("/members/digests").status_code == 401


def test_short_secret_is_refused_at_start(node_factory):
    n = node_factory.create(extra={"cluster_secret": "0123456789"})
    with pytest.raises(NodeError):
        n.start()
    assert n.returncode() == 2
    assert "cluster_secret: must be at least 16 bytes" in n.log_text()


# -------------------------------------------------------------------- TLS

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A throwaway CA and one certificate for 127.0.0.1, made with openssl."""
    if not shutil.which("openssl"):
        pytest.skip("openssl command not installed")
    d = tmp_path_factory.mktemp("pki")

    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=kvs test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "node.key", "-out", "node.csr",
        "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "node.crt", "-days", "2", "-extfile", "ext.cnf")
    # a certificate from another CA: a stranger
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key",
        "-out", "other.crt", "-days", "2", "-subj", "/CN=127.0.0.1")
    return d


class TLSNode(Node):
    """A Node spoken to over HTTPS with the test CA and a client certificate."""

    def __init__(self, *a, pki=None, **kw):
        super().__init__(*a, **kw)
        self.pki = pki
        self.config.update({
            "tls_cert_file": str(pki / "node.crt"),
            "tls_key_file": str(pki / "node.key"),
            "tls_ca_file": str(pki / "ca.crt"),
            "tls_verify_peer": True,
        })

    def url(self, path="/"):
        return f"https://127.0.0.1:{self.port}{path if path.startswith('/') else '/' + path}"

    @property
    def http(self):
        if self._http is None:
            self._http = requests.Session()
            # REQUESTS_CA_BUNDLE in the environment would override .verify
            self._http.trust_env = False
            self._http.verify = str(self.pki / "ca.crt")
            self._http.cert = (str(self.pki / "node.crt"), str(self.pki / "node.key"))
        return self._http

    def wait_ready(self, timeout=15.0):
        def ready():
            if self.returncode() is not None:
                raise NodeError(f"{self} exited with {self.returncode()}\n{self.log_tail()}")
            return self.request("GET", "/health", timeout=1.0).status_code == 200
        wait_until(ready, timeout=timeout, msg=f"{self} ready over TLS")


def tls_cluster(node_factory, pki, count=3):
    nodes = []
    for i in range(count):
        n = TLSNode(node_factory.kvs_bin, node_factory.base / f"t{i + 1}", node_id=f"t{i + 1}",
                    extra=dict(FAST, cluster_secret=SECRET), pki=pki)
        node_factory.nodes.append(n)
        nodes.append(n)
    for n in nodes[1:]:
        n.config["seed_nodes"] = [nodes[0].address]
    for n in nodes:
        n.start(wait=False)
    for n in nodes:
        n.wait_ready(20)
    return nodes


def test_three_node_cluster_over_mutual_tls(node_factory, pki):
    nodes = tls_cluster(node_factory, pki)
    wait_until(lambda: all(n.health()["member_count"] == 3 for n in nodes), timeout=20,
               msg="three members over TLS")
    r = nodes[1].put("/kv/tls/k", json.dumps({"secure": True}))
    assert r.status_code == 200, r.text
    wait_until(lambda: all(n.get_json("tls/k") == {"secure": True} for n in nodes), timeout=5,
               msg="a write replicates over TLS")


def test_tls_refusals(node_factory, pki):
    (n,) = tls_cluster(node_factory, pki, count=1)
    # plain HTTP to a TLS port: no answer a client could mistake for success
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{n.port}/health", timeout=HTTP_TIMEOUT)
    # no client certificate (mutual TLS)
    with pytest.raises(requests.RequestException):
        requests.get(n.url("/health"), verify=str(pki / "ca.crt"), timeout=HTTP_TIMEOUT)
    # a client certificate from another CA
    with pytest.raises(requests.RequestException):
        requests.get(n.url("/health"), verify=str(pki / "ca.crt"),
                     cert=(str(pki / "other.crt"), str(pki / "other.key")), timeout=HTTP_TIMEOUT)
    # the node still serves good clients
    assert n.get("/health").status_code == 200


# A civetweb built without TLS, as http_start() sees it: mg_check_feature()
# with the TLS bit cleared, interposed with LD_PRELOAD (Debian's civetweb
# has TLS, so the branch is reachable only through this seam).
NO_TLS_SHIM = r"""
#include <dlfcn.h>
unsigned mg_check_feature(unsigned feature);
unsigned mg_check_feature(unsigned feature)
{
	unsigned (*real)(unsigned) = (unsigned (*)(unsigned))dlsym(RTLD_NEXT, "mg_check_feature");
	return real ? real(feature) & ~2u : 0; /* 2: MG_FEATURES_TLS */
}
"""


def test_tls_without_civetweb_tls_fails_cleanly(node_factory, pki, tmp_path):
    """TLS configured, civetweb without TLS: the start fails with its reason,
    exit 1, and nothing is freed twice (the server that failed to start was
    once stopped again by main: a double free; ASan runs catch any)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler to build the LD_PRELOAD shim")
    src, shim = tmp_path / "no_tls.c", tmp_path / "no_tls.so"
    src.write_text(NO_TLS_SHIM)
    subprocess.run([cc, "-D_GNU_SOURCE", "-shared", "-fPIC", "-o", str(shim), str(src), "-ldl"],
                   check=True, capture_output=True)
    # an ASan binary refuses a preload ahead of its runtime unless told not to
    asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0"]))
    n = node_factory.create(extra={"tls_cert_file": str(pki / "node.crt"),
                                   "tls_key_file": str(pki / "node.key")},
                            env={"LD_PRELOAD": str(shim), "ASAN_OPTIONS": asan})
    n.start(wait=False)
    rc = n.wait_exit(15)
    log = n.log_text()
    assert rc == 1, f"exit {rc}\n{log[-3000:]}"
    assert "this civetweb has no TLS support" in log, log[-3000:]
    for bad in ("double free", "AddressSanitizer", "free(): invalid", "Segmentation"):
        assert bad not in log, log[-3000:]
