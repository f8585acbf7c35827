"""Operations: the whole /metrics page as Prometheus text, structured logs (issue 6)."""

import json
import re

from conftest import FAST_INTERVALS, wait_until

FAST = dict(FAST_INTERVALS)

# Prometheus text format 0.0.4: metric name, optional labels, value.
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
SAMPLE_RE = re.compile(rf"^({NAME})(\{{(?:{LABEL})(?:,{LABEL})*\}})? (\S+)$")
LABELS_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')


def parse_page(text):
    """Parses a whole exposition strictly; returns (types, samples).

    Every line must be a comment (# HELP / # TYPE), or a sample whose family
    was declared by a TYPE line before it; values must be floats.
    """
    types, samples = {}, []
    assert text.endswith("\n"), "the page ends with a newline"
    for line in text.splitlines():
        if line.startswith("# HELP "):
            assert re.match(rf"^# HELP {NAME} \S", line), line
            continue
        if line.startswith("# TYPE "):
            m = re.match(rf"^# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)$", line)
            assert m, line
            assert m.group(1) not in types, f"TYPE declared twice: {line}"
            types[m.group(1)] = m.group(2)
            continue
        assert not line.startswith("#") and line.strip(), f"stray line {line!r}"
        m = SAMPLE_RE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.group(1), dict(LABELS_RE.findall(m.group(2) or "")), m.group(3)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or family in types, f"no TYPE before {name}"
        float(value.replace("+Inf", "inf"))
        samples.append((name, labels, float(value.replace("+Inf", "inf"))))
    return types, samples


def check_histograms(types, samples):
    """Buckets are cumulative and end at +Inf == _count."""
    for family, kind in types.items():
        if kind != "histogram":
            continue
        series = {}
        for name, labels, value in samples:
            if name == family + "_bucket":
                key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
                series.setdefault(key, []).append((labels["le"], value))
        assert series, f"histogram {family} has no buckets"
        counts = {tuple(sorted(l.items())): v for n, l, v in samples if n == family + "_count"}
        for key, buckets in series.items():
            values = [v for _, v in buckets]
            assert values == sorted(values), f"{family}{key} buckets not cumulative"
            assert buckets[-1][0] == "+Inf"
            assert counts[key] == buckets[-1][1], f"{family}{key}: +Inf != _count"


def value(samples, name, **labels):
    found = [v for n, l, v in samples if n == name and all(l.get(k) == x for k, x in labels.items())]
    assert found, f"{name}{labels} missing"
    return sum(found)


def test_metrics_page_is_valid_prometheus_text_and_complete(node_factory):
    a, b = node_factory.cluster(2, extra=FAST)
    wait_until(lambda: a.health()["member_count"] == 2 and b.health()["member_count"] == 2,
               timeout=15)
    for i in range(20):
        a.put_json(f"ops/k{i}", {"i": i})
    a.delete("/kv/ops/k0")
    wait_until(lambda: b.get("/kv/ops/k19").status_code == 200 and
               b.get("/kv/ops/k0").status_code == 404, timeout=5)
    a.get("/kv/ops/k1")
    a.get("/kv/nope")

    r = a.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    types, samples = parse_page(r.text)
    check_histograms(types, samples)

    # requests by route, method and status; latency per route
    assert value(samples, "kvs_http_requests_total", route="kv", method="PUT", status="200") >= 20
    assert value(samples, "kvs_http_requests_total", route="kv", method="GET", status="404") >= 1
    assert value(samples, "kvs_http_requests_total", route="kv", method="DELETE", status="204") == 1
    assert value(samples, "kvs_http_request_duration_seconds_count", route="kv") >= 22
    # keys, tombstones, bytes
    assert value(samples, "kvs_keys") == 19
    assert value(samples, "kvs_tombstones") == 1
    assert value(samples, "kvs_value_bytes") > 0
    # pushes and members and mode
    wait_until(lambda: value(parse_page(a.get("/metrics").text)[1],
                             "kvs_push_items_total") >= 21, timeout=5)
    assert value(samples, "kvs_members", status="alive") == 2
    assert value(samples, "kvs_mode", mode="normal") == 1
    assert value(samples, "kvs_mode", mode="syncing") == 0
    for name in ("kvs_push_batches_failed_total", "kvs_conflicts_detected_total",
                 "kvs_conflicts_resolved_total", "kvs_tombstones_purged_total"):
        assert name in types
    for kind in ("push", "regular", "catchup", "bootstrap", "anti_entropy"):
        value(samples, "kvs_sync_rounds_total", kind=kind)
        value(samples, "kvs_sync_items_fetched_total", kind=kind)

    # the receiving side counted the pushes and their lag; a record a sync
    # round (fast intervals here) fetched before its push arrived counts
    # under that round's kind instead
    _, bs = parse_page(b.get("/metrics").text)
    pushed = value(bs, "kvs_sync_items_applied_total", kind="push")
    synced = sum(value(bs, "kvs_sync_items_applied_total", kind=k)
                 for k in ("regular", "catchup", "bootstrap", "anti_entropy"))
    assert pushed >= 15 and pushed + synced >= 21, (pushed, synced)
    assert value(bs, "kvs_replication_lag_seconds_count") >= 15


