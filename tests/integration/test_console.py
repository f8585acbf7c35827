"""The web console at /ui/ (issue 23, SPEC section 14).

Plain HTTP first: the files are served from the binary with their types,
an ETag (304 on If-None-Match) and a strict Content-Security-Policy, and
`ui: false` answers 404.  Then a real headless Chromium (Debian's chromium,
chromium-driver and python3-selenium; TESTING.md) against a real
three-node cluster: the cluster view lists three alive members and shows a
killed one as down; a key created in the browser is readable on another
node; a key written on another node appears without a reload; an edit from
a stale version shows the conflict and overwrites nothing; a delete asks
first; a wrong token is refused with a message and a read token's refused
write is explained; the browser log has no errors.  Screenshots of each
view are saved as build/console-*.png.

One cluster and one browser serve the module (the tests run in file
order), so the whole file takes well under a minute and a half.
"""

import os
import subprocess
import time

import pytest

from conftest import FAST_INTERVALS, REPO, wait_until

BUILD = REPO / "build"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
READ_TOKEN = "console-read-token-0123456789"
WRITE_TOKEN = "console-write-token-0123456789"
SECRET = "console-cluster-secret-0123456789"


# --------------------------------------------------------------- plain HTTP

@pytest.fixture(scope="module")
def cluster(module_factory):
    nodes = module_factory.cluster(3, extra=dict(FAST_INTERVALS))
    wait_until(lambda: all(
        sum(m["status"] == "alive" for m in n.members()) == 3 for n in nodes),
        timeout=30, msg="three alive members on every node")
    return nodes


def test_ui_serves_its_files_with_types_etag_and_csp(cluster):
    n = cluster[0]
    types = {"/ui/": "text/html", "/ui": "text/html", "/ui/index.html": "text/html",
             "/ui/console.js": "text/javascript", "/ui/console.css": "text/css",
             "/ui/favicon.svg": "image/svg+xml"}
    for path, ctype in types.items():
        r = n.get(path)
        assert r.status_code == 200, (path, r.status_code)
        assert r.headers["Content-Type"].startswith(ctype), (path, r.headers)
        assert len(r.content) == int(r.headers["Content-Length"]) > 0
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        etag = r.headers["ETag"]
        r304 = n.get(path, headers={"If-None-Match": etag})
        assert r304.status_code == 304 and r304.content == b""
        assert n.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    page = n.get("/ui/").text
    # nothing from elsewhere: every script and style is the node's own
    assert "http://" not in page and "https://" not in page
    assert '<script src="/ui/console.js">' in page and "<script>" not in page
    h = n.head("/ui/console.js")
    assert h.status_code == 200 and h.content == b""
    r = n.get("/ui/no-such-file.js")
    assert r.status_code == 404 and "error" in r.json()
    r = n.request("PUT", "/ui/console.js", data=b"x")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]


def test_members_show_what_each_member_reports(cluster):
    """What the cluster view shows of every member: its mode, keys, newest
    version and push queue, from its answers to probes (GET /members/)."""
    n1, n2, _ = cluster
    n2.put_json("console/members-check", {"x": 1})
    latest = int(n2.get("/kv/console/members-check").headers["X-Kvs-Timestamp"])

    def reported():
        ms = {m["id"]: m for m in n1.members()}
        assert set(ms) == {n.node_id for n in cluster}
        for n in cluster:
            m = ms[n.node_id]
            assert m["mode"] == "normal" and m["push_queue"] >= 0
            assert m["status_age_ms"] >= 0
            if m["keys"] != len(n.list_all()) or m["latest_ts"] < latest:
                return None  # not answered a probe since the write
        return ms
    ms = wait_until(reported, timeout=15, msg="every member's report of the new key")
    assert ms[n1.node_id]["status_age_ms"] == 0  # this node's own, now


def test_ui_false_turns_the_console_off(module_factory):
    n = module_factory.start("off", extra={"ui": False})
    for path in ("/ui", "/ui/", "/ui/console.js"):
        r = n.get(path)
        assert r.status_code == 404, path
        assert "ui: false" in r.json()["error"]
    assert n.get("/health").status_code == 200


def test_ui_takes_only_a_boolean(kvs_bin, tmp_path):
    for value, ok in (("true", True), ("false", True), ("yes", False), ('"true"', False)):
        cfg = tmp_path / "c.yaml"
        cfg.write_text(f"node_id: c1\ndata_dir: {tmp_path}/data\nui: {value}\n")
        r = subprocess.run([str(kvs_bin), "--check-config", str(cfg)], capture_output=True,
                           text=True, timeout=10)
        assert (r.returncode == 0) == ok, (value, r.returncode, r.stderr)
        if not ok:
            assert r.returncode == 2 and "ui" in r.stderr, r.stderr


