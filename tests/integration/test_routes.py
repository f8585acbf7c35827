"""The route table (src/http/routes.c), walked row by row against a real node.

The table is read from the source, so a route added there is tested here
without a change to this file.  Every row names a path (exact, prefix, or a
prefix ending in '/'), its methods, its access and its metrics label; with
client tokens and a cluster secret configured:

* open routes answer without any credentials;
* read routes: 401 (with WWW-Authenticate: Bearer) without a token, served
  with a read token;
* write and admin routes: 401 without a token, 403 with a read token,
  served with a write token;
* peer routes: 401 without the secret, with a wrong secret and with another
  cluster id; served with the secret and no token at all;
* the rest of /members/: 401 without the secret, 404 with it;
* a method a route does not serve: the access check first (401/403 as the
  method would need; 401 for peer routes), then 405 with an Allow header
  listing exactly the route's methods;
* each request is counted under the row's metrics label.

"Served" means the handler ran: any status but 401, 403 and 405 (a peer
handler given the empty message {} answers 400, for instance).
"""

import re
from collections import OrderedDict
from pathlib import Path

import pytest

from conftest import assert_json_error, parse_metrics, wait_until

SECRET = "routes-secret-0123456789"
READ_TOKEN = "routes-read-token-0123456789"
WRITE_TOKEN = "routes-write-token-0123456789"
ROUTES_C = Path(__file__).resolve().parents[2] / "src" / "http" / "routes.c"
ALL_METHODS = ["GET", "HEAD", "PUT", "DELETE", "POST"]
METHOD_BITS = {"M_GET": ["GET"], "M_HEAD": ["HEAD"], "M_READ": ["GET", "HEAD"],
               "M_PUT": ["PUT"], "M_DELETE": ["DELETE"], "M_POST": ["POST"], "0": []}
ROW_RE = re.compile(r'\{\s*"([^"]+)",\s*(\w+),\s*([^,]+),\s*(AUTH_\w+),\s*(ROUTE_\w+)([^}]*)\}',
                    re.S)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


PEER = {"X-Kvs-Cluster-Secret": SECRET}


class Route:
    def __init__(self, path, match, methods, access, metric, rest):
        self.path, self.match, self.access = path, match, access
        self.methods = [m for part in methods.split("|") for m in METHOD_BITS[part.strip()]]
        self.label = metric[len("ROUTE_"):].lower()
        self.handler = re.search(r"\.(fn|msg)\s*=\s*(\w+)", rest)

    @property
    def sample(self):
        """A request path this row serves."""
        if self.path.startswith("/watch"):
            return self.path + "?wait=0"  # a watch answers at once, not after 60 s
        if self.match == "EXACT":
            return self.path
        if self.match == "PREFIX_DIR":
            return self.path + "routes-t/"
        if self.path == "/kv/":
            return self.path + "routes-t/k"
        if self.path == "/ui/":
            return self.path + "console.js"  # a file of the console
        return self.path + "no-such-route"

    def __repr__(self):
        return f"{self.path} ({self.match}) {'|'.join(self.methods) or '-'} {self.access}"


def table():
    text = ROUTES_C.read_text(encoding="utf-8")
    body = text[text.index("static const struct route routes[] = {"):]
    body = body[:body.index("\n};")]
    rows = [Route(*m.groups()) for m in ROW_RE.finditer(body)]
    # every row of the table was read: as many rows as lines opening one
    assert len(rows) >= 10 and len(rows) == len(re.findall(r'^\t\{ "', body, re.M)), rows
    return rows


ROUTES = table()


def resources():
    """Rows grouped by (path, match): one resource, its methods together."""
    out = OrderedDict()
    for r in ROUTES:
        out.setdefault((r.path, r.match), []).append(r)
    return out


def body_for(method):
    return b"1" if method in ("PUT", "POST") else None


def served(r):
    return r.status_code not in (401, 403, 405)


@pytest.fixture(scope="module")
def node(module_factory):
    return module_factory.start("r1", extra={
        "cluster_secret": SECRET,
        "auth_tokens": [f"read:{READ_TOKEN}", f"write:{WRITE_TOKEN}"]})


def call(node, route, method, headers):
    data = b"{}" if route.access == "AUTH_PEER" and method == "POST" else body_for(method)
    return node.request(method, route.sample, data=data, headers=headers)


def test_the_table_was_read():
    paths = {(r.path, r.access) for r in ROUTES}
    assert ("/health", "AUTH_OPEN") in paths
    assert ("/members/leave", "AUTH_ADMIN") in paths
    assert ("/members/push", "AUTH_PEER") in paths
    assert ("/kv/", "AUTH_WRITE") in paths
    assert all(r.handler or not r.methods for r in ROUTES), ROUTES


@pytest.mark.parametrize("route", [r for r in ROUTES if r.access == "AUTH_OPEN"], ids=repr)
def test_open_routes_need_nothing(node, route):
    for method in route.methods:
        r = call(node, route, method, {})
        assert r.status_code == 200, (method, r.status_code, r.text)


@pytest.mark.parametrize("route", [r for r in ROUTES if r.access == "AUTH_READ"], ids=repr)
def test_read_routes_need_a_token(node, route):
    for method in route.methods:
        for headers in ({}, bearer("not-a-token-0123456789"), {"Authorization": READ_TOKEN}):
            r = call(node, route, method, headers)
            assert r.status_code == 401, (method, headers, r.status_code, r.text)
            assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
        for token in (READ_TOKEN, WRITE_TOKEN):
            r = call(node, route, method, bearer(token))
            assert served(r), (method, r.status_code, r.text)


