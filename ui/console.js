/*
 * console.js - the kvs web console (SPEC section 14).
 *
 * Talks to the node that served it, through the public API only, so
 * whatever it does curl can do: /health and /members/ (cluster view),
 * /metrics polled every 2 s (charts), /kv/ (key browser: listing with
 * paging, GET with ETag, PUT with If-Match / If-None-Match and ?ttl=,
 * DELETE with If-Match) and /watch/ as a Server-Sent Events stream read
 * with fetch() (EventSource cannot send a bearer token).
 *
 * Tokens: when a request answers 401 the console asks for a token and
 * keeps it in sessionStorage (this tab only, gone when it closes); a 403
 * shows what the token may not do.  Nothing is written without the user
 * pressing a button, and a write never replaces a version the user has
 * not seen: edits and deletes carry If-Match, creates If-None-Match: *.
 */
'use strict';

const POLL_MS = 2000;           /* /members/, /health and /metrics */
const HISTORY = 150;            /* chart points kept: 5 minutes at POLL_MS */
const PAGE = 100;               /* keys per listing page */
const FEED_MAX = 30;            /* live changes shown */
const TOKEN_KEY = 'kvs-console-token';

const $ = (id) => document.getElementById(id);
const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  health: null,
  metrics: null,       /* the latest parsed /metrics */
  series: {},          /* chart name -> [{t, values: {label: number}}] */
  prev: null,          /* the previous /metrics sample, for rates */
  keys: [],            /* keys listed under the current prefix */
  prefix: '',
  next: null,          /* the listing's next page, or null */
  current: null,       /* {key, etag, timestamp, expires, text} shown in the editor */
  dirty: false,        /* the editor holds an unsaved edit */
  watchIndex: null,    /* resume the watch after this index */
  watchAbort: null,
  authWanted: false,   /* a 401 came: polling waits for a token */
};

/* ------------------------------------------------------------ the API */

class ApiError extends Error {
  constructor(status, body, what) {
    super((body && body.error) || ('HTTP ' + status));
    this.status = status;
    this.body = body;
    this.what = what;
  }
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (state.token) h.Authorization = 'Bearer ' + state.token;
  return h;
}

/* fetch() with the token; answers the Response, or throws ApiError for a
 * status not in ok (401 also asks for a token, 403 says what is refused). */
async function api(method, path, opts) {
  opts = opts || {};
  const r = await fetch(path, { method, headers: headers(opts.headers), body: opts.body,
    cache: 'no-store', signal: opts.signal });
  if (r.ok || (opts.ok && opts.ok.includes(r.status))) return r;
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  const err = new ApiError(r.status, body, opts.what || (method + ' ' + path));
  if (r.status === 401) state.authWanted = true;
  if (r.status === 401) askToken(state.token ? 'The token was refused: ' + err.message
    : 'This node requires a token: ' + err.message);
  else if (r.status === 403) notice('This token may not ' + err.what + ': ' + err.message, true);
  throw err;
}

function kvPath(key) {
  return '/kv/' + key.split('/').map(encodeURIComponent).join('/');
}

/* ---------------------------------------------------------- utilities */

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function notice(text, error) {
  const n = $('notice');
  n.textContent = text;
  n.className = error ? 'error' : '';
  n.hidden = !text;
}

function fmtTime(ms) {
  return ms ? new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC') : '—';
}

function fmtNum(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  return Number(v).toFixed(digits === undefined ? 1 : digits);
}

/* ------------------------------------------------------------- tokens */

function askToken(msg) {
  $('token-msg').textContent = msg;
  if ($('token-dialog').open) return;
  $('token-input').value = '';
  if (!$('token-dialog').open) $('token-dialog').showModal();
  $('token-input').focus();
}

function setupToken() {
  $('token-btn').addEventListener('click', () => askToken(state.token ? 'A token is set for this tab.' : ''));
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.token = $('token-input').value.trim();
    if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
    else sessionStorage.removeItem(TOKEN_KEY);
    state.authWanted = false;
    $('token-dialog').close();
    notice('');
    refreshAll();
  });
  $('token-forget').addEventListener('click', () => {
    state.token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    $('token-msg').textContent = 'Token forgotten.';
  });
  /* closed without a token (Close or Escape): polling stays paused while
   * the node keeps asking for one, until the Token button is used */
  $('token-cancel').addEventListener('click', () => $('token-dialog').close());
  $('token-dialog').addEventListener('close', () => {
    if (state.authWanted) notice('Paused: this node wants a token. Press "Token" to enter one.', true);
  });
}

