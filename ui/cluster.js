/*
 * cluster.js - the kvs console's tabs and its cluster view: GET /health and
 * GET /members/ every POLL_MS, drawn as an SVG ring and a table; each
 * member links to its own node's console.
 */
'use strict';

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
