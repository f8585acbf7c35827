# bench/cluster.sh - the cluster scenarios of `make bench`, sourced by bench/run.sh (which
# defines kvs_config, start_kvs, run_wrk, rounds, val, log and the ports used here).
#
#   bench_cluster  three nodes: replication lag from 1,000 writes/s to full speed, a stopped
#                  peer, 30 s at full speed (issue 20 goal 1), and writes spread over all three
#                  nodes beside a three-member etcd cluster (goal 2)
#   bench_scale N  N small-memory nodes on this machine (goal 5): time to full membership,
#                  a write readable on every node at 500 writes/s, RSS and CPU per node

snap() { "$PY" "$LIB" snapshot "http://$1" "$2"; }
snap_all() { snap "$C1" "$TMP/$1.n1.$2"; snap "$C2" "$TMP/$1.n2.$2"; snap "$C3" "$TMP/$1.n3.$2"; }

# converge TAG LOAD_END_NS: after a load, writes a marker on node 1 and waits until nodes 2
# and 3 can read it and hold as many keys as node 1: the backlog queued before the marker has
# been applied.  Sets CONVERGE_S, seconds from the end of the load.
converge() {
  local tag=$1 t0=$2 k1 k2 k3 deadline=$((SECONDS + 300))
  curl -sf -X PUT -H 'Content-Type: application/json' -d '{"marker":true}' \
    "http://$C1/kv/marker/$tag" >/dev/null || { log "marker write failed"; exit 1; }
  while :; do
    if curl -sf -o /dev/null "http://$C2/kv/marker/$tag" && curl -sf -o /dev/null "http://$C3/kv/marker/$tag"; then
      k1=$(metric "$P_C1" kvs_keys); k2=$(metric "$P_C2" kvs_keys); k3=$(metric "$P_C3" kvs_keys)
      [ "$k2" = "$k1" ] && [ "$k3" = "$k1" ] && break
    fi
    [ $SECONDS -lt $deadline ] || { log "$tag: nodes 2 and 3 not caught up after 300 s"; break; }
    sleep 0.05
  done
  CONVERGE_S=$(secs_since "$t0")
}

# repaired SNAPSHOT...: records applied through anti-entropy (a push that never arrived)
repaired() {
  cat "$@" | awk '/^kvs_sync_items_applied_total/ && /kind="anti_entropy"/ {s += $2} END {printf "%d", s}'
}
# ae_settled TAG: anything left for anti-entropy to repair after TAG's load: waits one
# anti_entropy_interval (10 s) + 2 s after catching up (quick: PAUSE_SCALE of it, less than an
# interval), then records what its rounds applied meanwhile (those during the load raced the
# push, see lag_record)
ae_settled() {
  local tag=$1
  pause 12
  val "${tag}_ae_wait_s" "$(awk -v f="$PAUSE_SCALE" 'BEGIN {print 12 * f}')"
  snap_all "$tag" settled
  val "${tag}_ae_after" "$(($(repaired "$TMP/$tag".n?.settled) - $(repaired "$TMP/$tag".n?.after)))"
}
# synced SNAPSHOT...: records a regular or catch-up sync applied before their push came
synced() {
  cat "$@" | awk '/^kvs_sync_items_applied_total/ && /kind="(regular|catchup)"/ {s += $2} END {printf "%d", s}'
}

