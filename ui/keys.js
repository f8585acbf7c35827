/*
 * keys.js - the kvs console's key browser: listing with paging as a tree,
 * a value with its version and expiry, edit with If-Match (a 412 shows the
 * newer value), create with If-None-Match: *, delete with confirmation,
 * TTL; and the watch stream that keeps it live.
 */
'use strict';

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
