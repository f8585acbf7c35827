"""
Network namespaces for kvs fault tests (TESTING.md, "Network faults").

``Lab``       a private network: one namespace holding a bridge, and one namespace
              per node joined to it by a veth pair, addresses 10.199.0.N/24 only
              inside those namespaces.  A guard route ``blackhole 10.199.0.0/16``
              in the root namespace makes any client started there by mistake fail
              locally.  ``close()`` stops the nodes, removes the namespaces (with
              their links and iptables rules) and the guard route (unless another
              test run's lab still exists: the last one removes it); never raises.
``NsNode``    a conftest ``Node`` started with ``ip netns exec`` inside a lab
              namespace, bound to its 10.199.0.N address; every HTTP request the
              harness helpers make (get, put, list_all, wait_ready...) goes through
              an ``NsClient`` running inside a namespace.  A non-loopback address
              needs a cluster secret (protected mode), so NsNodes share
              ``LAB_SECRET`` unless their extra config names a secret of its own or
              ``protected_mode``.
``NsClient``  a small python process started with ``ip netns exec NS python3
              netns.py client``: it reads one JSON request per line on stdin, sends
              it with requests.Session (keep-alive) and answers one JSON line.  Its
              ``request()`` looks like requests.Session.request and returns an
              object with status_code, headers, text, content and json().

This file is also the client program (``python3 netns.py client``).
"""

import base64
import json
import os
import re
import select
import subprocess
import sys
import time

GUARD = "10.199.0.0/16"
SUBNET = "10.199.0"
LAB_SECRET = "kvs-netns-lab-cluster-secret"  # every lab node's, by default


# --------------------------------------------------------------------------
# the client process (runs inside a namespace)

def _client_main():
    import requests  # only the child needs it at import time
    s = requests.Session()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            data = req.get("data")
            if data is not None:
                data = base64.b64decode(data)
            r = s.request(req["method"], req["url"], data=data, params=req.get("params"),
                          headers=req.get("headers"), timeout=req.get("timeout", 10.0))
            out = {"status": r.status_code, "headers": dict(r.headers),
                   "body": base64.b64encode(r.content).decode()}
        except Exception as e:  # reported to the caller as an exception
            out = {"error": type(e).__name__, "message": str(e)}
            s.close()
            s = requests.Session()
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


# --------------------------------------------------------------------------
# the caller side

class NsError(OSError):
    """A request through an NsClient failed (connection refused, timeout...).

    An OSError, so that conftest.wait_until counts it as "not yet"."""


class NsResponse:
    def __init__(self, status, headers, content):
        self.status_code = status
        self.headers = _CaseInsensitive(headers)
        self.content = content

    @property
    def text(self):
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.content)

    def __repr__(self):
        return f"<NsResponse {self.status_code} {self.content[:200]!r}>"


class _CaseInsensitive(dict):
    def __init__(self, d):
        super().__init__({k.lower(): v for k, v in d.items()})

    def get(self, k, default=None):
        return super().get(k.lower(), default)

    def __getitem__(self, k):
        return super().__getitem__(k.lower())

    def __contains__(self, k):
        return super().__contains__(k.lower())


def run(cmd, check=True):
    """Runs an argv list; returns CompletedProcess (text).  check=True raises with stderr."""
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


def nsrun(ns, *cmd, check=True):
    return run(["ip", "netns", "exec", ns] + list(cmd), check=check)