# lag_record TAG LABEL WRITES: histogram quantiles of nodes 2+3 between the snapshots, push
# drops and sync repairs on all three
# (with NODES="n1 n2 n3" the histograms of all three, for writes spread over them)
lag_record() {
  local tag=$1 label=$2 writes=$3 p50 p99 count share d0 d1 n files=()
  for n in ${NODES:-n2 n3}; do files+=("$TMP/$tag.$n.before" "$TMP/$tag.$n.after"); done
  read -r p50 p99 count share < <("$PY" "$LIB" lagq "${files[@]}")
  d0=$(cat "$TMP/$tag".n?.before | awk '$1 == "kvs_push_dropped_total" {s += $2} END {print s + 0}')
  d1=$(cat "$TMP/$tag".n?.after | awk '$1 == "kvs_push_dropped_total" {s += $2} END {print s + 0}')
  val "${tag}_label" "$label"
  val "${tag}_hist_p50" "$p50"; val "${tag}_hist_p99" "$p99"
  val "${tag}_hist_count" "$count / $((writes * 2))"; val "${tag}_hist_share" "$share"
  val "${tag}_push_dropped" "$((d1 - d0))"
  # records any node got through anti-entropy, or an earlier sync, instead of the push
  val "${tag}_repaired" "$(($(repaired "$TMP/$tag".n?.after) - $(repaired "$TMP/$tag".n?.before)))"
  val "${tag}_synced" "$(($(synced "$TMP/$tag".n?.after) - $(synced "$TMP/$tag".n?.before)))"
  val "${tag}_converge_s" "$CONVERGE_S"
  log "$tag: histogram lag p50 ${p50} s p99 ${p99} s, $count applies of $((writes * 2)) ($share <= 250 ms), caught up ${CONVERGE_S} s after the load"
}
direct_record() {
  local tag=$1 json=$2
  val "${tag}_direct_p50" "$(jq -r .lag_p50 "$json")"
  val "${tag}_direct_p99" "$(jq -r .lag_p99 "$json")"
  val "${tag}_direct_samples" "$(jq -r '"\(.samples)\(if .missing > 0 then " (\(.missing) never readable)" else "" end)"' "$json")"
  log "$tag: direct $(cat "$json")"
}

