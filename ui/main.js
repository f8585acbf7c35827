/*
 * main.js - starts the kvs console (loaded last: see console.js).
 */
'use strict';

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
