#!/usr/bin/env bash
# bench/run.sh - the benchmark suite of issue 7 (`make bench`).
#
# Starts every server it measures (kvs nodes, etcd) in a temp dir on free loopback ports and
# stops them by PID on exit, failure included.  Prints one markdown report on stdout and
# writes it to bench/results/latest.md (raw figures in bench/results/latest.tsv).
# Measures a copy of build/kvs taken at the start, so a rebuild meanwhile changes nothing.
#
# Environment:
#   BENCH_QUICK=1   smoke run of about 80 s (2 cores) that still runs every section once:
#                   1 s per wrk run, 1 run each, 10k keys instead of 100k/1M, 1 s of paced
#                   writes, flood windows, expiries and full-speed cluster load, and fewer wrk
#                   scenarios (the settings below list what it leaves out; a Targets row it
#                   does not measure says "not measured (quick)");
#                   its report goes to bench/results/quick.md, latest.md is left alone
#   BENCH_KEEP=1    keep the temp dir (logs, data) for inspection
#   KVS_BIN=path    binary to measure (default build/kvs)
#   BENCH_THREADS, BENCH_CONNECTIONS, BENCH_DURATION, BENCH_RUNS override the wrk settings
#   BENCH_FLOOD_CONNS, BENCH_FLOOD_DURATION override the slow-client flood's (300, 20 s)
#   BENCH_WATCHERS  idle watchers held open in the watch scenarios (1000; quick 200)
#   BENCH_ONLY=watch  only the watch scenarios (issue 16); report in bench/results/watch.md
#   BENCH_ONLY=expiry only the expiry scenario (issue 18); report in bench/results/expiry.md
#   BENCH_ONLY=cluster only the cluster scenarios (bench/cluster.sh: 3 nodes, a 3-member etcd,
#                   20 and 40 nodes); report in bench/results/cluster.md
#   BENCH_ONLY=scale  only the 20- and 40-node part of it; report in bench/results/scale.md
#   BENCH_SCALE="20 40"  cluster sizes of the scale scenario (quick: 5)
#   BENCH_ONLY=snapshot only the snapshot scenario (issue 22); bench/results/snapshot.md
#   BENCH_ONLY=client only libkvs and kvsctl (issue 21); report in bench/results/client.md
#                   (watch-quick.md with BENCH_QUICK=1)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
KVS=${KVS_BIN:-$ROOT/build/kvs}
PY=/usr/bin/python3
LIB=$ROOT/bench/benchlib.py
WATCH=$ROOT/bench/watch.py
EXPIRY=$ROOT/bench/expiry.py
SNAP=$ROOT/bench/snapshot.py
LUA=$ROOT/bench/load.lua
OUTDIR=$ROOT/bench/results

REPORT=latest
if [ "${BENCH_QUICK:-0}" = 1 ]; then
  # The smoke run (about 80 s on 2 cores): every section once, each as short as its code
  # allows, so the scripts cannot rot; its figures are rough.  Besides the smaller sizes and
  # shorter loads it leaves out some wrk runs: the main section runs only the scenarios the
  # Targets table divides by (MAIN_PICK, '|'-separated names), the big store none (BIG_WRK=0:
  # fill, restart and join only), the paced cluster ladder one step (LADDER_RATES), the
  # cluster no separate full-speed rounds (CMAX=0: one 1 s round would repeat the 1 s
  # full-speed run), the watch section no GET /health pair (WATCH_HEALTH=0), the client
  # section GET only (CLIENT_MODES).  quiesce() samples 0.1 s (QUIESCE_S); the fixed waits (RSS
  # readings, anti-entropy after the full-speed cluster run) are a tenth as long (PAUSE_SCALE).
  QUICK=1
  DUR=1 RUNS=1 NKEYS=10000 N1K=2000 N10K=1000 NBIG=10000 PACED_S=1 FLOOD_S=1 REPORT=quick
  FULL_S=1 SCALE_SIZES=5 NWATCH=200 NEXPIRE=1000 EXPIRE_S=1 EXPIRE_LEAD=1 NCLIENT=10000
  HYPER_RUNS=20 QUIESCE_S=0.1 PAUSE_SCALE=0.1
  MAIN_PICK="GET /health|PUT /kv|GET /kv|etcd v2 PUT|etcd v2 GET|etcd GET /version"
  BIG_WRK=0 LADDER_RATES=4000 CMAX=0 WATCH_HEALTH=0 CLIENT_MODES=get
else
  QUICK=0
  DUR=5 RUNS=3 NKEYS=100000 N1K=100000 N10K=20000 NBIG=1000000 PACED_S=10 FLOOD_S=20
  FULL_S=30 SCALE_SIZES="20 40" NWATCH=1000 NEXPIRE=100000 EXPIRE_S=60 EXPIRE_LEAD=10
  NCLIENT=100000 HYPER_RUNS=500 QUIESCE_S=1 PAUSE_SCALE=1
  MAIN_PICK=""
  BIG_WRK=1 LADDER_RATES="2000 4000 8000 16000" CMAX=1 WATCH_HEALTH=1 CLIENT_MODES="get put"
fi
NWATCH=${BENCH_WATCHERS:-$NWATCH}
SCALE_SIZES=${BENCH_SCALE:-$SCALE_SIZES}
ONLY=${BENCH_ONLY:-}
case "$ONLY" in
  "") ;;
  watch) REPORT=${REPORT/latest/watch}; REPORT=${REPORT/quick/watch-quick} ;;
  expiry) REPORT=${REPORT/latest/expiry}; REPORT=${REPORT/quick/expiry-quick} ;;
  cluster|scale|snapshot|client) REPORT=${REPORT/latest/$ONLY}; REPORT=${REPORT/quick/$ONLY-quick} ;;
  *) echo "bench: BENCH_ONLY=$ONLY: only 'watch', 'expiry', 'cluster', 'scale', 'snapshot' and 'client'" \
       "are known" >&2
     exit 2 ;;