# sampler_start TAG SECONDS / sampler_wait: a slow writer on node 1 (20 writes/s, every one
# followed until readable on nodes 2 and 3) alongside a wrk load, for the direct figures
sampler_start() {
  "$PY" "$LIB" paced --writer "$C1" --readers "$C2,$C3" --rate 20 --duration "$2" \
    --prefix "lag$1" --sample-every 1 --threads 1 --pollers 4 --out "$TMP/$1.json" >/dev/null &
  SAMPLER=$!
  RUNNING[$SAMPLER]="paced sampler $1"
}
sampler_wait() { wait "$SAMPLER" || true; unset "RUNNING[$SAMPLER]"; }
median_rps() {
  awk -F'\t' -v sc="$1" '$1 == "wrk" && $2 == sc {print $4}' "$RES" | sort -n |
    awk '{v[NR] = $1} END {printf "%.0f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# spread_wrk SCENARIO KEYS SIZE URLS LUA-ARGS...: one timed run of three wrk processes at
# once, one per URL (comma-separated), THREADS threads and CONNS connections split between
# them; appends one result row: the summed req/s and requests, the worst p50 and p99.
spread_wrk() {
  local sc=$1 keys=$2 size=$3 urls=$4 i=0 url pids=() c0 rps=0 p50=0 p99=0 n=0 e1=0 e2=0
  shift 4
  IFS=, read -ra url_list <<<"$urls"
  quiesce
  c0=$(cpu_ticks)
  for url in "${url_list[@]}"; do
    i=$((i + 1))
    wrk -t1 -c"$((CONNS / ${#url_list[@]}))" -d"${DUR}s" --timeout 10s -s "$LUA" "$url" -- "$@" \
      >"$TMP/spread.$i.out" 2>&1 &
    pids+=($!)
    RUNNING[$!]="wrk spread $i"
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { log "wrk failed for $sc:"; cat "$TMP/spread.$((i + 1)).out" >&2; exit 1; }
    unset "RUNNING[${pids[$i]}]"
  done
  WRK_CPU_TICKS=$(($(cpu_ticks) - c0))
  for ((i = 1; i <= ${#url_list[@]}; i++)); do
    set -- $(grep '^RESULT ' "$TMP/spread.$i.out" | tail -1)
    [ $# -ge 7 ] || { log "no RESULT from wrk $i for $sc:"; cat "$TMP/spread.$i.out" >&2; exit 1; }
    rps=$(awk -v a="$rps" -v b="$2" 'BEGIN {print a + b}')
    p50=$(awk -v a="$p50" -v b="$3" 'BEGIN {print (b > a) ? b : a}')
    p99=$(awk -v a="$p99" -v b="$4" 'BEGIN {print (b > a) ? b : a}')
    n=$((n + $5)); e1=$((e1 + $6)); e2=$((e2 + $7))
  done
  printf 'wrk\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$sc" "$RUN" "$rps" "$p50" "$p99" "$n" "$e1" "$e2" "$keys" "$size" >>"$RES"
  log "$(printf '%-34s run %s: %9.0f req/s (3 wrk summed)  worst p99 %7.2f ms  errors %s/%s' \
    "$sc" "$RUN" "$rps" "$(awk -v v="$p99" 'BEGIN{print v/1000}')" "$e1" "$e2")"
  WRK_REQUESTS=$n
  WRK_TOTAL=$((WRK_TOTAL + n))
}

# start_etcd_cluster: three etcd members on loopback (ports P_E1..P_E3, peers P_EP1..P_EP3),
# the v2 API on; sets ECLUSTER, their client URLs, comma-separated.
start_etcd_cluster() {
  local i init="" pid
  for i in 1 2 3; do
    local pp="P_EP$i"
    init+="${init:+,}e$i=http://127.0.0.1:${!pp}"
  done
  ECLUSTER=""
  for i in 1 2 3; do
    local cp="P_E$i" pp="P_EP$i"
    etcd --name "e$i" --data-dir "$TMP/e$i.data" \
      --listen-client-urls "http://127.0.0.1:${!cp}" --advertise-client-urls "http://127.0.0.1:${!cp}" \
      --listen-peer-urls "http://127.0.0.1:${!pp}" --initial-advertise-peer-urls "http://127.0.0.1:${!pp}" \
      --initial-cluster "$init" --initial-cluster-state new \
      --enable-v2=true --logger zap --log-level warn >"$TMP/e$i.log" 2>&1 &
    pid=$!
    RUNNING[$pid]="etcd e$i"
    printf -v "PID_e$i" '%s' "$pid"
    ECLUSTER+="${ECLUSTER:+,}http://127.0.0.1:${!cp}"
  done
  for i in 1 2 3; do
    local cp="P_E$i" pv="PID_e$i"
    "$PY" "$LIB" waitup "http://127.0.0.1:${!cp}/health" "$(now_ns)" 60 "${!pv}" >/dev/null || {
      log "etcd e$i did not start; its log:"; tail -20 "$TMP/e$i.log" >&2; exit 1; }
  done
}

bench_cluster() {
  C1=127.0.0.1:$P_C1 C2=127.0.0.1:$P_C2 C3=127.0.0.1:$P_C3
  kvs_config n1 "$P_C1" false cluster
  kvs_config n2 "$P_C2" false cluster "$P_C1"
  kvs_config n3 "$P_C3" false cluster "$P_C1"
  start_kvs n1 "$P_C1"
  start_kvs n2 "$P_C2"
  start_kvs n3 "$P_C3"
  wait_cluster 3 "$P_C1" "$P_C2" "$P_C3"
  log "cluster of 3 formed"
  TAGS=()

  # --- paced 1,000 writes/s (python, every 10th write followed on nodes 2 and 3)
  snap_all c1k before
  "$PY" "$LIB" paced --writer "$C1" --readers "$C2,$C3" --rate 1000 --duration "$PACED_S" \
    --prefix lag1k --sample-every 10 --threads 4 --pollers 8 --out "$TMP/c1k.json" >/dev/null
  converge c1k "$(now_ns)"
  snap_all c1k after
  val c1k_rate "$(jq -r '.achieved_rate | floor' "$TMP/c1k.json")"
  lag_record c1k "paced 1,000 writes/s (python)" "$(jq -r .acked "$TMP/c1k.json")"
  direct_record c1k "$TMP/c1k.json"
  TAGS+=(c1k)

  # --- a slow peer (issue 20): node 3 SIGSTOPped while 1,000 writes/s go to node 1 for
  # STOP_S s; the lag to node 2 (every 10th write followed), then the seconds from SIGCONT
  # until node 3 holds as many keys as node 1
  STOP_S=$((PACED_S < 10 ? PACED_S : 10))
  kill -STOP "$PID_n3"
  "$PY" "$LIB" paced --writer "$C1" --readers "$C2" --rate 1000 --duration "$STOP_S" \
    --prefix stop1k --sample-every 10 --threads 4 --pollers 8 --out "$TMP/cstop.json" >/dev/null
  kill -CONT "$PID_n3"
  t_cont=$(now_ns)
  deadline=$((SECONDS + 120))
  until [ "$(metric "$P_C3" kvs_keys)" = "$(metric "$P_C1" kvs_keys)" ]; do
    [ $SECONDS -lt $deadline ] || { log "node 3 not caught up 120 s after SIGCONT"; break; }
    sleep 0.05
  done
  val cstop_catchup_s "$(secs_since "$t_cont")"
  val cstop_s "$STOP_S"
  val cstop_p99 "$(jq -r .lag_p99 "$TMP/cstop.json")"
  val cstop_p50 "$(jq -r .lag_p50 "$TMP/cstop.json")"
  log "slow peer: node 3 stopped $STOP_S s; lag to node 2 $(jq -c '{lag_p50, lag_p99, samples, missing}' "$TMP/cstop.json"); node 3 caught up $(secs_since "$t_cont") s after SIGCONT"

  # --- paced ladder with wrk (a delay per connection), then full speed: where does lag grow?
  LADDER=${BENCH_LADDER:-$LADDER_RATES}
  for rate in $LADDER; do
    tag=c$((rate / 1000))k
    snap_all "$tag" before
    sampler_start "$tag" "$((2 * DUR))"
    RUN=1
    save_dur=$DUR; DUR=$((2 * DUR))
    run_wrk "PUT /kv, cluster, paced $rate/s" "$(human "$NKEYS")" "100 B" "http://$C1" \
      kvs put "ladder$rate" "$NKEYS" 100 70 . "$THREADS" "$((CONNS * 1000 / rate))"
    DUR=$save_dur
    t_end=$(now_ns)
    sampler_wait
    writes=$WRK_REQUESTS
    converge "$tag" "$t_end"
    snap_all "$tag" after
    val "${tag}_rate" "$(median_rps "PUT /kv, cluster, paced $rate/s")"
    lag_record "$tag" "wrk paced at $rate writes/s" "$((writes + $(jq -r .acked "$TMP/$tag.json")))"
    direct_record "$tag" "$TMP/$tag.json"
    TAGS+=("$tag")
  done

  # --- full speed on node 1, RUNS rounds of DUR s (quick, CMAX=0: not run; one round of 1 s
  # would repeat the full-speed run below)
  if [ "$CMAX" = 1 ]; then
    snap_all cmax before
    sampler_start cmax "$((RUNS * DUR))"
    WRK_TOTAL=0
    rounds "PUT /kv, 3-node cluster, on node 1|$(human "$NKEYS")|100 B|http://$C1|kvs put max $NKEYS 100"
    t_end=$(now_ns)
    sampler_wait
    converge cmax "$t_end"
    snap_all cmax after
    val cmax_rate "$(median_rps "PUT /kv, 3-node cluster, on node 1")"
    lag_record cmax "wrk full speed (total write throughput)" "$((WRK_TOTAL + $(jq -r .acked "$TMP/cmax.json")))"
    direct_record cmax "$TMP/cmax.json"
    TAGS+=(cmax)
  fi

  # --- full speed on node 1 for FULL_S s, in one run (issue 20 goal 1): lag during the load,
  # catch-up after it, nothing dropped or left to anti-entropy
  snap_all cfull before
  sampler_start cfull "$FULL_S"
  RUN=1
  local save_dur=$DUR
  DUR=$FULL_S
  run_wrk "PUT /kv, 3-node cluster, node 1, ${FULL_S} s" "$(human "$NKEYS")" "100 B" "http://$C1" \
    kvs put full "$NKEYS" 100
  DUR=$save_dur
  t_end=$(now_ns)
  sampler_wait
  converge cfull "$t_end"
  snap_all cfull after
  val cfull_rate "$(median_rps "PUT /kv, 3-node cluster, node 1, ${FULL_S} s")"
  val cfull_s "$FULL_S"
  lag_record cfull "wrk full speed for $FULL_S s, one run" \
    "$((WRK_REQUESTS + $(jq -r .acked "$TMP/cfull.json")))"
  direct_record cfull "$TMP/cfull.json"
  ae_settled cfull
  # push bodies as sent (zstd, negotiated) against their JSON size, node 1
  local raw wire
  raw=$(awk '$1 == "kvs_push_bytes_total" {v[FILENAME] = $2} END {print v[ARGV[1]] - v[ARGV[2]]}' \
    "$TMP/cfull.n1.after" "$TMP/cfull.n1.before")
  wire=$(awk '$1 == "kvs_push_wire_bytes_total" {v[FILENAME] = $2} END {print v[ARGV[1]] - v[ARGV[2]]}' \
    "$TMP/cfull.n1.after" "$TMP/cfull.n1.before")
  val cfull_push_wire "$(awk -v r="$raw" -v w="$wire" 'BEGIN {printf "%.1f of %.1f MB (%.2f)", w / 1e6, r / 1e6, r ? w / r : 0}')"
  TAGS+=(cfull)

  # --- full speed spread over the three nodes (goal 2), beside a three-member etcd cluster
  # under the same load spread over its members, runs interleaved
  local kvs_urls="http://$C1,http://$C2,http://$C3" specs
  specs=("kvs|$kvs_urls|kvs")
  if [ "$HAVE_ETCD" = 1 ]; then
    start_etcd_cluster
    specs+=("etcd|$ECLUSTER|etcd")
  fi
  snap_all cspread before
  WRK_TOTAL=0
  local spread_kvs=0 spec who urls api
  for ((RUN = 1; RUN <= RUNS; RUN++)); do
    for spec in "${specs[@]}"; do
      IFS='|' read -r who urls api <<<"$spec"
      spread_wrk "PUT, 3-member $who cluster, spread over all 3" "$(human "$NKEYS")" "100 B" \
        "$urls" "$api" put spread "$NKEYS" 100
      [ "$who" = etcd ] || spread_kvs=$((spread_kvs + WRK_REQUESTS))
    done
  done
  t_end=$(now_ns)
  converge cspread "$t_end"
  snap_all cspread after
  val cspread_rate "$(median_rps "PUT, 3-member kvs cluster, spread over all 3")"
  NODES="n1 n2 n3" lag_record cspread "wrk full speed spread over the 3 nodes (all 3 nodes' lag)" \
    "$spread_kvs"
  ae_settled cspread
  TAGS+=(cspread)
  if [ "$HAVE_ETCD" = 1 ]; then
    stop_pid "$PID_e3"; stop_pid "$PID_e2"; stop_pid "$PID_e1"
  fi

  val cluster_tags "${TAGS[*]}"
  stop_kvs n3; stop_kvs n2; stop_kvs n1
}

# bench_scale N: N nodes with a small-memory config (8 HTTP threads, 8 watchers, 4 MiB record
# cache, 1,000 changes of watch history), all seeded by node 1, started at once.  Records the
# seconds from the first start until every node lists all N alive; then 500 writes/s to node 1
# for PACED_S s, every 25th followed until readable on every other node (polled one node after
# another, so the figure includes a sweep over N-1 nodes); RSS and CPU per node meanwhile.
bench_scale() {
  local n=$1 i ports pids=() nodes=() t0 t1 c0 c1 o0 b0 ticks secs rss_sum=0 rss_max=0 r others
  mapfile -t ports < <("$PY" "$LIB" ports "$n")
  for ((i = 0; i < n; i++)); do
    kvs_config "s$i" "${ports[$i]}" false cluster "$([ "$i" = 0 ] || echo "${ports[0]}")"
    printf 'http_threads: 8\nmax_watchers: 8\ncache_bytes: 4194304\nwatch_history: 1000\n' \
      >>"$TMP/s$i.yaml"
    nodes+=("127.0.0.1:${ports[$i]}")
  done
  t0=$(now_ns)
  for ((i = 0; i < n; i++)); do
    "$KVS" "$TMP/s$i.yaml" >>"$TMP/s$i.log" 2>&1 &
    pids+=($!)
    RUNNING[$!]="kvs s$i"
  done
  if secs=$("$PY" "$LIB" members_wait "$t0" 300 "${nodes[@]}"); then
    val "scale${n}_members_s" "$secs"
    log "$n nodes: full membership on every node $secs s after the first start"
    others=$(IFS=,; echo "${nodes[*]:1}")
    c0=$(for p in "${pids[@]}"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{s += $1} END {print s}')
    o0=$(awk '{print $14 + $15}' "/proc/${pids[0]}/stat")
    b0=$(metric "${ports[0]}" kvs_push_batches_sent_total)
    t1=$(now_ns)
    "$PY" "$LIB" paced --writer "${nodes[0]}" --readers "$others" --rate 500 --duration "$PACED_S" \
      --prefix "scale$n" --sample-every 25 --threads 2 --pollers 8 --out "$TMP/scale$n.json" >/dev/null
    c1=$(for p in "${pids[@]}"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{s += $1} END {print s}')
    ticks=$(getconf CLK_TCK)
    # the origin: its share of a core, and push requests per write (batches x peers)
    val "scale${n}_origin_cpu_pct" "$(awk -v d="$(($(awk '{print $14 + $15}' "/proc/${pids[0]}/stat") - o0))" \
      -v t="$ticks" -v a="$t1" -v b="$(now_ns)" 'BEGIN {printf "%.1f", 100 * d / t / ((b - a) / 1e9)}')"
    val "scale${n}_pushes_per_write" "$(awk -v d="$(($(metric "${ports[0]}" kvs_push_batches_sent_total) - b0))" \
      -v w="$(jq -r .acked "$TMP/scale$n.json")" 'BEGIN {printf "%.1f", d / w}')"
    val "scale${n}_cpu_pct" "$(awk -v d="$((c1 - c0))" -v t="$ticks" -v n="$n" -v a="$t1" -v b="$(now_ns)" \
      'BEGIN {printf "%.1f", 100 * d / t / n / ((b - a) / 1e9)}')"
    for p in "${pids[@]}"; do
      r=$(rss_kb "$p"); rss_sum=$((rss_sum + r)); [ "$r" -le "$rss_max" ] || rss_max=$r
    done
    val "scale${n}_rss_mb" "$(awk -v s="$rss_sum" -v m="$rss_max" -v n="$n" \
      'BEGIN {printf "%.1f (max %.1f)", s / n / 1024, m / 1024}')"
    val "scale${n}_p50" "$(jq -r .lag_p50 "$TMP/scale$n.json")"
    val "scale${n}_p99" "$(jq -r .lag_p99 "$TMP/scale$n.json")"
    val "scale${n}_rate" "$(jq -r '.achieved_rate | floor' "$TMP/scale$n.json")"
    val "scale${n}_samples" "$(jq -r '"\(.samples)\(if .missing > 0 then " (\(.missing) never readable on all)" else "" end)"' "$TMP/scale$n.json")"
    log "$n nodes: $(cat "$TMP/scale$n.json"); CPU $(awk -v d="$((c1 - c0))" -v t="$ticks" -v n="$n" 'BEGIN {printf "%.2f", d / t / n}') s per node"
  else
    val "scale${n}_members_s" "not full in 300 s"
    log "$n nodes: membership not full after 300 s"
  fi
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for ((i = n - 1; i >= 0; i--)); do stop_pid "${pids[$i]}"; done
}
