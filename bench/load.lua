-- wrk script shared by every load in bench/run.sh, for kvs and for etcd's v2 API.
--
--   wrk -s bench/load.lua URL -- API MODE PREFIX NKEYS SIZE [GETPCT] [MARKDIR] [THREADS] [DELAY]
--
--   API     kvs | etcd
--   MODE    health  GET /health (kvs) or /version (etcd): the server's own ceiling
--           ui      GET /ui/keys.js (kvs): the web console's largest file, from memory
--           put     PUT a SIZE-byte value to a random key of NKEYS
--           get     GET a random key of NKEYS (prefill them first)
--           mixed   GETPCT % get, the rest put, random keys
--           list    GET /kv/PREFIX/?limit=100&after=<random key>: pages of 100 keys
--           cput    PUT with If-Match: * to a random key of NKEYS (prefilled: the condition
--                   holds, so the check and the write are both done)
--           txn     POST /txn of GETPCT put ops on distinct random keys of NKEYS
--           putttl  PUT ?ttl=1h to a random key of NKEYS
--           fill    PUT keys 0..NKEYS-1 once each, split across threads; each thread
--                   writes MARKDIR/done.<thread> when all its keys are acknowledged and
--                   stops; run.sh interrupts wrk once every thread has finished.
--   THREADS  wrk's -t, for fill
--   DELAY    milliseconds each connection waits before its next request (paced load:
--            about connections * 1000 / DELAY requests/s); 0 = full speed
--   TOKEN    a bearer token every kvs request carries (access control); none by default
--
-- Keys are PREFIX/k%08d.  Values: kvs gets a JSON string document of exactly SIZE bytes,
-- etcd a form body value=<SIZE bytes>; both are drawn from a pool of 64 random alphanumeric
-- strings, so that compression does not flatter the disk figures.
--
-- Every request is built by the same request() path, and health also draws and formats a
-- random key path (then drops it), so the client's cost per request is the same for health
-- and get, and their ratio compares the server alone.
-- done() prints one line: "RESULT <req/s> <p50 us> <p99 us> <requests> <HTTP status >= 400> <socket errors>".

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local api, mode, prefix, nkeys, size, getpct, markdir
local pool = {}
local POOL = 64
local nthreads = 1
local pace_ms = 0
local seq, quota, acked, finished = 0, 0, 0, false
local last_req

local kvs_hdr  = { ["Content-Type"] = "application/json" }
local etcd_hdr = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local cput_hdr = { ["Content-Type"] = "application/json", ["If-Match"] = "*" }
local get_hdr  = nil

local charset = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

local function randstr(n)
  local t = {}
  for i = 1, n do
    local c = math.random(1, #charset)
    t[i] = charset:sub(c, c)
  end
  return table.concat(t)
end

function init(args)
  api     = args[1] or "kvs"
  mode    = args[2] or "health"
  prefix  = args[3] or "bench"
  nkeys   = tonumber(args[4] or "100000")
  size    = tonumber(args[5] or "100")
  getpct  = tonumber(args[6] or "70")
  markdir = args[7] or "."
  nthreads = tonumber(args[8] or "2")
  pace_ms  = tonumber(args[9] or "0")
  if args[10] and args[10] ~= "" then
    local auth = "Bearer " .. args[10]
    kvs_hdr["Authorization"] = auth
    cput_hdr["Authorization"] = auth
    get_hdr = { ["Authorization"] = auth }
  end
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  for i = 1, POOL do
    if api == "kvs" then
      pool[i] = '{"data":"' .. randstr(size - 11) .. '"}'
    else
      pool[i] = "value=" .. randstr(size)
    end
  end
  if mode == "fill" then
    -- keys tid, tid+T, tid+2T, ... below nkeys.  wrk calls request() once on thread 0
    -- to verify the script and drops that request, so the first key of every thread is
    -- generated twice (one extra acknowledgement expected).
    seq = tid or 0
    quota = 1
    for i = seq, nkeys - 1, nthreads do quota = quota + 1 end
  end
end


local function keypath(i)
  if api == "kvs" then
    return string.format("/kv/%s/k%08d", prefix, i)
  else
    return string.format("/v2/keys/%s/k%08d", prefix, i)
  end
end

local function put(i)
  local body = pool[(i % POOL) + 1]
  if api == "kvs" then
    return wrk.format("PUT", keypath(i), kvs_hdr, body)
  else
    return wrk.format("PUT", keypath(i), etcd_hdr, body)
  end
end

local function get(i)
  return wrk.format("GET", keypath(i), get_hdr, nil)
end


local function putttl(i)
  local path = keypath(i) .. "?ttl=1h"
  return wrk.format("PUT", path, kvs_hdr, pool[(i % POOL) + 1])
end

local function cput(i)
  return wrk.format("PUT", keypath(i), cput_hdr, pool[(i % POOL) + 1])
end

-- a transaction of n puts on n distinct random keys (the pool's values are JSON)
local function txn(n)
  local ops, used = {}, {}
  while #ops < n do
    local i = math.random(0, nkeys - 1)
    if not used[i] then
      used[i] = true
      ops[#ops + 1] = string.format('{"op":"put","key":"%s/k%08d","value":%s}', prefix, i,
                                    pool[(i % POOL) + 1])
    end
  end
  return wrk.format("POST", "/txn", kvs_hdr, '{"ops":[' .. table.concat(ops, ",") .. ']}')
end

function request()
  if mode == "health" then
    -- the client work of a get (a random key, its path), thrown away: the ceiling and the
    -- reads then cost wrk the same per request, and their ratio compares the servers alone
    keypath(math.random(0, nkeys - 1))
    if api == "kvs" then
      return wrk.format("GET", "/health", nil, nil)
    else
      return wrk.format("GET", "/version", nil, nil)
    end
  elseif mode == "ui" then
    keypath(math.random(0, nkeys - 1)) -- the same client work as health
    return wrk.format("GET", "/ui/keys.js", nil, nil)
  elseif mode == "put" then
    return put(math.random(0, nkeys - 1))
  elseif mode == "get" then
    return get(math.random(0, nkeys - 1))
  elseif mode == "putttl" then
    return putttl(math.random(0, nkeys - 1))
  elseif mode == "cput" then
    return cput(math.random(0, nkeys - 1))
  elseif mode == "txn" then
    return txn(getpct)
  elseif mode == "mixed" then
    local i = math.random(0, nkeys - 1)
    if math.random(1, 100) <= getpct then return get(i) else return put(i) end
  elseif mode == "list" then
    local i = math.random(0, nkeys - 1)
    return wrk.format("GET", string.format("/kv/%s/?limit=100&after=%s/k%08d", prefix, prefix, i),
                      nil, nil)
  elseif mode == "fill" then
    if last_req == nil then
      last_req = put(seq)
      return last_req
    end
    if seq < nkeys then
      last_req = put(seq)
      seq = seq + nthreads
    end
    -- past the quota: overwrite this thread's last key until run.sh stops wrk
    return last_req
  end
end

-- response() only in fill mode: wrk skips parsing bodies when it is nil.
local function fill_response(status, headers, body)
  if status >= 200 and status < 300 then
    acked = acked + 1
  end
  if not finished and acked >= quota then
    finished = true
    local f = io.open(string.format("%s/done.%d", markdir, tid or 0), "w")
    if f then f:write(acked, "\n"); f:close() end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT %.1f %d %d %d %d %d\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(99),
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end

-- init() runs before the first request; install response only for fill.
local real_init = init
function init(args)
  real_init(args)
  if mode == "fill" then response = fill_response end
  if pace_ms > 0 then delay = function() return pace_ms end end
end