esac
FLOOD_S=${BENCH_FLOOD_DURATION:-$FLOOD_S}
FLOOD_CONNS=${BENCH_FLOOD_CONNS:-300}
DUR=${BENCH_DURATION:-$DUR}
RUNS=${BENCH_RUNS:-$RUNS}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-64}

for tool in wrk curl jq "$PY"; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found (make bench installs it)" >&2; exit 1; }
done
[ -x "$KVS" ] || { echo "bench: $KVS not built (make all)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/kvs-bench.XXXXXX)
RES=$TMP/results.tsv
declare -A RUNNING=()   # pid -> name, every server or load process still running
WRK_TOTAL=0

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }

# Stops one process we started: SIGTERM, up to 20 s for it to exit, then SIGKILL.
stop_pid() {
  local pid=$1 i state
  [ -n "${RUNNING[$pid]+x}" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo gone)
    if [ "$state" = gone ] || [ "$state" = Z ]; then break; fi
    sleep 0.1
  done
  if [ "$state" != gone ] && [ "$state" != Z ]; then
    log "${RUNNING[$pid]} (pid $pid) ignored SIGTERM for 20 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  unset "RUNNING[$pid]"
}

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${!RUNNING[@]}"; do stop_pid "$pid"; done
  if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
    log "temp dir kept: $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

: >"$RES"
# measure one binary throughout, even if build/ is rebuilt while the bench runs
cp "$KVS" "$TMP/kvs"
KVS=$TMP/kvs

info() { printf 'info\t%s\t%s\n' "$1" "$2" >>"$RES"; }
val()  { printf 'val\t%s\t%s\n' "$1" "$2" >>"$RES"; }
rss_mb() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
now_ns() { date +%s%N; }
secs_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN {printf "%.1f", (b - a) / 1e9}'; }

# ------------------------------------------------------------------ machine and versions
info cores "$(nproc)"
info cpu "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
info memory "$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
info kernel "$(uname -r)"
info kvs "$("$KVS" --version 2>&1 | head -1 | awk '{print $NF}')"
info source "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes in src/')"
info rocksdb "$(dpkg-query -W -f='${Version}' librocksdb-dev 2>/dev/null || echo '?')"
info civetweb "$(dpkg-query -W -f='${Version}' libcivetweb-dev 2>/dev/null || echo '?')"
HAVE_ETCD=0
if command -v etcd >/dev/null; then
  HAVE_ETCD=1
  info etcd "$(etcd --version 2>/dev/null | awk '/^etcd Version/ {print $3}')"
else
  info etcd "not installed"
fi
info wrk "$(wrk -v 2>&1 | head -1 | awk '{sub("^debian/", "", $2); print $2}')"
info threads "$THREADS"
info connections "$CONNS"
info duration "$DUR"
info runs "$RUNS"
info clk_tck "$(getconf CLK_TCK)"
info quick "$QUICK"

mapfile -t PORTS < <("$PY" "$LIB" ports 23)
P_A=${PORTS[0]} P_B=${PORTS[1]} P_ETCD=${PORTS[2]} P_ETCDPEER=${PORTS[3]}
P_BIG=${PORTS[4]} P_C1=${PORTS[5]} P_C2=${PORTS[6]} P_C3=${PORTS[7]} P_FLOOD=${PORTS[8]}
P_W1=${PORTS[9]} P_W2=${PORTS[10]} P_WON=${PORTS[11]} P_WOFF=${PORTS[12]} P_ACL=${PORTS[13]} P_JOIN=${PORTS[14]}
P_E1=${PORTS[15]} P_E2=${PORTS[16]} P_E3=${PORTS[17]} P_EP1=${PORTS[18]} P_EP2=${PORTS[19]} P_EP3=${PORTS[20]}
P_SNAP=${PORTS[21]} P_CL=${PORTS[22]}
# shellcheck source=bench/cluster.sh
. "$ROOT/bench/cluster.sh"

# ------------------------------------------------------------------ servers

# kvs_config NAME PORT SYNC_WRITES [cluster [SEED_PORT]]: writes $TMP/NAME.yaml, data in
# $TMP/NAME.data; cluster members get the fast intervals of node1.yaml
kvs_config() {
  local name=$1 port=$2 sync=$3 cluster=${4:-} seed=${5:-}
  {
    echo "node_id: $name"
    echo "bind_address: 127.0.0.1"
    echo "port: $port"
    echo "data_dir: $TMP/$name.data"
    echo "log_level: warn"
    echo "sync_writes: $sync"
    [ -z "$seed" ] || echo "seed_nodes: [\"127.0.0.1:$seed\"]"
    if [ -n "$cluster" ]; then
      # the intervals of node1.yaml: a local cluster that converges while you watch
      cat <<'EOF'
gossip_interval_min: 2
gossip_interval_max: 4
probe_interval: 1
sync_interval: 10
sync_items: 15
catchup_interval: 10
anti_entropy_interval: 10
failure_timeout: 30
removal_timeout: 120
throttle_delay_ms: 20
fetch_delay_ms: 10
EOF
    fi
  } >"$TMP/$name.yaml"
}

# start_kvs NAME PORT: starts the node, waits for /health 200, sets PID_<NAME> and
# STARTUP_MS (exec to first 200).
start_kvs() {
  local name=$1 port=$2 t0 pid
  t0=$(now_ns)
  "$KVS" "$TMP/$name.yaml" >>"$TMP/$name.log" 2>&1 &
  pid=$!
  RUNNING[$pid]="kvs $name"
  printf -v "PID_$name" '%s' "$pid"
  if ! STARTUP_MS=$("$PY" "$LIB" waitup "http://127.0.0.1:$port/health" "$t0" 300 "$pid"); then
    log "kvs $name did not answer /health; its log:"
    tail -20 "$TMP/$name.log" >&2
    exit 1
  fi
}

