#!/usr/bin/env bash
# Starts node1..node3 (node1.yaml..node3.yaml) in a scratch directory, shows
# a write replicating, a node dying and coming back, and a conflict being
# resolved by vote.  Stops every process it started, by PID, on exit.
#   make all && examples/cluster_demo.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KVS=$ROOT/build/kvs
WORK=$(mktemp -d /tmp/kvs-demo.XXXXXX)
declare -A PID=()

cleanup() {
	for n in "${!PID[@]}"; do kill "${PID[$n]}" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "logs and data kept in $WORK"
}
trap cleanup EXIT

start() { # start N: node N from nodeN.yaml, data in $WORK/dataN
	(cd "$WORK" && exec "$KVS" "$ROOT/node$1.yaml" 2>>"$WORK/node$1.log") &
	PID[$1]=$!
	until curl -sf "localhost:808$1/health" >/dev/null; do sleep 0.1; done
}
members() { curl -s "localhost:808$1/members/" | jq -r '[.[] | "\(.id)=\(.status)"] | join(" ")'; }
say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }

say "three nodes on 8081..8083"
for i in 1 2 3; do start $i; done
until [ "$(curl -s localhost:8083/health | jq .member_count)" = 3 ]; do sleep 0.2; done
for i in 1 2 3; do echo "node$i sees: $(members $i)"; done

say "a write on node1 is readable on node2 and node3"
curl -s -X PUT localhost:8081/kv/demo/greeting -d '"hello"'; echo
sleep 0.2
for i in 2 3; do echo "node$i: $(curl -s localhost:808$i/kv/demo/greeting)"; done

say "kill -9 node3; the others report it unhealthy within seconds"
kill -9 "${PID[3]}"; unset 'PID[3]'
until members 1 | grep -q node3=unhealthy; do sleep 0.5; done
echo "node1 sees: $(members 1)"
curl -s -X PUT localhost:8081/kv/demo/while-down -d '{"written":"while node3 was down"}'; echo

say "restart node3: alive again, and it catches up on what it missed"
start 3
until [ "$(curl -s -o /dev/null -w '%{http_code}' localhost:8083/kv/demo/while-down)" = 200 ]; do sleep 0.2; done
echo "node3: $(curl -s localhost:8083/kv/demo/while-down)"
echo "node1 sees: $(members 1)"

say "a conflict: two data dirs with the same paths and timestamps, other UUIDs"
for i in 1 2 3; do kill "${PID[$i]}"; done; wait || true; PID=()
rm -rf "$WORK/data1" "$WORK/data2" "$WORK/data3"
"$ROOT/build/test_conflict" "$WORK/data1" "$WORK/data2" | head -8
start 1; start 2
until [ "$(grep -c conflict_resolved "$WORK/node2.log" || true)" -ge 8 ]; do sleep 0.2; done
grep conflict_resolved "$WORK/node2.log" | head -3
for i in 1 2; do echo "node$i greeting: $(curl -s localhost:808$i/kv/greeting) ETag $(curl -s -o /dev/null -D - localhost:808$i/kv/greeting | grep -i etag | tr -d '\r')"; done
