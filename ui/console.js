/*
 * console.js - the kvs web console (SPEC section 14): shared state, the
 * API helper, tokens.  The views are in cluster.js, charts.js and keys.js;
 * main.js starts it all (index.html loads them in that order, as plain
 * scripts sharing one global scope).
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