stop_kvs() { local v="PID_$1"; stop_pid "${!v}"; }

start_etcd() {
  local pid
  etcd --name bench --data-dir "$TMP/etcd.data" \
    --listen-client-urls "http://127.0.0.1:$P_ETCD" \
    --advertise-client-urls "http://127.0.0.1:$P_ETCD" \
    --listen-peer-urls "http://127.0.0.1:$P_ETCDPEER" \
    --initial-advertise-peer-urls "http://127.0.0.1:$P_ETCDPEER" \
    --initial-cluster "bench=http://127.0.0.1:$P_ETCDPEER" \
    --enable-v2=true --logger zap --log-level warn >"$TMP/etcd.log" 2>&1 &
  pid=$!
  RUNNING[$pid]=etcd
  PID_etcd=$pid
  "$PY" "$LIB" waitup "http://127.0.0.1:$P_ETCD/health" "$(now_ns)" 60 "$pid" >/dev/null || {
    log "etcd did not start; its log:"; tail -20 "$TMP/etcd.log" >&2; exit 1; }
}

metric() { "$PY" "$LIB" metric "http://127.0.0.1:$1" "$2"; }

# ------------------------------------------------------------------ load

# fill URL API PREFIX N SIZE: writes keys 0..N-1 once each with wrk; sets FILL_S.
fill() {
  local url=$1 api=$2 prefix=$3 n=$4 size=$5 t0 wp deadline
  local mk=$TMP/fill.$prefix
  rm -rf "$mk"; mkdir -p "$mk"
  t0=$(now_ns)
  wrk -t"$THREADS" -c"$CONNS" -d3600s --timeout 10s -s "$LUA" "$url" -- \
    "$api" fill "$prefix" "$n" "$size" 70 "$mk" "$THREADS" >"$mk/wrk.out" 2>&1 &
  wp=$!
  RUNNING[$wp]="wrk fill $prefix"
  deadline=$((SECONDS + 900))
  while [ "$(find "$mk" -name 'done.*' | wc -l)" -lt "$THREADS" ]; do
    if [ ! -d "/proc/$wp" ] || [ "$(awk '{print $3}' "/proc/$wp/stat" 2>/dev/null)" = Z ]; then
      log "wrk fill of $prefix ended early:"; cat "$mk/wrk.out" >&2; exit 1
    fi
    [ $SECONDS -lt $deadline ] || { log "fill of $prefix: no end after 900 s"; exit 1; }
    sleep 0.1
  done
  kill -INT "$wp" 2>/dev/null || true
  stop_pid "$wp"
  FILL_S=$(secs_since "$t0")
  log "filled $n keys of $size B under $prefix/ in $FILL_S s ($api)"
}

# cpu_ticks: CPU time (clock ticks) used so far by every server we started (kvs, etcd).
cpu_ticks() {
  local pid sum=0 t
  for pid in "${!RUNNING[@]}"; do
    case "${RUNNING[$pid]}" in kvs*|etcd*) ;; *) continue ;; esac
    t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
    sum=$((sum + t))
  done
  echo "$sum"
}

# quiesce: waits (up to 30 s) until the servers are idle: at most 3 ticks (30 ms) of CPU in
# one second, sampled over QUIESCE_S s (the threshold scaled to it, at least 1 tick).  RocksDB
# flushes and compactions left over from the previous scenario would otherwise run during the
# next one and charge it for the previous one's writes.
QUIESCE_TRIES=$(awk -v s="$QUIESCE_S" 'BEGIN {printf "%d", 30 / s + 0.5}')
QUIESCE_TICKS=$(awk -v s="$QUIESCE_S" 'BEGIN {t = int(3 * s + 0.5); print (t < 1) ? 1 : t}')
quiesce() {
  local t0 t1 i
  for ((i = 0; i < QUIESCE_TRIES; i++)); do
    t0=$(cpu_ticks); sleep "$QUIESCE_S"; t1=$(cpu_ticks)
    [ $((t1 - t0)) -gt "$QUIESCE_TICKS" ] || return 0
  done
  log "servers still busy after 30 s ($((t1 - t0)) ticks in $QUIESCE_S s); measuring anyway"
}

# pause S: a fixed wait of S s (for a node to settle), PAUSE_SCALE times as long
pause() { sleep "$(awk -v s="$1" -v f="$PAUSE_SCALE" 'BEGIN {print s * f}')"; }

# run_wrk SCENARIO KEYS SIZE URL LUA-ARGS...: one timed wrk run, appended to the results.
# Waits for idle servers first, unless NO_QUIESCE=1 (a load of the caller's runs alongside).
# Sets WRK_REQUESTS and WRK_CPU_TICKS (CPU the servers used during the run, clock ticks).
run_wrk() {
  local sc=$1 keys=$2 size=$3 url=$4 out line c0
  shift 4
  [ "${NO_QUIESCE:-0}" = 1 ] || quiesce
  c0=$(cpu_ticks)
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --timeout 10s -s "$LUA" "$url" -- "$@" 2>&1) || {
    log "wrk failed for $sc:"; echo "$out" >&2; exit 1; }
  WRK_CPU_TICKS=$(($(cpu_ticks) - c0))
  line=$(grep '^RESULT ' <<<"$out" | tail -1)
  [ -n "$line" ] || { log "no RESULT from wrk for $sc:"; echo "$out" >&2; exit 1; }
  set -- $line
  printf 'wrk\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$sc" "$RUN" "$2" "$3" "$4" "$5" "$6" "$7" "$keys" "$size" >>"$RES"
  log "$(printf '%-34s run %s: %9.0f req/s  p50 %6.2f ms  p99 %7.2f ms  errors %s/%s' \
    "$sc" "$RUN" "$2" "$(awk -v v="$3" 'BEGIN{print v/1000}')" \
    "$(awk -v v="$4" 'BEGIN{print v/1000}')" "$6" "$7")"
  WRK_REQUESTS=$5
  WRK_TOTAL=$((WRK_TOTAL + $5))
}

