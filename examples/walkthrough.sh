#!/usr/bin/env bash
# A curl walk-through of the whole kvs API against one running node.
#   make run                      # in another terminal (port 8080)
#   examples/walkthrough.sh       # or: KVS=http://127.0.0.1:8081 examples/walkthrough.sh
set -euo pipefail
KVS=${KVS:-http://127.0.0.1:8080}

step() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; echo; }

step "health: mode and members"
run curl -s "$KVS/health"

step "write a JSON value (any JSON: object, array, string, number, true/false/null)"
run curl -s -X PUT "$KVS/kv/users/john/profile" -d '{"name":"John","age":42}'
run curl -s -X PUT "$KVS/kv/users/jane/profile" -d '{"name":"Jane"}'
run curl -s -X PUT "$KVS/kv/users/john" -d '"a path can be a value and a prefix"'

step "read it back: the exact bytes, version in ETag and X-Kvs-Timestamp"
run curl -s -i "$KVS/kv/users/john/profile"

step "overwrite: a new UUID and a larger timestamp"
run curl -s -X PUT "$KVS/kv/users/john/profile" -d '{"name":"John","age":43}'

step "list a prefix (trailing slash), then page through it"
run curl -s "$KVS/kv/users/"
run curl -s "$KVS/kv/users/?limit=1"
run curl -s "$KVS/kv/users/?limit=1&after=users/jane/profile"
run curl -s "$KVS/kv/users/?values=true"

step "delete: 204, then 404"
run curl -s -o /dev/null -w '%{http_code}\n' -X DELETE "$KVS/kv/users/jane/profile"
run curl -s -w '  (%{http_code})\n' "$KVS/kv/users/jane/profile"

step "errors are JSON with a fitting status"
run curl -s -w '  (%{http_code})\n' -X PUT "$KVS/kv/bad" -d '{"n": 01}'
run curl -s -w '  (%{http_code})\n' "$KVS/kv/a//b"
run curl -s -i -X POST "$KVS/kv/users/john"

step "cluster view and metrics"
run curl -s "$KVS/members/"
curl -s "$KVS/metrics" | grep -E '^kvs_(keys|tombstones|mode)' ; echo