# ------------------------------------------------------------------ browser

def _browser_or_skip():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("python3-selenium is not installed (scripts/deps.sh test installs it)")
    for p in (CHROMIUM, CHROMEDRIVER):
        if not os.access(p, os.X_OK):
            pytest.skip(f"{p} is missing (scripts/deps.sh test installs chromium, chromium-driver)")
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--window-size=1280,800"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)


class Browser:
    """The driver, plus the browser log read so far (get_log empties it)."""

    def __init__(self, driver):
        self.d = driver
        self.log = []

    def read_log(self):
        self.log += self.d.get_log("browser")
        return self.log

    def errors(self, allowed=()):
        """SEVERE log entries, except 'Failed to load resource' for the statuses
        a test provoked on purpose (Chromium logs every 4xx a fetch gets)."""
        out = []
        for e in self.read_log():
            if e["level"] != "SEVERE":
                continue
            if any(f"status of {s}" in e["message"] for s in allowed):
                continue
            out.append(e)
        return out

    def until(self, fn, timeout=10.0, msg=None):
        """wait_until(), an element redrawn under fn counting as "not yet"."""
        from selenium.common.exceptions import WebDriverException

        def attempt():
            try:
                return fn()
            except WebDriverException as e:
                raise AssertionError(repr(e)[:200])
        return wait_until(attempt, timeout=timeout, msg=msg or getattr(fn, "__name__", None))

    def click(self, css, timeout=10.0):
        """Clicks css once it exists (again if it was redrawn meanwhile)."""
        self.until(lambda: self.by(css) and (self.by(css)[0].click() or True), timeout, msg=css)

    def by(self, css):
        from selenium.webdriver.common.by import By
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def one(self, css, timeout=10.0):
        return self.until(lambda: (self.by(css) or [None])[0], timeout=timeout, msg=css)

    def text(self, css):
        return self.d.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", css)

    def shot(self, name):
        BUILD.mkdir(exist_ok=True)
        self.d.save_screenshot(str(BUILD / f"console-{name}.png"))

    def type(self, css, text):
        e = self.one(css)
        e.clear()
        e.send_keys(text)


@pytest.fixture(scope="module")
def browser():
    d = _browser_or_skip()
    try:
        yield Browser(d)
    finally:
        d.quit()


def alive_rows(b):
    """Ids of the members table's alive rows (read in one go: rows are redrawn every 2 s)."""
    return b.d.execute_script(
        "return [...document.querySelectorAll('#members tbody tr')]"
        ".filter(r => r.dataset.status === 'alive').map(r => r.dataset.id)")


def test_cluster_view_lists_three_alive_members(cluster, browser):
    b = browser
    b.d.get(cluster[0].url("/ui/"))
    ids = b.until(lambda: len(alive_rows(b)) == 3 and alive_rows(b), timeout=10,
                     msg="three alive rows")
    assert sorted(ids) == sorted(n.node_id for n in cluster)
    # the picture: one circle per member, each a link to that member's console
    links = b.d.execute_script(
        "return [...document.querySelectorAll('#ring a')].map(a => a.getAttribute('href'))")
    assert sorted(links) == sorted(n.url("/ui/") for n in cluster)
    assert b.text("#node-name") == cluster[0].node_id
    b.shot("cluster")
    assert b.errors() == []


def test_tabs_work_from_the_keyboard_and_charts_draw(cluster, browser):
    from selenium.webdriver.common.keys import Keys
    b = browser
    b.one("#tab-cluster").send_keys(Keys.ARROW_RIGHT)
    b.until(lambda: b.one("#tab-charts").get_attribute("aria-selected") == "true", timeout=5)
    assert b.one("#view-cluster").get_attribute("hidden") is not None
    for i in range(5):
        cluster[1].put_json(f"chart/k{i}", {"i": i})
    # requests/s has a line once /metrics was sampled (every 2 s) four times
    b.until(lambda: b.d.execute_script(
        "const p = document.querySelector('#chart-requests svg polyline');"
        "return p && p.points.length >= 3"), timeout=12, msg="a chart line of 3 points")
    assert len(b.by("#charts figure")) == 6
    b.shot("charts")