# rounds SPEC...: RUNS rounds, each running every SPEC once, so the runs of all scenarios
# are interleaved and a noisy neighbour hits them alike.  SPEC: "scenario|keys|size|url|args"
rounds() {
  local spec sc keys size url args
  for ((RUN = 1; RUN <= RUNS; RUN++)); do
    for spec in "$@"; do
      IFS='|' read -r sc keys size url args <<<"$spec"
      # shellcheck disable=SC2086
      run_wrk "$sc" "$keys" "$size" "$url" $args
    done
  done
}

human() { awk -v n="$1" 'BEGIN { if (n >= 1000000) printf "%gM", n/1000000; else if (n >= 1000) printf "%gk", n/1000; else print n }'; }
info nbig "$(human "$NBIG")"

# ================================================================== 7: watches (issue 16)
# Run last in a full run, alone with BENCH_ONLY=watch.  Skipped (with a note in the report)
# when the binary has no watches (no watch_history setting).

# wait_cluster N PORT...: waits (up to 120 s) until each node answers /health in mode normal
# with N members and lists all N alive.
wait_cluster() {
  local n=$1 p ok deadline=$((SECONDS + 120))
  shift
  while :; do
    ok=1
    for p in "$@"; do
      curl -sf "http://127.0.0.1:$p/health" |
        jq -e --argjson n "$n" '.mode == "normal" and .member_count == $n' >/dev/null || { ok=0; break; }
      curl -sf "http://127.0.0.1:$p/members/" |
        jq -e --argjson n "$n" '[.[] | select(.status == "alive")] | length == $n' >/dev/null || { ok=0; break; }
    done
    [ "$ok" = 0 ] || return 0
    [ $SECONDS -lt $deadline ] || { log "cluster of $n did not form in 120 s"; tail -5 "$TMP"/w?.log >&2; exit 1; }
    sleep 0.2
  done
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# watchers_open PORT N: N idle long-polls on /watch/idle/<i>/ (wait=600s), held by a child
# process until watchers_close; waits until the node's open-watcher gauge shows all N.
WATCH_HOLDS=0
watchers_open() {
  local port=$1 n=$2 rc=0 secs
  WATCH_HOLDS=$((WATCH_HOLDS + 1))
  HOLD_STATS=$TMP/hold.$WATCH_HOLDS.json
  "$PY" "$WATCH" hold --port "$port" --count "$n" --prefix idle --wait 600s \
    --stats "$HOLD_STATS" 2>>"$TMP/hold.log" &
  HOLDER=$!
  RUNNING[$HOLDER]="watch holder"
  secs=$("$PY" "$WATCH" waitopen --url "http://127.0.0.1:$port" --count "$n" --timeout 60 \
    2>>"$TMP/hold.log") || rc=$?
  case $rc in
    0) log "$n watchers open on :$port after $secs s" ;;
    2) log "no open-watcher gauge in /metrics: waited 2 s for the $n watchers" ;;
    *) log "warning: $n watchers not all open after $secs s: $(tail -1 "$TMP/hold.log")" ;;
  esac
}

# watchers_close PORT: stops the holder (it closes its connections) and waits (up to 30 s)
# until the node's gauge is back to 0; WATCH_FREED_S is how long that took.
watchers_close() {
  local port=$1 rc=0
  stop_pid "$HOLDER"
  WATCH_FREED_S=$("$PY" "$WATCH" waitopen --url "http://127.0.0.1:$port" --count 0 --timeout 30 \
    2>>"$TMP/hold.log") || rc=$?
  [ "$rc" != 1 ] || log "warning: watchers still open 30 s after their clients closed"
  [ "$rc" != 2 ] || WATCH_FREED_S="?"
  val "watch_hold_$WATCH_HOLDS" "$(cat "$HOLD_STATS" 2>/dev/null || echo '{}')"
  val "watch_freed_$WATCH_HOLDS" "$WATCH_FREED_S"
}

