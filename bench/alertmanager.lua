-- wrk script: POST Alertmanager webhook groups (one JSON body per line of BENCH_BODIES),
-- round-robin, with the integration key from BENCH_KEY.
-- Each thread sends its own share of the groups (thread k of T: every T-th group), so no
-- two senders deliver one group at the same moment — Alertmanager never does: it sends a
-- group's notifications one after another. (Two threads crossing over the same groups made
-- deliveries wait for each other's row locks, a tail that real traffic does not have.)
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
-- The thread count comes from BENCH_THREADS (wrk's -t): wrk starts each thread right after
-- its setup, so a later setup must not write into an earlier thread's Lua state (that race
-- once turned `count` into a string mid-run).
local threads = 0
local count = tonumber(os.getenv("BENCH_THREADS") or "2")
function setup(thread)
  thread:set("id", threads)
  thread:set("count", count)
  thread:set("offset", math.random(#bodies))
  threads = threads + 1
end
-- BENCH_REPEAT=k sends each group k times in a row: a thread's connections then deliver
-- k copies of one group at the same moment (the concurrent-duplicates case).
local copies = tonumber(os.getenv("BENCH_REPEAT") or "1")
local n = 0
function request()
  n = n + 1
  local k = math.floor((n - 1) / copies) + 1
  return wrk.format(nil, nil, nil, bodies[(((k + offset) * count + id) % #bodies) + 1])
end