/* -------------------------------------------------------------- views */

function showView(name) {
  for (const tab of document.querySelectorAll('[role=tab]')) {
    const on = tab.dataset.view === name;
    tab.setAttribute('aria-selected', on ? 'true' : 'false');
    tab.tabIndex = on ? 0 : -1;
    $('view-' + tab.dataset.view).hidden = !on;
  }
  if (location.hash !== '#' + name) history.replaceState(null, '', '#' + name);
  if (name === 'keys' && !state.listed) listKeys(false);
}

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role=tab]')];
  tabs.forEach((tab, i) => {
    tab.addEventListener('click', () => showView(tab.dataset.view));
    tab.addEventListener('keydown', (ev) => {
      const d = ev.key === 'ArrowRight' ? 1 : ev.key === 'ArrowLeft' ? -1 : 0;
      if (!d) return;
      const t = tabs[(i + d + tabs.length) % tabs.length];
      t.focus();
      showView(t.dataset.view);
    });
  });
  const start = location.hash.slice(1);
  showView(['cluster', 'charts', 'keys'].includes(start) ? start : 'cluster');
}

/* ------------------------------------------------------ cluster view */

const STATUS_COLOR = { alive: '#15803d', suspect: '#b45309', unhealthy: '#b91c1c', left: '#6b7280' };

function memberUrl(m) {
  return location.protocol + '//' + m.address + '/ui/';
}

function drawRing(members, selfId) {
  const ring = $('ring');
  ring.replaceChildren();
  const c = 160, r = 110, n = members.length || 1;
  ring.append(svg('circle', { cx: c, cy: c, r, fill: 'none', stroke: '#d1d5db', 'stroke-width': 2 }));
  const pos = members.map((m, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
    return [c + r * Math.cos(a), c + r * Math.sin(a)];
  });
  const self = members.findIndex((m) => m.id === selfId);
  members.forEach((m, i) => {
    if (i === self || self < 0) return;
    ring.append(svg('line', { x1: pos[self][0], y1: pos[self][1], x2: pos[i][0], y2: pos[i][1],
      stroke: STATUS_COLOR[m.status] || '#6b7280', 'stroke-width': 1.5,
      'stroke-dasharray': m.status === 'alive' ? '' : '4 3' }));
  });
  members.forEach((m, i) => {
    const a = svg('a', { href: memberUrl(m), 'aria-label': m.id + ' (' + m.status + '): open its console' });
    a.append(svg('circle', { cx: pos[i][0], cy: pos[i][1], r: i === self ? 16 : 12,
      fill: STATUS_COLOR[m.status] || '#6b7280', stroke: i === self ? '#1d4ed8' : '#fff', 'stroke-width': 3 }));
    const t = svg('text', { x: pos[i][0], y: pos[i][1] + (pos[i][1] > c ? 30 : -22), 'text-anchor': 'middle' });
    t.textContent = m.id + ' · ' + m.status;
    a.append(t);
    ring.append(a);
  });
  ring.setAttribute('aria-label', 'Cluster ring: ' + members.map((m) => m.id + ' ' + m.status).join(', '));
}

function known(v) {
  return v !== null && v !== undefined;
}

function ago(ms) {
  if (!ms) return '—';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 120 ? s + ' s ago' : Math.round(s / 60) + ' min ago';
}

/* How far the member's newest version trails this node's (from its last
 * ping answer, so up to a probe interval old): a replication lag estimate. */
function behind(m, selfMember) {
  if (!known(m.latest_ts) || !selfMember || !known(selfMember.latest_ts)) return '—';
  if (m === selfMember) return '0 ms';
  const d = Math.max(0, selfMember.latest_ts - m.latest_ts);
  return d < 1000 ? d + ' ms' : fmtNum(d / 1000) + ' s';
}