bench_watches() {
  local rss0 rss1 n
  kvs_config wcheck "$P_WON" false
  if ! "$KVS" --check-config "$TMP/wcheck.yaml" 2>/dev/null | grep -q '^watch_history:'; then
    log "watches: this binary has no watch_history setting; watch scenarios skipped"
    val watch_skipped 1
    return 0
  fi
  n=$(sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$NWATCH")   # 1,000

  # --- 1. event delivery: a 2-node cluster, 1,000 writes/s on node 1, each write watched by
  # an SSE stream and a long-poll loop on node 1 (local) and on node 2 (another node)
  kvs_config w1 "$P_W1" false cluster
  kvs_config w2 "$P_W2" false cluster "$P_W1"
  start_kvs w1 "$P_W1"
  start_kvs w2 "$P_W2"
  wait_cluster 2 "$P_W1" "$P_W2"
  log "watches: event delivery at 1,000 writes/s for $PACED_S s (cluster of 2)"
  "$PY" "$WATCH" latency --writer "127.0.0.1:$P_W1" --local "127.0.0.1:$P_W1" \
    --remote "127.0.0.1:$P_W2" --rate 1000 --duration "$PACED_S" --prefix wlat \
    --out "$TMP/wlat.json" >/dev/null || log "warning: watch latency run reported an error"
  [ -s "$TMP/wlat.json" ] || { log "watch latency: no result"; exit 1; }
  val watch_latency "$(cat "$TMP/wlat.json")"
  log "watches: $(jq -c '{achieved_rate, acked, failed, watchers: (.watchers | map_values({p50, p99, missing, error}))}' "$TMP/wlat.json")"
  stop_kvs w2
  stop_kvs w1

  # --- 2-4. one node with the change index on (the defaults) and one with it off
  # (watch_history: 0), both with room for the idle watchers
  kvs_config won "$P_WON" false
  echo "max_watchers: $((NWATCH + 100))" >>"$TMP/won.yaml"
  kvs_config woff "$P_WOFF" false
  printf 'max_watchers: %s\nwatch_history: 0\n' "$((NWATCH + 100))" >>"$TMP/woff.yaml"
  # and, for a moment, one with no room for watchers (max_watchers: 0): the node starts a
  # worker thread per max_watchers, so even closed watchers cost memory
  kvs_config wzero "$P_W1" false
  echo "max_watchers: 0" >>"$TMP/wzero.yaml"
  start_kvs won "$P_WON"
  start_kvs woff "$P_WOFF"
  start_kvs wzero "$P_W1"
  WON=http://127.0.0.1:$P_WON WOFF=http://127.0.0.1:$P_WOFF

  # memory per open watcher: RSS of the fresh node without, then with the idle watchers
  pause 2
  rss0=$(rss_kb "$PID_won")
  val watch_rss_reserved_kb "$(rss_kb "$PID_wzero") $rss0 $((NWATCH + 100))"
  stop_kvs wzero
  watchers_open "$P_WON" "$NWATCH"
  pause 1
  rss1=$(rss_kb "$PID_won")
  watchers_close "$P_WON"
  val watch_count "$NWATCH"
  val watch_rss_kb "$rss0 $rss1"
  log "watches: RSS $rss0 kB without, $rss1 kB with $NWATCH watchers; freed $WATCH_FREED_S s after close"

  fill "$WON" kvs wb "$NKEYS" 100
  fill "$WOFF" kvs wb "$NKEYS" 100
  WSC_PUT="PUT /kv, $n idle watchers open"
  WSC_GET="GET /kv, $n idle watchers open"
  val watch_sc "$WSC_PUT|$WSC_GET"
  # rounds like rounds(), the watchers opened and closed inside each; every other round runs
  # each pair the other way round (index off before on, with watchers before without), so
  # that a node slowing down over the rounds (its store and history growing) or a noisy
  # neighbour favours neither side of a ratio
  for ((RUN = 1; RUN <= RUNS; RUN++)); do
    if ((RUN % 2)); then
      watch_runs_without on off; watch_runs_with
    else
      watch_runs_with; watch_runs_without off on
    fi
  done
  stop_kvs woff
  stop_kvs won
}

# watch_runs_without FIRST SECOND: one round's runs without watchers: /health, then PUT, on
# the nodes with the change index on and off (in that order), then GET on the index-on node
watch_runs_without() {
  local k which
  k=$(human "$NKEYS")
  [ "$WATCH_HEALTH" = 0 ] || for which in "$@"; do
    watch_wrk "GET /health, change index $which" - - "$(watch_node "$which")" kvs health
  done
  for which in "$@"; do
    watch_wrk "PUT /kv, change index $which$([ "$which" = off ] || echo ', no watchers')" "$k" "100 B" \
      "$(watch_node "$which")" kvs put wb "$NKEYS" 100
  done
  watch_wrk "GET /kv, change index on, no watchers" "$k" "100 B" "$WON" kvs get wb "$NKEYS" 100
}
watch_node() { if [ "$1" = on ]; then echo "$WON"; else echo "$WOFF"; fi; }

# watch_wrk: run_wrk, and the servers' CPU during the run (a steadier figure than req/s on a
# shared machine: the other node is idle meanwhile)
watch_wrk() {
  run_wrk "$@"
  val "watch_cpu|$1|$RUN" "$WRK_CPU_TICKS $WRK_REQUESTS"
}

# one round's runs with the idle watchers open: PUT and GET on the index-on node
watch_runs_with() {
  local k
  k=$(human "$NKEYS")
  watchers_open "$P_WON" "$NWATCH"
  watch_wrk "$WSC_PUT" "$k" "100 B" "$WON" kvs put wb "$NKEYS" 100
  watch_wrk "$WSC_GET" "$k" "100 B" "$WON" kvs get wb "$NKEYS" 100
  watchers_close "$P_WON"
}

# Expiry (issue 18): a 2-node cluster; NEXPIRE keys written on node 1 with TTLs whose
# expiries are spread over EXPIRE_S s; node 2's expire events and 404s timed against each
# key's expiry, and node 2's CPU over the expiry window against an idle window before it.
bench_expiry() {
  kvs_config x1 "$P_W1" false cluster
  kvs_config x2 "$P_W2" false cluster "$P_W1"
  start_kvs x1 "$P_W1"
  start_kvs x2 "$P_W2"
  wait_cluster 2 "$P_W1" "$P_W2"
  log "expiry: $NEXPIRE keys expiring over $EXPIRE_S s, measured on the other node"
  "$PY" "$EXPIRY" run --writer "127.0.0.1:$P_W1" --peer "127.0.0.1:$P_W2" --peer-pid "$PID_x2" \
    --count "$NEXPIRE" --spread "$EXPIRE_S" --lead "$((NEXPIRE / 2000 + EXPIRE_LEAD))" \
    --out "$TMP/expiry.json" >/dev/null || log "warning: the expiry run reported an error"
  [ -s "$TMP/expiry.json" ] && val expiry "$(cat "$TMP/expiry.json")"
  log "expiry: $(cat "$TMP/expiry.json" 2>/dev/null)"
  stop_kvs x2
  stop_kvs x1
}

# Snapshots (issue 22): one node holding NBIG keys of 100 B.  One snapshot on the idle node
# (MB/s; its RSS before and at its peak); then RUNS rounds of PUT throughput without a
# snapshot and while snapshots run back to back (their MB/s and peak RSS under writes), the
# ratio of the two from the same round; and `kvs --restore` of the first snapshot into an
# empty data dir.
bench_snapshot() {
  local url=http://127.0.0.1:$P_SNAP k sp t0
  k=$(human "$NBIG")
  kvs_config snap "$P_SNAP" false
  start_kvs snap "$P_SNAP"
  fill "$url" kvs snap "$NBIG" 100
  quiesce
  "$PY" "$SNAP" take --port "$P_SNAP" --pid "$PID_snap" --file "$TMP/snap.bin" \
    --out "$TMP/snap_idle.json" >/dev/null || { log "snapshot failed"; exit 1; }
  val snap_idle "$(cat "$TMP/snap_idle.json")"
  log "snapshot of $k keys, idle node: $(cat "$TMP/snap_idle.json")"
  for ((RUN = 1; RUN <= RUNS; RUN++)); do
    run_wrk "PUT /kv, snapshot node, no snapshot" "$k" "100 B" "$url" kvs put snap "$NBIG" 100
    quiesce
    rm -f "$TMP/snap.stop"
    "$PY" "$SNAP" loop --port "$P_SNAP" --pid "$PID_snap" --stop "$TMP/snap.stop" \
      --out "$TMP/snap_loop.json" >/dev/null &
    sp=$!
    RUNNING[$sp]="snapshot loop"
    NO_QUIESCE=1 run_wrk "PUT /kv, snapshots running" "$k" "100 B" "$url" kvs put snap "$NBIG" 100
    touch "$TMP/snap.stop"
    wait "$sp" || log "warning: the snapshot loop reported an error"
    unset "RUNNING[$sp]"
    val "snap_loop|$RUN" "$(cat "$TMP/snap_loop.json")"
    log "snapshots under PUT load: $(cat "$TMP/snap_loop.json")"
  done
  # requests the node answered with something else than 200 (wrk counts them as errors)
  val snap_non200 "$(curl -s "$url/metrics" | awk '/^kvs_http_requests_total/ && !/status="200"/ \
    {printf "%s%s", s, $0; s = "; "}')"
  stop_kvs snap
  kvs_config snapr "$P_SNAP" false
  t0=$(now_ns)
  "$KVS" --restore "$TMP/snap.bin" "$TMP/snapr.yaml" >"$TMP/snapr.log" 2>&1 ||
    { log "restore failed:"; cat "$TMP/snapr.log" >&2; exit 1; }
  val snap_restore_s "$(secs_since "$t0")"
  val snap_restore_mb "$(du -sb "$TMP/snapr.data" | awk '{printf "%.1f", $1 / 1e6}')"
  log "restore: $(cat "$TMP/snapr.log") in $(secs_since "$t0") s"
  rm -rf "$TMP/snapr.data" "$TMP/snap.data" "$TMP/snap.bin"
}

# libkvs and kvsctl (issue 21), one node with NCLIENT keys of 100 B.  Per round: GET then
# PUT through libkvs from one thread on one keep-alive connection (bench/client_bench.c),
# beside wrk on one connection (the same work: the ratio is the library's own cost) and
# wrk's usual THREADS x CONNS (the node's capacity).  Then `kvsctl get` wall time per call
# (process start, connect, request, exit) beside curl's, with hyperfine.
bench_client() {
  local lib_bin=$ROOT/build/bench/kvs_client_bench ctl=${KVSCTL_BIN:-$ROOT/build/kvsctl}
  local url=http://127.0.0.1:$P_CL mode out key
  if [ ! -x "$lib_bin" ] || [ ! -x "$ctl" ]; then
    log "client: build/kvsctl or build/bench/kvs_client_bench missing (make all): skipped"
    return 0
  fi
  cp "$ctl" "$TMP/kvsctl"
  kvs_config cl "$P_CL" false
  start_kvs cl "$P_CL"
  fill "$url" kvs cl "$NCLIENT" 100
  for ((RUN = 1; RUN <= RUNS; RUN++)); do
    for mode in $CLIENT_MODES; do
      quiesce
      out=$(wrk -t1 -c1 -d"${DUR}s" --timeout 10s -s "$LUA" "$url" -- kvs "$mode" cl "$NCLIENT" 100 2>&1 |
            grep '^RESULT ' | tail -1)
      val "client_${mode}_wrk1_$RUN" "$(awk '{print $2, $3, $4}' <<<"$out")"
      quiesce
      out=$("$lib_bin" "127.0.0.1:$P_CL" "$mode" cl "$NCLIENT" "$DUR" 100 | grep '^RESULT ' || true)
      VAL_LIB=$(awk '{print $2, $3, $4}' <<<"$out")
      val "client_${mode}_lib_$RUN" "$VAL_LIB"
      quiesce
      out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --timeout 10s -s "$LUA" "$url" -- kvs "$mode" cl \
            "$NCLIENT" 100 2>&1 | grep '^RESULT ' | tail -1)
      val "client_${mode}_wrk64_$RUN" "$(awk '{print $2, $3, $4}' <<<"$out")"
      log "client $mode run $RUN: libkvs $(cut -d' ' -f1 <<<"${VAL_LIB:-}")"
    done
  done
  if command -v hyperfine >/dev/null; then
    quiesce
    key=cl/k00000001
    hyperfine -N --warmup 20 --runs "$HYPER_RUNS" --export-json "$TMP/hyperfine.json" \
      "$TMP/kvsctl --endpoints 127.0.0.1:$P_CL get $key" "curl -s $url/kv/$key" >&2 ||
      log "warning: hyperfine failed"
    [ -s "$TMP/hyperfine.json" ] &&
      val client_hyperfine "$(jq -c '[.results[] | {command, mean, median, stddev, min, max}]' \
                              "$TMP/hyperfine.json")"
  else
    log "client: hyperfine not installed (make bench installs it): kvsctl wall time skipped"
  fi
  stop_kvs cl
}