def test_key_created_in_the_browser_is_readable_on_another_node(cluster, browser):
    b = browser
    b.click("#tab-keys")
    b.type("#new-key", "console/created")
    b.type("#new-value", '{"from": "browser", "n": 1}')
    b.type("#new-ttl", "1h")
    b.click("#create")
    wait_until(lambda: cluster[1].get("/kv/console/created").status_code == 200, timeout=10,
               msg="the key on node 2")
    r = cluster[1].get("/kv/console/created")
    assert r.json() == {"from": "browser", "n": 1}
    assert int(r.headers["X-Kvs-Expires"]) > time.time() * 1000 + 3500 * 1000
    # the browser shows it with its version and expiry
    b.until(lambda: b.text("#key-name") == "console/created", timeout=5)
    assert b.text("#meta-uuid") == r.headers["ETag"].strip('"')
    assert b.text("#meta-expires") != "never"
    # create-only: creating it again is refused, the value stays
    b.click("#create")
    b.until(lambda: "already exists" in b.text("#notice"), timeout=5)
    assert cluster[0].get_json("console/created") == {"from": "browser", "n": 1}


def test_key_written_on_another_node_appears_without_reload(cluster, browser):
    b = browser
    b.d.execute_script("window.__same_page = 1")
    cluster[2].put_json("console/remote", {"from": "curl on n3"})
    b.until(lambda: b.by('#tree [data-key="console/remote"]'), timeout=10,
               msg="the remote key in the tree")
    b.until(lambda: b.by('#feed li[data-key="console/remote"][data-type="put"]'), timeout=5)
    # a key open in the editor (unedited) follows a change made elsewhere
    b.click('#tree [data-key="console/remote"]')
    b.until(lambda: "curl on n3" in b.one("#value-editor").get_attribute("value"), timeout=5)
    cluster[2].put_json("console/remote", {"from": "curl on n3", "v": 2})
    b.until(lambda: '"v": 2' in b.one("#value-editor").get_attribute("value"), timeout=10,
            msg="the open key updated live")
    assert b.d.execute_script("return window.__same_page") == 1  # no reload happened
    b.shot("keys")


def test_a_large_prefix_pages(cluster, browser):
    b = browser
    for i in range(130):
        cluster[0].put_json(f"paged/k{i:03d}", i)
    b.type("#prefix", "paged")
    b.click("#prefix-form button")
    # 100 keys a page, then "Load more keys" fetches the rest with after=
    b.until(lambda: len(b.by("#tree button.key")) == 100, timeout=10, msg="the first page")
    assert b.one("#more").is_displayed()
    b.click("#more")
    b.until(lambda: len(b.by("#tree button.key")) == 130, timeout=10, msg="the second page")
    assert not b.one("#more").is_displayed()
    b.type("#prefix", "")
    b.click("#prefix-form button")
    b.until(lambda: b.by('#tree [data-key="console/remote"]'), timeout=10)


def test_stale_edit_shows_the_conflict_and_overwrites_nothing(cluster, browser):
    b = browser
    n1 = cluster[0]
    n1.put_json("console/edit", {"v": 1})
    b.one('#prefix').clear()
    b.click('#prefix-form button')
    b.click('#tree [data-key="console/edit"]')
    b.until(lambda: '"v": 1' in b.one("#value-editor").get_attribute("value"), timeout=5)
    b.type("#value-editor", '{"v": "mine"}')
    n1.put_json("console/edit", {"v": 2, "by": "someone else"})
    b.click("#save")
    b.until(lambda: b.one("#conflict").is_displayed(), timeout=5, msg="the conflict box")
    assert "someone else" in b.text("#conflict-value")
    assert "412" in b.text("#notice")
    assert n1.get_json("console/edit") == {"v": 2, "by": "someone else"}
    # the user's edit is still in the editor, not lost either
    assert "mine" in b.one("#value-editor").get_attribute("value")
    b.shot("conflict")
    # loading the newer version, then saving, writes with its uuid
    b.click("#conflict-load")
    b.until(lambda: "someone else" in b.one("#value-editor").get_attribute("value"), timeout=5)
    b.type("#value-editor", '{"v": 3}')
    b.click("#save")
    wait_until(lambda: n1.get_json("console/edit") == {"v": 3}, timeout=5)


def test_delete_asks_first_then_replicates(cluster, browser):
    b = browser
    b.click('#tree [data-key="console/created"]')
    b.until(lambda: b.text("#key-name") == "console/created", timeout=5)
    b.click("#delete")
    assert b.one("#confirm-delete").is_displayed()
    assert cluster[0].get("/kv/console/created").status_code == 200  # not yet
    b.click("#confirm-yes")
    wait_until(lambda: cluster[2].get("/kv/console/created").status_code == 404, timeout=10,
               msg="the delete on node 3")
    b.until(lambda: not b.by('#tree [data-key="console/created"]'), timeout=5)