function renderMembers(members) {
  const self = state.health ? state.health.node_id : null;
  const me = members.find((m) => m.id === self);
  const rows = members.map((m) => {
    const stale = known(m.status_age_ms) && m.status_age_ms > 10000 ? ' (as of ' + ago(Date.now() - m.status_age_ms) + ')' : '';
    return el('tr', { 'data-id': m.id, 'data-status': m.status },
      el('td', {}, el('a', { href: memberUrl(m) }, m.id), m === me ? ' (this node)' : ''),
      el('td', {}, m.address),
      el('td', { class: 'st-' + m.status }, m.status),
      el('td', {}, known(m.mode) ? m.mode + stale : '—'),
      el('td', {}, known(m.clock_offset_ms) ? m.clock_offset_ms + ' ms' : '—'),
      el('td', {}, known(m.keys) ? String(m.keys) : '—'),
      el('td', {}, behind(m, me)),
      el('td', {}, known(m.push_queue) ? String(m.push_queue) : '—'),
      el('td', {}, ago(m.last_seen)));
  });
  $('members').tBodies[0].replaceChildren(...rows);
  const lag = lagQuantiles(state.metrics, null);
  $('lag-summary').textContent = 'Replication lag of records arriving at this node (since it started): ' +
    (lag ? 'p50 ≤ ' + fmtNum(lag.p50 * 1000, 0) + ' ms, p99 ≤ ' + fmtNum(lag.p99 * 1000, 0) + ' ms' : 'no records from peers yet') +
    '. The live chart is under Charts.';
  drawRing(members, self);
}

async function pollCluster() {
  try {
    const h = await (await api('GET', '/health')).json();
    state.health = h;
    $('node-name').textContent = h.node_id;
    $('node-mode').textContent = h.mode + (h.clock === 'skewed' ? ', clock skewed' : '');
    document.title = 'kvs ' + h.node_id;
    const members = await (await api('GET', '/members/', { what: 'list the members' })).json();
    members.sort((a, b) => a.id.localeCompare(b.id));
    /* /members/ says "alive" with "suspect": true while a member that
     * missed a probe is being checked: the console calls that suspect */
    for (const m of members) if (m.status === 'alive' && m.suspect) m.status = 'suspect';
    renderMembers(members);
  } catch (e) {
    if (!(e instanceof ApiError)) notice('Cannot reach this node: ' + e.message, true);
  }
}

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

/* -------------------------------------------------------- key browser */

/* Keys -> nested {dirs: {name: node}, leaves: [key]} under the prefix. */
function buildTree(keys, prefix) {
  const root = { dirs: {}, leaves: [] };
  for (const k of keys) {
    const parts = k.slice(prefix.length).split('/');
    let n = root;
    for (let i = 0; i < parts.length - 1; i++) n = n.dirs[parts[i]] = n.dirs[parts[i]] || { dirs: {}, leaves: [] };
    n.leaves.push(k);
  }
  return root;
}

function renderTreeNode(n, path) {
  const ul = el('ul', { role: 'group' });
  for (const name of Object.keys(n.dirs).sort()) {
    const d = el('details', { open: '' }, el('summary', {}, name + '/'), renderTreeNode(n.dirs[name], path + name + '/'));
    ul.append(el('li', { role: 'treeitem' }, d));
  }
  for (const k of n.leaves.sort()) {
    const b = el('button', { type: 'button', class: 'key', 'data-key': k,
      onclick: () => openKey(k) }, k.slice(k.lastIndexOf('/') + 1) || k);
    if (state.current && state.current.key === k) b.setAttribute('aria-current', 'true');
    ul.append(el('li', { role: 'treeitem' }, b));
  }
  return ul;
}

function renderTree() {
  const t = $('tree');
  t.replaceChildren(state.keys.length ? renderTreeNode(buildTree(state.keys, state.prefix), state.prefix)
    : el('p', { class: 'hint' }, 'No keys under "' + state.prefix + '".'));
  $('more').hidden = !state.next;
}

/* Lists the prefix's first page (more: the next page), then watches it. */
async function listKeys(more) {
  const p = state.prefix;
  let url = '/kv/' + (p ? p.split('/').filter(Boolean).map(encodeURIComponent).join('/') + '/' : '') + '?limit=' + PAGE;
  if (more && state.next) url += '&after=' + encodeURIComponent(state.next);
  try {
    const r = await api('GET', url, { what: 'list keys under "' + p + '"' });
    const body = await r.json();
    state.listed = true;
    state.keys = more ? state.keys.concat(body.keys) : body.keys;
    state.next = body.next;
    renderTree();
    if (!more) startWatch(r.headers.get('X-Kvs-Index'));
  } catch (e) {
    if (!(e instanceof ApiError)) notice('Listing failed: ' + e.message, true);
    else if (e.status === 400) notice('Bad prefix: ' + e.message, true);
  }
}