report() {
  mkdir -p "$OUTDIR"
  "$PY" "$LIB" report "$RES" >"$OUTDIR/$REPORT.md"
  cp "$RES" "$OUTDIR/$REPORT.tsv"
  cat "$OUTDIR/$REPORT.md"
}

if [ "$ONLY" = watch ]; then
  bench_watches
  report
  exit 0
fi
if [ "$ONLY" = expiry ]; then
  bench_expiry
  report
  exit 0
fi
if [ "$ONLY" = cluster ] || [ "$ONLY" = scale ]; then
  [ "$ONLY" = scale ] || bench_cluster
  for n in $SCALE_SIZES; do bench_scale "$n"; done
  val scale_sizes "$SCALE_SIZES"
  report
  exit 0
fi
if [ "$ONLY" = snapshot ]; then
  bench_snapshot
  report
  exit 0
fi
if [ "$ONLY" = client ]; then
  bench_client
  report
  exit 0
fi

# ================================================================== 1 + 2: single node, etcd
log "temp dir $TMP; wrk $THREADS threads, $CONNS connections, ${DUR} s x $RUNS runs"
A=http://127.0.0.1:$P_A
B=http://127.0.0.1:$P_B
E=http://127.0.0.1:$P_ETCD

kvs_config single "$P_A" false
start_kvs single "$P_A"
val startup_empty_ms "$STARTUP_MS"
pause 2
val rss_idle_mb "$(rss_mb "$PID_single")"
log "idle RSS $(rss_mb "$PID_single") MB, start-up ${STARTUP_MS} ms (empty store)"