class NsClient:
    """An HTTP client process inside namespace ns (see module doc)."""

    def __init__(self, ns):
        self.ns = ns
        self.proc = None

    def _ensure(self):
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, sys.executable, os.path.abspath(__file__), "client"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                start_new_session=True)
        return self.proc

    def request(self, method, url, data=None, params=None, headers=None, timeout=10.0, **_):
        if isinstance(data, str):
            data = data.encode("utf-8")
        req = {"method": method, "url": url, "params": params, "headers": headers,
               "timeout": timeout,
               "data": base64.b64encode(data).decode() if data is not None else None}
        p = self._ensure()
        try:
            p.stdin.write((json.dumps(req) + "\n").encode())
            p.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            self.close()
            raise NsError(f"netns client in {self.ns} died: {e}")
        # the child applies the timeout (connect and read each); allow for both plus start-up
        ready, _, _ = select.select([p.stdout], [], [], 2 * float(timeout) + 10.0)
        if not ready:
            self.close()
            raise NsError(f"netns client in {self.ns}: no answer for {method} {url}")
        line = p.stdout.readline()
        if not line:
            self.close()
            raise NsError(f"netns client in {self.ns} exited during {method} {url}")
        out = json.loads(line)
        if "error" in out:
            raise NsError(f"{method} {url}: {out['error']}: {out['message']}")
        return NsResponse(out["status"], out["headers"], base64.b64decode(out["body"]))

    def get(self, url, **kw):
        return self.request("GET", url, **kw)

    def put(self, url, data=None, **kw):
        return self.request("PUT", url, data=data, **kw)

    def close(self):
        p, self.proc = self.proc, None
        if p is None:
            return
        try:
            p.stdin.close()
        except OSError:
            pass
        try:
            p.wait(timeout=2)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


def _node_class():
    from conftest import Node, NodeError  # the harness (tests/integration/conftest.py)

    class NsNode(Node):
        """A kvs Node living in namespace ns at address ip (see module doc)."""

        http_errors = (NsError,)  # what NsClient raises (wait_ready retries on these)

        def __init__(self, kvs_bin, workdir, ns, ip, **kw):
            super().__init__(kvs_bin, workdir, **kw)
            self.ns = ns
            self.ip = ip
            self.real_bin = self.kvs_bin
            self.config["bind_address"] = ip
            if not {"cluster_secret", "cluster_secret_file", "protected_mode"} & set(self.config):
                self.config["cluster_secret"] = LAB_SECRET

        @property
        def address(self):
            return f"{self.ip}:{self.port}"

        def url(self, path="/"):
            if not path.startswith("/"):
                path = "/" + path
            return f"http://{self.ip}:{self.port}{path}"

        def __repr__(self):
            return f"<NsNode {self.node_id} {self.ns} {self.address} pid={self.pid}>"

        @property
        def http(self):
            if self._http is None:
                self._http = NsClient(self.ns)
            return self._http

        def start(self, wait=True, timeout=15.0, args=None):
            # `ip netns exec` execs the program: the child's pid is kvs itself
            self.kvs_bin = "ip"
            try:
                return super().start(wait=wait, timeout=timeout, args=[
                    "netns", "exec", self.ns, self.real_bin, str(self.config_path)])
            finally:
                self.kvs_bin = self.real_bin

    return NsNode