function showMeta(cur) {
  const rows = [['uuid', cur.etag ? cur.etag.replace(/"/g, '') : '—'], ['timestamp', cur.timestamp + ' (' + fmtTime(cur.timestamp) + ')'],
    ['expires', cur.expires ? cur.expires + ' (' + fmtTime(cur.expires) + ')' : 'never']];
  $('key-meta').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', { id: 'meta-' + k }, v)]));
}

function pretty(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
}

/* Reads a key: {key, etag, timestamp, expires, text}, or null when absent. */
async function readKey(key) {
  const r = await api('GET', kvPath(key), { ok: [404], what: 'read "' + key + '"' });
  if (r.status === 404) return null;
  return { key, etag: r.headers.get('ETag'), timestamp: Number(r.headers.get('X-Kvs-Timestamp')),
    expires: Number(r.headers.get('X-Kvs-Expires')) || null, text: await r.text() };
}

async function openKey(key) {
  try {
    const cur = await readKey(key);
    hideBoxes();
    if (!cur) { notice('"' + key + '" no longer exists.', true); return; }
    state.current = cur;
    state.dirty = false;
    $('key-view').hidden = false;
    $('key-name').textContent = key;
    showMeta(cur);
    $('value-editor').value = pretty(cur.text);
    $('ttl').value = cur.expires ? Math.max(1, Math.round((cur.expires - Date.now()) / 1000)) + 's' : '';
    renderTree();
    $('value-editor').focus();
  } catch (e) { /* api() said why */ }
}

function hideBoxes() {
  $('conflict').hidden = true;
  $('confirm-delete').hidden = true;
}

function ttlQuery(v) {
  v = v.trim();
  return v ? '?ttl=' + encodeURIComponent(v) : '';
}

function validJson(text) {
  try { JSON.parse(text); return true; } catch (e) { notice('The value is not valid JSON: ' + e.message, true); return false; }
}

/* PUT the editor's value with If-Match: etag (the version the user saw). */
async function saveKey(etag) {
  const cur = state.current, text = $('value-editor').value;
  if (!cur || !validJson(text)) return;
  try {
    const r = await api('PUT', kvPath(cur.key) + ttlQuery($('ttl').value), { body: text, ok: [412],
      headers: { 'Content-Type': 'application/json', 'If-Match': etag }, what: 'write "' + cur.key + '"' });
    if (r.status === 412) { await showConflict(cur.key, await r.json()); return; }
    const v = await r.json();
    notice('Saved "' + cur.key + '" (uuid ' + v.uuid + ').');
    await openKey(cur.key);
  } catch (e) {
    if (e instanceof ApiError && e.status !== 401 && e.status !== 403) notice('Save failed: ' + e.message, true);
  }
}

/* A 412: the node holds another version; show it, keep the user's edit. */
async function showConflict(key, body) {
  const newer = await readKey(key);
  state.conflict = newer;
  $('conflict-text').textContent = newer
    ? 'Conflict: "' + key + '" changed since you opened it (now uuid ' + newer.etag.replace(/"/g, '') +
      ', timestamp ' + newer.timestamp + '). Your edit was not written. The newer value:'
    : 'Conflict: "' + key + '" was deleted since you opened it. Your edit was not written.';
  $('conflict-value').textContent = newer ? pretty(newer.text) : '(deleted)';
  $('conflict-force').hidden = !newer;
  $('conflict').hidden = false;
  notice('Precondition failed (412): ' + ((body && body.error) || 'the version changed'), true);
}

async function deleteKey() {
  const cur = state.current;
  if (!cur) { hideBoxes(); return; }
  try {
    const r = await api('DELETE', kvPath(cur.key), { ok: [404, 412], headers: { 'If-Match': cur.etag },
      what: 'delete "' + cur.key + '"' });
    hideBoxes();
    if (r.status === 412) { await showConflict(cur.key, await r.json()); return; }
    notice(r.status === 404 ? '"' + cur.key + '" was already gone.' : 'Deleted "' + cur.key + '".');
    state.current = null;
    $('key-view').hidden = true;
    removeKey(cur.key);
  } catch (e) { /* api() said why */ }
}

async function createKey(ev) {
  ev.preventDefault();
  const key = $('new-key').value.trim().replace(/^\/+/, ''), text = $('new-value').value;
  if (!key || !validJson(text)) return;
  try {
    const r = await api('PUT', kvPath(key) + ttlQuery($('new-ttl').value), { body: text, ok: [412],
      headers: { 'Content-Type': 'application/json', 'If-None-Match': '*' }, what: 'create "' + key + '"' });
    if (r.status === 412) { notice('"' + key + '" already exists: open it to edit it.', true); return; }
    notice('Created "' + key + '".');
    addKey(key);
    await openKey(key);
  } catch (e) {
    if (e instanceof ApiError && e.status !== 401 && e.status !== 403) notice('Create failed: ' + e.message, true);
  }
}

function addKey(key) {
  if (!key.startsWith(state.prefix) || state.keys.includes(key)) return;
  state.keys.push(key);
  state.keys.sort();
  renderTree();
}

function removeKey(key) {
  state.keys = state.keys.filter((k) => k !== key);
  renderTree();
}

function setupKeys() {
  $('prefix-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    let p = $('prefix').value.trim().replace(/^\/+/, '');
    if (p && !p.endsWith('/')) p += '/';
    state.prefix = p;
    listKeys(false);
  });
  $('more').addEventListener('click', () => listKeys(true));
  $('value-editor').addEventListener('input', () => { state.dirty = true; });
  $('save').addEventListener('click', () => saveKey(state.current.etag));
  $('delete').addEventListener('click', () => { $('confirm-delete').hidden = false; $('confirm-no').focus(); });
  $('confirm-no').addEventListener('click', () => { $('confirm-delete').hidden = true; $('delete').focus(); });
  $('confirm-yes').addEventListener('click', deleteKey);
  $('conflict-load').addEventListener('click', () => openKey(state.current.key));
  $('conflict-force').addEventListener('click', () => {
    /* explicit: the user saw the newer version and writes over that one */
    $('conflict').hidden = true;
    if (state.conflict) saveKey(state.conflict.etag);
  });
  $('create-form').addEventListener('submit', createKey);
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') hideBoxes();
    if ((ev.ctrlKey || ev.metaKey) && ev.key === 's' && !$('key-view').hidden) { ev.preventDefault(); saveKey(state.current.etag); }
  });
}

