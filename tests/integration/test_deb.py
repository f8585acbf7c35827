"""
The Debian package (`make deb`, issue 22), built and installed for real:

  build it (dpkg-buildpackage in a copy of the tree, lintian without
  errors), `dpkg -i` it, run the installed `kvs --version` and
  `kvs --check-config /etc/kvs/kvs.yaml`, check the conffile, unit, man page
  and shim; `dpkg -r` removes the program and keeps the (edited) config and
  the data; `dpkg -P` purges the config and still keeps the data.

It changes the machine (a package install under /usr, /etc/kvs), so it
runs only as root or with sudo that needs no password, and only when no
kvs package is installed already (it would replace someone's install).
Otherwise it is skipped with the reason.  It takes about 30 s (a full
build with debhelper).  At the end, whatever happened, the package is
purged and the data files it made are removed.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

VERSION = re.search(r'#define KVS_VERSION "([^"]+)"',
                    (REPO / "src" / "base" / "kvs.h").read_text()).group(1)
DATA_MARK = Path("/var/lib/kvs/data/kvs-deb-test-marker")


def sudo_prefix():
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"],
                                               capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


SUDO = sudo_prefix()


def installed():
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "kvs"], capture_output=True,
                       text=True)
    return p.returncode == 0 and "installed" in p.stdout and "not-installed" not in p.stdout


def known():
    """The package is installed or has config files left."""
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "kvs"], capture_output=True,
                       text=True)
    return p.returncode == 0 and ("installed" in p.stdout.split()[-1:] or
                                  "config-files" in p.stdout)


pytestmark = [
    pytest.mark.skipif(SUDO is None, reason="needs root or passwordless sudo (dpkg -i)"),
    pytest.mark.skipif(not shutil.which("dpkg-buildpackage"),
                       reason="dpkg-dev not installed (scripts/deps.sh deb)"),
]


def run(cmd, root=False, ok=True, **kw):
    p = subprocess.run((SUDO if root else []) + cmd, capture_output=True, text=True,
                       timeout=600, **kw)
    if ok:
        assert p.returncode == 0, f"{cmd}: {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


def test_make_deb_installs_removes_and_purges(tmp_path):
    if known():
        pytest.skip("a kvs package is installed on this machine already: not replacing it")
    build = tmp_path / "build"
    p = run(["make", "-C", str(REPO), f"BUILD={build}", "deb"])
    deb = build / "deb" / f"kvs_{VERSION}_amd64.deb"
    assert deb.exists(), p.stdout[-2000:]
    assert "lintian --fail-on error" in p.stdout
    libs = [build / "deb" / f"{name}_{VERSION}_amd64.deb" for name in ("libkvs1", "libkvs-dev")]
    for d in [deb] + libs:
        assert d.exists(), d
        lint = run(["lintian", str(d)], ok=False)
        assert not [line for line in lint.stdout.splitlines() if line.startswith("E:")], lint.stdout
    # the library's packages: the .so.1 alone, and what a program builds against
    assert "/usr/lib/libkvs.so.1" in run(["dpkg-deb", "-c", str(libs[0])]).stdout
    dev = run(["dpkg-deb", "-c", str(libs[1])]).stdout
    for f in ("/usr/include/kvs_client.h", "/usr/lib/libkvs.a", "/usr/lib/pkgconfig/kvs.pc"):
        assert f in dev, f

    made_data = not Path("/var/lib/kvs").exists()
    try:
        run(["dpkg", "-i", str(deb)], root=True)
        assert installed()
        out = run(["/usr/bin/kvs", "--version"]).stdout
        assert out.strip() == f"kvs {VERSION}"
        out = run(["/usr/bin/kvs", "--check-config", "/etc/kvs/kvs.yaml"]).stdout
        assert "/var/lib/kvs/data" in out  # data_dir set for the unit's state directory
        conf = run(["dpkg-query", "-W", "-f=${Conffiles}", "kvs"]).stdout
        assert "/etc/kvs/kvs.yaml" in conf
        files = run(["dpkg", "-L", "kvs"]).stdout.split()
        for f in ("/usr/bin/kvs", "/usr/lib/kvs/libssl.so", "/lib/systemd/system/kvs.service",
                  "/usr/share/man/man1/kvs.1.gz", "/usr/share/doc/kvs/copyright",
                  "/usr/bin/kvsctl", "/usr/share/man/man1/kvsctl.1.gz",
                  "/usr/share/bash-completion/completions/kvsctl"):
            assert f in files, f
        assert not [f for f in files if "libkvs" in f]  # the library has packages of its own
        assert run(["/usr/bin/kvsctl", "--help"]).returncode == 0
        unit = Path("/lib/systemd/system/kvs.service").read_text()
        assert "ExecStart=/usr/bin/kvs /etc/kvs/kvs.yaml" in unit
        assert "DynamicUser=yes" in unit
        # the installed binary finds its shim through the rpath
        ldd = run(["ldd", "/usr/bin/kvs"]).stdout
        assert re.search(r"libssl.so => /usr/(bin/\.\./)?lib/kvs/libssl.so", ldd), ldd

        # an edited config and some data, as a running node would leave them
        run(["sh", "-c", "echo '# edited by the admin' >> /etc/kvs/kvs.yaml"], root=True)
        run(["mkdir", "-p", str(DATA_MARK.parent)], root=True)
        run(["sh", "-c", f"echo data > {DATA_MARK}"], root=True)

        run(["dpkg", "-r", "kvs"], root=True)
        assert not installed()
        assert not Path("/usr/bin/kvs").exists()
        assert not Path("/lib/systemd/system/kvs.service").exists()
        assert "# edited by the admin" in Path("/etc/kvs/kvs.yaml").read_text()
        assert DATA_MARK.exists()

        run(["dpkg", "-P", "kvs"], root=True)
        assert not known()
        assert not Path("/etc/kvs/kvs.yaml").exists()
        assert DATA_MARK.exists()  # data is never purged: a database is not a cache
    finally:
        if known():
            run(["dpkg", "-P", "kvs"], root=True, ok=False)
        run(["rm", "-f", str(DATA_MARK)], root=True, ok=False)
        if made_data:
            run(["rm", "-rf", "/var/lib/kvs"], root=True, ok=False)
