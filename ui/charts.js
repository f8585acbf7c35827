/*
 * charts.js - the kvs console's live charts: GET /metrics every POLL_MS,
 * parsed from the Prometheus text, turned into rates and drawn as SVG
 * lines over the last HISTORY samples.
 */
'use strict';

/* ------------------------------------------------------------ metrics */

/* Prometheus text -> Map of 'name{labels}' (labels as written) -> value. */
function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

function label(series, name) {
  const m = series.match(new RegExp(name + '="([^"]*)"'));
  return m ? m[1] : null;
}

/* Sum of every sample of a metric whose labels pass keep(series). */
function sum(mx, metric, keep) {
  let s = 0;
  for (const [k, v] of mx) if ((k === metric || k.startsWith(metric + '{')) && (!keep || keep(k))) s += v;
  return s;
}

/* p50/p99 of the replication lag histogram: over what changed since prev
 * (or everything when prev is null); null without samples. */
function lagQuantiles(mx, prev) {
  if (!mx) return null;
  const buckets = [];
  for (const [k, v] of mx) {
    if (!k.startsWith('kvs_replication_lag_seconds_bucket')) continue;
    const le = label(k, 'le');
    buckets.push([le === '+Inf' ? Infinity : Number(le), v - (prev ? prev.get(k) || 0 : 0)]);
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const total = buckets.length ? buckets[buckets.length - 1][1] : 0;
  if (total <= 0) return null;
  const q = (p) => { const b = buckets.find((x) => x[1] >= p * total); return b && b[0] !== Infinity ? b[0] : null; };
  return { p50: q(0.5), p99: q(0.99) };
}

const CHARTS = [
  { id: 'requests', title: 'Requests/s by route', unit: '/s', sample(mx, prev, dt) {
    const byRoute = {};
    for (const [k, v] of mx) {
      if (!k.startsWith('kvs_http_requests_total{')) continue;
      const r = label(k, 'route');
      byRoute[r] = (byRoute[r] || 0) + (v - (prev.get(k) || 0)) / dt;
    }
    return byRoute;
  } },
  { id: 'writes', title: 'Writes/s', unit: '/s', sample(mx, prev, dt) {
    const w = (m) => sum(m, 'kvs_http_requests_total', (k) =>
      (label(k, 'route') === 'kv' && ['PUT', 'DELETE'].includes(label(k, 'method'))) ||
      label(k, 'route') === 'txn');
    return { writes: (w(mx) - w(prev)) / dt };
  } },
  { id: 'lag', title: 'Replication lag (ms)', unit: ' ms', sample(mx, prev) {
    const q = lagQuantiles(mx, prev);
    return q ? { p50: q.p50 * 1000, p99: q.p99 * 1000 } : { p50: 0, p99: 0 };
  } },
  { id: 'queue', title: 'Push queue (records)', unit: '', sample(mx) {
    return { queue: mx.get('kvs_push_queue_records') || 0 };
  } },
  { id: 'conflicts', title: 'Conflicts/s', unit: '/s', sample(mx, prev, dt) {
    return { detected: (sum(mx, 'kvs_conflicts_detected_total') - sum(prev, 'kvs_conflicts_detected_total')) / dt };
  } },
  { id: 'cache', title: 'Cache hit rate (%)', unit: ' %', sample(mx, prev) {
    const h = (mx.get('kvs_cache_lookups_total{result="hit"}') || 0) - (prev.get('kvs_cache_lookups_total{result="hit"}') || 0);
    const m = (mx.get('kvs_cache_lookups_total{result="miss"}') || 0) - (prev.get('kvs_cache_lookups_total{result="miss"}') || 0);
    return { hit: h + m > 0 ? (100 * h) / (h + m) : 0 };
  } },
];

const PALETTE = ['#1d4ed8', '#b91c1c', '#15803d', '#b45309', '#7c3aed', '#0e7490', '#be185d', '#4b5563', '#65a30d', '#111827'];

function setupCharts() {
  for (const c of CHARTS) {
    state.series[c.id] = [];
    $('charts').append(el('figure', { class: 'chart', id: 'chart-' + c.id },
      el('h3', {}, c.title, el('span', { class: 'now' }, '—')),
      svg('svg', { viewBox: '0 0 300 100', preserveAspectRatio: 'none', role: 'img', 'aria-label': c.title }),
      el('div', { class: 'legend' })));
  }
}

function drawChart(c) {
  const pts = state.series[c.id];
  const fig = $('chart-' + c.id), box = fig.querySelector('svg');
  const names = [...new Set(pts.flatMap((p) => Object.keys(p.values)))].sort();
  const max = Math.max(1e-9, ...pts.flatMap((p) => Object.values(p.values)));
  box.replaceChildren(svg('line', { x1: 0, y1: 99, x2: 300, y2: 99, stroke: '#d1d5db' }));
  /* the time axis: the last 30 s at first, growing to HISTORY points */
  const tEnd = pts.length ? pts[pts.length - 1].t : 0;
  const span = Math.min(HISTORY * POLL_MS, Math.max(30000, pts.length ? tEnd - pts[0].t : 0));
  names.forEach((n, i) => {
    const d = pts.map((p) => (300 * (1 - (tEnd - p.t) / span)).toFixed(1) + ',' +
      (98 - (96 * (p.values[n] || 0)) / max).toFixed(1)).join(' ');
    box.append(svg('polyline', { points: d, fill: 'none', stroke: PALETTE[i % PALETTE.length],
      'stroke-width': 1.5, 'vector-effect': 'non-scaling-stroke' }));
  });
  const last = pts.length ? pts[pts.length - 1].values : {};
  const total = Object.values(last).reduce((a, b) => Math.max(a, b), 0);
  fig.querySelector('.now').textContent = pts.length ? fmtNum(total) + c.unit + ' (max ' + fmtNum(max) + ')' : '—';
  fig.querySelector('.legend').replaceChildren(...names.map((n, i) => {
    const s = el('span', {}, '■ ' + n + ' ' + fmtNum(last[n]));
    s.style.color = PALETTE[i % PALETTE.length];
    return s;
  }));
}

async function pollMetrics() {
  try {
    const text = await (await api('GET', '/metrics', { what: 'read /metrics' })).text();
    const mx = parseMetrics(text), t = Date.now();
    state.metrics = mx;
    if (state.prev) {
      const dt = Math.max(0.001, (t - state.prev.t) / 1000);
      for (const c of CHARTS) {
        const s = state.series[c.id];
        s.push({ t, values: c.sample(mx, state.prev.mx, dt) });
        if (s.length > HISTORY) s.shift();
        drawChart(c);
      }
    }
    state.prev = { t, mx };
  } catch (e) {
    if (!(e instanceof ApiError)) notice('Cannot read /metrics: ' + e.message, true);
  }
}