fill "$A" kvs bench "$NKEYS" 100
fill "$A" kvs v1k "$N1K" 1024
fill "$A" kvs v10k "$N10K" 10240
want=$((NKEYS + N1K + N10K))
have=$(metric "$P_A" kvs_keys)
[ "$have" -ge "$want" ] || log "warning: $have keys after the fills, expected $want"

# the sync_writes node and the access-control node start from copies of the same store, both
# taken while it is stopped (a running node compacts, deleting files under cp)
stop_kvs single
cp -a "$TMP/single.data" "$TMP/syncw.data"
cp -a "$TMP/single.data" "$TMP/acl.data"
start_kvs single "$P_A"
kvs_config syncw "$P_B" true
start_kvs syncw "$P_B"
# and the node with access control (issue 19): 50 scoped tokens of 3 rules each, the audit
# log on; the load uses the last token (every token is tried anyway)
kvs_config acl "$P_ACL" false
{
  echo 'cluster_secret: "bench-cluster-secret-0123456789"'
  echo "audit_log: $TMP/audit.log"
  echo "auth_tokens:"
  for i in $(seq 1 50); do
    printf '  - {name: app%d, token: "bench-token-%04d-abcdefgh", rules: [{prefix: "bench/", access: write}, {prefix: "bench/private%d/", access: deny}, {prefix: "other%d/", access: read}]}\n' "$i" "$i" "$i" "$i"
  done
} >>"$TMP/acl.yaml"
start_kvs acl "$P_ACL"
ACL=http://127.0.0.1:$P_ACL ACL_TOKEN=bench-token-0050-abcdefgh

SPECS=(
  "GET /health|-|-|$A|kvs health"
  "PUT /kv|$(human "$NKEYS")|100 B|$A|kvs put bench $NKEYS 100"
  "GET /kv|$(human "$NKEYS")|100 B|$A|kvs get bench $NKEYS 100"
  "mixed 70% GET / 30% PUT|$(human "$NKEYS")|100 B|$A|kvs mixed bench $NKEYS 100 70"
  "GET /kv/bench/?limit=100 (list)|$(human "$NKEYS")|-|$A|kvs list bench $NKEYS 100"
  "PUT /kv, 1 KiB|$(human "$N1K")|1 KiB|$A|kvs put v1k $N1K 1024"
  "GET /kv, 1 KiB|$(human "$N1K")|1 KiB|$A|kvs get v1k $N1K 1024"
  "PUT /kv, 10 KiB|$(human "$N10K")|10 KiB|$A|kvs put v10k $N10K 10240"
  "GET /kv, 10 KiB|$(human "$N10K")|10 KiB|$A|kvs get v10k $N10K 10240"
  "PUT /kv, sync_writes|$(human "$NKEYS")|100 B|$B|kvs put bench $NKEYS 100"
  "GET /kv, sync_writes|$(human "$NKEYS")|100 B|$B|kvs get bench $NKEYS 100"
  "PUT /kv, If-Match: * (conditional)|$(human "$NKEYS")|100 B|$A|kvs cput bench $NKEYS 100"
  "PUT /kv?ttl=1h|$(human "$NKEYS")|100 B|$A|kvs putttl bench $NKEYS 100"
  "PUT /kv, 50 scoped tokens + audit log|$(human "$NKEYS")|100 B|$ACL|kvs put bench $NKEYS 100 70 . 2 0 $ACL_TOKEN"
  "GET /kv, 50 scoped tokens + audit log|$(human "$NKEYS")|100 B|$ACL|kvs get bench $NKEYS 100 70 . 2 0 $ACL_TOKEN"
  "POST /txn, 1 put|$(human "$NKEYS")|100 B|$A|kvs txn bench $NKEYS 100 1"
  "POST /txn, 4 puts|$(human "$NKEYS")|100 B|$A|kvs txn bench $NKEYS 100 4"
  "POST /txn, 16 puts|$(human "$NKEYS")|100 B|$A|kvs txn bench $NKEYS 100 16"
  "GET /ui/keys.js (web console, 11 KB)|-|-|$A|kvs ui"
)
if [ "$HAVE_ETCD" = 1 ]; then
  start_etcd
  fill "$E" etcd bench "$NKEYS" 100
  SPECS+=(
    "etcd v2 PUT|$(human "$NKEYS")|100 B|$E|etcd put bench $NKEYS 100"
    "etcd v2 GET|$(human "$NKEYS")|100 B|$E|etcd get bench $NKEYS 100"
    "etcd GET /version|-|-|$E|etcd health"
  )