class Lab:
    """count node namespaces on one bridge (see module doc).  Use as a context manager."""

    def __init__(self, count, tag="lab"):
        base = f"kvs{os.getpid()}{tag}"
        self.bridge_ns = base + "br"
        self.node_ns = [f"{base}n{i + 1}" for i in range(count)]
        self.ips = [f"{SUBNET}.{i + 1}" for i in range(count)]
        self.created = []          # namespaces this lab created
        self.added_guard = False
        self.nodes = []
        self.clients = []

    # ---- set-up -------------------------------------------------------------

    @staticmethod
    def probe():
        """None when namespaces can be created here, else the reason (for a skip)."""
        name = f"kvs{os.getpid()}probe"
        p = run(["ip", "netns", "add", name], check=False)
        if p.returncode != 0:
            return f"`ip netns add` refused: {p.stderr.strip()}"
        run(["ip", "netns", "del", name], check=False)
        for tool in ("iptables", "tc"):
            if run(["sh", "-c", f"command -v {tool}"], check=False).returncode != 0:
                return f"{tool} not installed (scripts/deps.sh test)"
        return None

    def setup(self):
        # the guard route first: a stray client in the root namespace fails locally
        run(["ip", "route", "replace", "blackhole", GUARD])
        self.added_guard = True
        for ns in [self.bridge_ns] + self.node_ns:
            run(["ip", "netns", "add", ns])
            self.created.append(ns)
            nsrun(ns, "ip", "link", "set", "lo", "up")
        b = self.bridge_ns
        nsrun(b, "ip", "link", "add", "br0", "type", "bridge")
        nsrun(b, "ip", "link", "set", "br0", "up")
        for i, ns in enumerate(self.node_ns):
            v = f"v{i + 1}"
            # both ends created from inside the lab: nothing touches the root namespace
            nsrun(b, "ip", "link", "add", v, "type", "veth", "peer", "name", "eth0", "netns", ns)
            nsrun(b, "ip", "link", "set", v, "master", "br0")
            nsrun(b, "ip", "link", "set", v, "up")
            nsrun(ns, "ip", "addr", "add", f"{self.ips[i]}/24", "dev", "eth0")
            nsrun(ns, "ip", "link", "set", "eth0", "up")
        return self

    def __enter__(self):
        try:
            return self.setup()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- nodes and clients --------------------------------------------------

    def node(self, factory, i, node_id, port=8080, seeds=None, extra=None, env=None):
        """An NsNode (not started) in node namespace i (0-based), registered with factory."""
        NsNode = _node_class()
        n = NsNode(factory.kvs_bin, factory.base / node_id, self.node_ns[i], self.ips[i],
                   node_id=node_id, port=port, seeds=seeds, extra=extra, env=env)
        factory.nodes.append(n)
        self.nodes.append(n)
        return n

    def client(self, i):
        c = NsClient(self.node_ns[i])
        self.clients.append(c)
        return c

    # ---- faults -------------------------------------------------------------

    def isolate(self, i):
        """Drops everything on node namespace i's link (both directions)."""
        ns = self.node_ns[i]
        nsrun(ns, "iptables", "-A", "INPUT", "-i", "eth0", "-j", "DROP")
        nsrun(ns, "iptables", "-A", "OUTPUT", "-o", "eth0", "-j", "DROP")

    def heal(self, i):
        ns = self.node_ns[i]
        nsrun(ns, "iptables", "-F", "INPUT")
        nsrun(ns, "iptables", "-F", "OUTPUT")

    def lossy(self, i, probability=0.1, rate="1mbit"):
        """Random loss both ways on node namespace i's link, and a tbf rate limit both ways."""
        ns = self.node_ns[i]
        for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o")):
            nsrun(ns, "iptables", "-A", chain, flag, "eth0", "-m", "statistic", "--mode",
                  "random", "--probability", str(probability), "-j", "DROP")
        tbf = ["tbf", "rate", rate, "burst", "32kbit", "latency", "400ms"]
        nsrun(ns, "tc", "qdisc", "add", "dev", "eth0", "root", *tbf)
        nsrun(self.bridge_ns, "tc", "qdisc", "add", "dev", f"v{i + 1}", "root", *tbf)

    def counters(self, i):
        """iptables -L -v -n -x of node namespace i (for reports)."""
        return nsrun(self.node_ns[i], "iptables", "-L", "-v", "-n", "-x", check=False).stdout

    # ---- tear-down ----------------------------------------------------------

    def close(self):
        for c in self.clients:
            try:
                c.close()
            except Exception:
                pass
        for n in self.nodes:
            try:
                n.kill()
            except Exception:
                pass
            try:
                n.cleanup()
            except Exception:
                pass
        for ns in reversed(self.created):
            run(["ip", "netns", "del", ns], check=False)
        self.created = []
        if self.added_guard:
            # another test run's lab (kvs<pid>...) may still rely on the guard: the last one
            # to leave removes it
            others = [ln.split()[0] for ln in run(["ip", "netns", "list"], check=False).stdout.splitlines()
                      if ln.strip()]
            if not any(re.match(r"^kvs\d+", name) for name in others):
                run(["ip", "route", "del", "blackhole", GUARD], check=False)
            self.added_guard = False


if __name__ == "__main__" and sys.argv[1:] == ["client"]:
    _client_main()