def test_keys_open_and_boxes_close_from_the_keyboard(browser):
    from selenium.webdriver.common.keys import Keys
    b = browser
    key = b.one('#tree [data-key="console/edit"]')
    key.send_keys(Keys.ENTER)
    b.until(lambda: b.text("#key-name") == "console/edit", timeout=5)
    b.one("#delete").send_keys(Keys.ENTER)
    assert b.one("#confirm-delete").is_displayed()
    # the confirmation starts on "Cancel", and Escape closes it: nothing deleted
    assert b.d.switch_to.active_element.get_attribute("id") == "confirm-no"
    b.d.switch_to.active_element.send_keys(Keys.ESCAPE)
    b.until(lambda: not b.one("#confirm-delete").is_displayed(), timeout=5)
    assert b.by('#tree [data-key="console/edit"]')


def test_phone_width_has_no_horizontal_scroll(browser):
    b = browser
    b.d.set_window_size(390, 844)
    try:
        b.until(lambda: b.d.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"), timeout=5,
            msg="no page-wide horizontal scroll at phone width")
        b.shot("phone")
    finally:
        b.d.set_window_size(1280, 800)


def test_browser_log_has_no_errors(browser):
    # the two 412s the tests above provoked (create again, the stale edit) are
    # logged by Chromium as failed loads; nothing else may be
    provoked = [e for e in browser.read_log() if "status of 412" in e["message"]]
    assert len(provoked) == 2, browser.log
    assert browser.errors(allowed=(412,)) == [], browser.log


def test_killed_member_shows_as_down(cluster, browser):
    b = browser
    b.click("#tab-cluster")
    b.until(lambda: len(alive_rows(b)) == 3, timeout=10)
    victim = cluster[2]
    victim.kill()
    t0 = time.monotonic()
    b.until(lambda: victim.node_id not in alive_rows(b) and len(alive_rows(b)) == 2,
               timeout=20, msg="the killed member shown as not alive")
    status = b.one(f'#members tr[data-id="{victim.node_id}"]').get_attribute("data-status")
    assert status in ("suspect", "unhealthy", "left"), status
    assert time.monotonic() - t0 < 20
    b.shot("cluster-down")
    assert b.errors(allowed=(412,)) == []


# ------------------------------------------------------------------- tokens

def test_wrong_token_is_refused_with_a_message(module_factory, browser):
    n = module_factory.start("tok", extra={
        "cluster_secret": SECRET,
        "auth_tokens": [f"read:{READ_TOKEN}", f"write:{WRITE_TOKEN}"]})
    n.put("/kv/secret/a", data=b'{"a": 1}', headers={"Authorization": f"Bearer {WRITE_TOKEN}"})
    b = browser
    b.d.get(n.url("/ui/#cluster"))
    b.d.execute_script("sessionStorage.clear()")
    b.d.refresh()
    dialog = b.one("#token-dialog")
    b.until(dialog.is_displayed, timeout=10, msg="the token dialog")
    assert "requires a token" in b.text("#token-msg")
    b.type("#token-input", "wrong-token-0123456789")
    b.click("#token-use")
    b.until(lambda: "refused" in b.text("#token-msg"), timeout=10, msg="the refusal")
    assert "invalid bearer token" in b.text("#token-msg")
    b.shot("token")
    # a read token: the cluster shows; a write is refused and explained
    b.type("#token-input", READ_TOKEN)
    b.click("#token-use")
    b.until(lambda: alive_rows(b) == ["tok"], timeout=10)
    assert b.d.execute_script("return sessionStorage.getItem('kvs-console-token')") == READ_TOKEN
    assert b.d.execute_script("return localStorage.length") == 0
    b.click("#tab-keys")
    b.one('#tree [data-key="secret/a"]', timeout=10)
    b.type("#new-key", "secret/b")
    b.type("#new-value", "2")
    b.click("#create")
    b.until(lambda: "may not create" in b.text("#notice"), timeout=5, msg="the 403 notice")
    assert "only read" in b.text("#notice")
    assert n.get("/kv/secret/b", headers={"Authorization": f"Bearer {WRITE_TOKEN}"}).status_code == 404
    # the only errors: the 401s and the 403 provoked here (and the 412s above)
    assert b.errors(allowed=(401, 403, 412)) == []