else
  log "etcd not installed: no side-by-side figures"
fi
if [ -n "$MAIN_PICK" ]; then   # quick: only the scenarios named in MAIN_PICK
  picked=()
  for spec in "${SPECS[@]}"; do
    case "|$MAIN_PICK|" in *"|${spec%%|*}|"*) picked+=("$spec") ;; esac
  done
  SPECS=("${picked[@]}")
fi

rounds "${SPECS[@]}"

if [ "$HAVE_ETCD" = 1 ]; then
  val etcd_rss_mb "$(rss_mb "$PID_etcd")"
  stop_pid "$PID_etcd"
fi
stop_kvs acl
stop_kvs syncw
stop_kvs single

# ================================================================== 1 (cont.) + 4: 1M keys
BIG=http://127.0.0.1:$P_BIG
kvs_config big "$P_BIG" false
start_kvs big "$P_BIG"
fill "$BIG" kvs big "$NBIG" 100
val fill_1m_s "$FILL_S"
pause 1
val rss_1m_mb "$(rss_mb "$PID_big")"
keys=$(metric "$P_BIG" kvs_keys)
[ "$keys" -ge "$NBIG" ] || log "warning: $keys keys after the fill, expected $NBIG"
stop_kvs big                                  # SIGTERM flushes and closes RocksDB
bytes=$(du -sb "$TMP/big.data" | awk '{print $1}')
val disk_per_key "$(awk -v b="$bytes" -v k="$keys" 'BEGIN {printf "%.0f (%.1f MB / %d keys)", b / k, b / 1e6, k}')"
start_kvs big "$P_BIG"
val startup_1m_ms "$STARTUP_MS"
log "start-up with $keys keys: $STARTUP_MS ms"
pause 2
val rss_1m_idle_mb "$(rss_mb "$PID_big")"
[ "$BIG_WRK" = 0 ] || rounds \
  "PUT /kv, $(human "$NBIG")-key store|$(human "$NBIG")|100 B|$BIG|kvs put big $NBIG 100" \
  "GET /kv, $(human "$NBIG")-key store|$(human "$NBIG")|100 B|$BIG|kvs get big $NBIG 100"
# a new node joining the 1M-key node with the default settings (issue 20): seconds from its
# start until /health says normal (it refuses writes with 503 until then), and its keys
kvs_config joiner "$P_JOIN" false "" "$P_BIG"
t0=$(now_ns)
"$KVS" "$TMP/joiner.yaml" >>"$TMP/joiner.log" 2>&1 &
PID_joiner=$!
RUNNING[$PID_joiner]="kvs joiner"
until curl -sf "http://127.0.0.1:$P_JOIN/health" 2>/dev/null | jq -e '.mode == "normal"' >/dev/null; do
  kill -0 "$PID_joiner" 2>/dev/null || { log "the joining node died:"; tail -5 "$TMP/joiner.log" >&2; break; }
  [ $(( ($(now_ns) - t0) / 1000000000 )) -lt 600 ] || { log "the joining node not normal after 600 s"; break; }
  sleep 0.2
done
JOIN_S=$(awk -v a="$t0" -v b="$(now_ns)" 'BEGIN {printf "%.1f", (b - a) / 1e9}')
val join_1m_s "$JOIN_S"
val join_1m_keys "$(metric "$P_JOIN" kvs_keys)"
log "a node joining the $(human "$NBIG")-key node was normal after $JOIN_S s with $(metric "$P_JOIN" kvs_keys) keys"
stop_kvs joiner
stop_kvs big

# ================================================================== 3: cluster (bench/cluster.sh)
bench_cluster
for n in $SCALE_SIZES; do bench_scale "$n"; done
val scale_sizes "$SCALE_SIZES"

# ================================================================== 6: slow-client flood
# One node with the defaults (http_threads, http_request_timeout_ms): sequential GET /health
# from 127.0.0.1, a fresh connection each, for FLOOD_S s without a flood, then for FLOOD_S s
# while FLOOD_CONNS connections from 127.0.0.2 send a request line a byte a second (each
# reopened as soon as the server closes it).
kvs_config flood "$P_FLOOD" false
start_kvs flood "$P_FLOOD"
val flood_settings "$("$KVS" --check-config "$TMP/flood.yaml" 2>/dev/null |
  awk -F': ' '$1 == "http_threads" || $1 == "http_request_timeout_ms" {printf "%s%s %s", s, $1, $2; s = ", "}')"
quiesce
log "slow-client flood: $FLOOD_CONNS connections from 127.0.0.2, ${FLOOD_S} s without then with"
"$PY" "$LIB" flood --port "$P_FLOOD" --conns "$FLOOD_CONNS" --duration "$FLOOD_S" \
  --src 127.0.0.2 --out "$TMP/flood.json" >/dev/null || { log "flood measurement failed"; exit 1; }
for k in requests errors p50 p99 max; do
  val "flood_base_$k" "$(jq -r ".base.$k" "$TMP/flood.json")"
  val "flood_$k" "$(jq -r ".flood.$k" "$TMP/flood.json")"
done
for k in conns duration gap ramp_s open_at_start open_at_end opened closed_by_server open_errors p99_ratio; do
  val "flood_$k" "$(jq -r ".$k" "$TMP/flood.json")"
done
log "flood: $(jq -c '{base: .base, flood: .flood, p99_ratio, open_at_start, closed_by_server}' "$TMP/flood.json")"
alive_after=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$P_FLOOD/health" || true)
[ "$alive_after" = 200 ] || log "warning: /health answered '$alive_after' after the flood"
stop_kvs flood

# ================================================================== 7: watches
bench_watches

# ================================================================== 8: expiry
bench_expiry

# ================================================================== 9: snapshots
bench_snapshot

# ================================================================== 10: libkvs and kvsctl
bench_client

# ================================================================== 5: report
report
