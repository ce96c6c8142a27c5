-- wrk script: POST Alertmanager webhook groups (one JSON body per line of BENCH_BODIES),
-- round-robin, with the integration key from BENCH_KEY.
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
local n = 0
function setup(thread)
  thread:set("offset", math.random(#bodies))
end
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[((n + offset) % #bodies) + 1])
end