def test_record_cache_hits_and_never_serves_an_old_version(node_factory):
    # 64 KiB: 1 KiB per shard, about 7 of these records each, so 600 keys go
    # through evictions
    n = node_factory.start("cache", extra={"cache_bytes": 65536})

    def lookups():
        _, samples = parse_page(n.get("/metrics").text)
        return (value(samples, "kvs_cache_lookups_total", result="hit"),
                value(samples, "kvs_cache_lookups_total", result="miss"))

    for i in range(40):
        n.put_json(f"cache/k{i}", {"v": 1, "i": i})
    hits0, _ = lookups()
    for _ in range(3):
        assert n.get_json("cache/k39") == {"v": 1, "i": 39}
    assert lookups()[0] >= hits0 + 3
    for i in range(40, 600):
        n.put_json(f"cache/k{i}", {"v": 1, "i": i})
    for i in range(600):  # evicted or not, every key reads back
        assert n.get_json(f"cache/k{i}") == {"v": 1, "i": i}
    _, samples = parse_page(n.get("/metrics").text)
    assert 0 < value(samples, "kvs_cache_bytes") <= 65536  # 600 records would not fit
    # every change is seen at once: overwrite, delete, write again, big value
    for i in range(40):
        key = f"cache/k{i}"
        n.put_json(key, {"v": 2, "i": i})
        assert n.get_json(key) == {"v": 2, "i": i}
        assert n.delete(f"/kv/{key}").status_code == 204
        assert n.get(f"/kv/{key}").status_code == 404
        big = {"v": 3, "pad": "x" * 2000}  # too big for a 1 KiB shard: never cached
        n.put_json(key, big)
        assert n.get_json(key) == big

    # cache_bytes: 0 turns it off; the data is the same
    n.config["cache_bytes"] = 0
    n.restart()
    assert n.get_json("cache/k7") == {"v": 3, "pad": "x" * 2000}
    assert lookups() == (0, 0)
    _, samples = parse_page(n.get("/metrics").text)
    assert value(samples, "kvs_cache_bytes") == 0


def test_json_logs_one_object_per_line(node_factory):
    a = node_factory.start("a", extra=dict(FAST, log_format="json"))
    b = node_factory.start("b", seeds=[a.address], extra=dict(FAST, log_format="json"))
    wait_until(lambda: a.health()["member_count"] == 2, timeout=15)
    a.put_json("logs/x", 1)
    b.stop()
    wait_until(lambda: "member_left" in a.log_text(), timeout=5)
    a.stop()

    events = set()
    for n in (a, b):
        for line in n.log_text().splitlines():
            if not line.strip() or line.startswith("====="):
                continue  # the harness's own start markers
            obj = json.loads(line)
            for field in ("time", "level", "node", "event"):
                assert field in obj, f"{field} missing in {line}"
            assert obj["node"] == n.node_id
            assert obj["level"] in ("debug", "info", "warn", "error")
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", obj["time"])
            events.add(obj["event"])
    for ev in ("node_started", "cluster_joined", "member_join", "member_left", "mode_change",
               "cluster_leave", "node_stopping", "node_stopped"):
        assert ev in events, f"event {ev} not logged; saw {sorted(events)}"
    # fields are separate keys, not a message blob
    started = [json.loads(l) for l in a.log_text().splitlines() if '"node_started"' in l][0]
    assert started["address"] == a.address


def test_text_logs_one_line_per_event(node):
    node.put_json("t/x", 1)
    # node_started is written once the node serves: a slow (sanitizer) build
    # may answer the first request a moment before
    wait_until(lambda: "node_started" in node.log_text(), timeout=5)
    lines = [l for l in node.log_text().splitlines() if l.strip() and not l.startswith("=====")]
    assert lines
    for l in lines:
        assert re.match(r"^\S+Z (DEBUG|INFO |WARN |ERROR) \S+ [a-z_]+ ", l + " "), l