@pytest.mark.parametrize("route", [r for r in ROUTES if r.access in ("AUTH_WRITE", "AUTH_ADMIN")],
                         ids=repr)
def test_write_and_admin_routes_need_a_write_token(node, route):
    for method in route.methods:
        r = call(node, route, method, {})
        assert r.status_code == 401, (method, r.status_code, r.text)
        assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
        r = call(node, route, method, bearer(READ_TOKEN))
        assert_json_error(r, 403)
        # the peer secret is no client credential
        assert call(node, route, method, PEER).status_code == 401
        if route.access == "AUTH_ADMIN":
            continue  # served below, on a node of its own: it makes the node leave
        r = call(node, route, method, bearer(WRITE_TOKEN))
        assert served(r), (method, r.status_code, r.text)


def test_admin_routes_serve_a_write_token(node_factory):
    n = node_factory.start("a1", extra={
        "cluster_secret": SECRET,
        "auth_tokens": [f"read:{READ_TOKEN}", f"write:{WRITE_TOKEN}"]})
    admin = [r for r in ROUTES if r.access == "AUTH_ADMIN"]
    assert admin
    for route in admin:
        for method in route.methods:
            r = call(n, route, method, bearer(WRITE_TOKEN))
            assert served(r), (route, method, r.status_code, r.text)


@pytest.mark.parametrize("route", [r for r in ROUTES if r.access == "AUTH_PEER"], ids=repr)
def test_peer_routes_need_the_secret(node, route):
    methods = route.methods or ["GET", "POST"]
    for method in methods:
        for headers in ({}, {"X-Kvs-Cluster-Secret": "wrong-secret-0123456789"},
                        {"X-Kvs-Cluster-Secret": SECRET + "x"}, bearer(WRITE_TOKEN),
                        dict(PEER, **{"X-Kvs-Cluster-Id": "another-cluster"})):
            assert_json_error(call(node, route, method, headers), 401)
        r = call(node, route, method, PEER)
        if route.methods:
            assert served(r), (method, r.status_code, r.text)
        else:
            assert_json_error(r, 404)  # the rest of /members/: only a peer learns it is not there


@pytest.mark.parametrize("key", list(resources()), ids=[f"{p} ({m})" for p, m in resources()])
def test_wrong_methods(node, key):
    rows = resources()[key]
    served_methods = [m for r in rows for m in r.methods]
    if not served_methods:
        return  # no handler: 404 for every method (test_peer_routes_need_the_secret)
    route = rows[0]
    want_allow = [m for m in ALL_METHODS if m in served_methods]
    for method in [m for m in ALL_METHODS + ["PATCH", "OPTIONS"] if m not in served_methods]:
        reading = method in ("GET", "HEAD")
        access = route.access
        if access in ("AUTH_READ", "AUTH_WRITE", "AUTH_ADMIN"):
            # a client resource asks what the method would need
            assert call(node, route, method, {}).status_code == 401, method
            r = call(node, route, method, bearer(READ_TOKEN))
            assert r.status_code == (405 if reading else 403), (method, r.status_code)
            full = bearer(WRITE_TOKEN)
        elif access == "AUTH_PEER":
            assert call(node, route, method, {}).status_code == 401, method
            full = PEER
        else:
            full = {}
        r = call(node, route, method, full)
        assert r.status_code == 405, (method, r.status_code, r.text)
        if method != "HEAD":
            assert_json_error(r, 405)
        allow = [m.strip() for m in r.headers.get("Allow", "").split(",")]
        assert allow == want_allow, (method, r.headers.get("Allow"))


def test_kv_bad_path_before_wrong_method(node):
    """A bad /kv path is 400 whatever the method, as before the route table."""
    for method, path in (("POST", "/kv/a%2Fb"), ("PUT", "/kv/a%2F/"), ("POST", "/kv//")):
        r = node.request(method, path, data=b"1", headers=bearer(WRITE_TOKEN))
        assert_json_error(r, 400)


def requests_total(node):
    r = node.get("/metrics", headers=bearer(READ_TOKEN))
    assert r.status_code == 200, r.text
    out = {}
    for name, labels, value in parse_metrics(r.text):
        if name == "kvs_http_requests_total":
            key = (labels["route"], labels["method"], labels["status"])
            out[key] = out.get(key, 0) + value
    return out


@pytest.mark.parametrize("route", ROUTES, ids=repr)
def test_metrics_label(node, route):
    """Each row's requests are counted under its label, whatever the answer."""
    method = (route.methods or ["GET"])[0]
    headers = PEER if route.access == "AUTH_PEER" else bearer(WRITE_TOKEN)
    if route.access == "AUTH_ADMIN":
        headers = bearer(READ_TOKEN)  # 403: counted, and the node stays
    before = requests_total(node)
    r = call(node, route, method, headers)
    key = (route.label, method, str(r.status_code))
    wait_until(lambda: requests_total(node).get(key, 0) >= before.get(key, 0) + 1, timeout=5,
               msg=f"{key} counted")


def test_unknown_path_is_404_other(node):
    before = requests_total(node)
    r = node.get("/nowhere", headers=bearer(READ_TOKEN))
    assert_json_error(r, 404)
    key = ("other", "GET", "404")
    wait_until(lambda: requests_total(node).get(key, 0) >= before.get(key, 0) + 1, timeout=5)