/* ------------------------------------------------------------- watch */

function onEvent(e) {
  if (!e.key.startsWith(state.prefix)) return;
  const li = el('li', { 'data-key': e.key, 'data-type': e.type },
    new Date(e.timestamp).toLocaleTimeString() + ' ' + e.type + ' ' + e.key + (e.origin ? ' (from ' + e.origin + ')' : ''));
  $('feed').prepend(li);
  while ($('feed').children.length > FEED_MAX) $('feed').lastChild.remove();
  if (e.type === 'put') addKey(e.key);
  else removeKey(e.key);
  const cur = state.current;
  if (!cur || cur.key !== e.key || '"' + e.uuid + '"' === cur.etag) return;
  if (state.dirty) {
    notice('"' + e.key + '" was ' + (e.type === 'put' ? 'changed' : 'deleted') +
      ' elsewhere while you edit it: saving will show the conflict.', true);
  } else if (e.type === 'put') {
    openKey(e.key);
  } else {
    state.current = null;
    $('key-view').hidden = true;
    notice('"' + e.key + '" was ' + (e.type === 'expire' ? 'expired' : 'deleted') + '.');
  }
}

/* Reads the SSE stream of /watch/{prefix} from index; reconnects from the
 * last event seen when it ends, re-lists when that index was compacted. */
async function startWatch(index) {
  if (state.watchAbort) state.watchAbort.abort();
  const ctl = new AbortController();
  state.watchAbort = ctl;
  state.watchIndex = index;
  const p = state.prefix;
  while (!ctl.signal.aborted) {
    let url = '/watch/' + (p ? p.split('/').filter(Boolean).map(encodeURIComponent).join('/') + '/' : '') + '?values=false';
    if (state.watchIndex) url += '&index=' + encodeURIComponent(state.watchIndex);
    try {
      const r = await api('GET', url, { headers: { Accept: 'text/event-stream' }, signal: ctl.signal, ok: [410],
        what: 'watch "' + p + '"' });
      if (r.status === 410) { listKeys(false); return; }
      const reader = r.body.getReader(), dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let id = null, data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('id:')) id = line.slice(3).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          if (id) state.watchIndex = id;
          if (data) onEvent(JSON.parse(data));
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return;
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
}

/* -------------------------------------------------------------- start */

function refreshAll() {
  pollCluster();
  pollMetrics();
  if (state.listed || !$('view-keys').hidden) listKeys(false);
}

function main() {
  setupToken();
  setupCharts();
  setupKeys();
  setupTabs();
  pollCluster();
  pollMetrics();
  setInterval(() => { if (!state.authWanted) { pollCluster(); pollMetrics(); } }, POLL_MS);
}

main();
