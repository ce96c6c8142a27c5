-- wrk script: an alert storm. Every request is a new Alertmanager group of 10 new alerts
-- (FeatureDriftHigh for a model never seen before: fresh fingerprints and grouping key), so
-- each delivery opens one incident. BENCH_KEY is the integration key; BENCH_RUN makes the
-- groups of one run distinct from every earlier run's.
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
local run = os.getenv("BENCH_RUN") or "0"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
local n = 0
function request()
  n = n + 1
  local model = string.format("storm-%s-%d-%d", run, id, n)
  local alerts = {}
  for a = 0, 9 do
    alerts[#alerts + 1] = string.format(
      '{"status":"firing","labels":{"alertname":"FeatureDriftHigh","model":"%s","feature":"f%d","severity":"warning"},' ..
      '"annotations":{"summary":"PSI 0.1%d on f%d","value":"0.1%d"},"startsAt":"2026-11-22T09:00:00.000Z",' ..
      '"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus:9090/graph?g0.expr=psi","fingerprint":"%s-%04x"}',
      model, a, a, a, a, model, a)
  end
  local body = string.format(
    '{"version":"4","groupKey":"{}:{alertname=\\"FeatureDriftHigh\\", model=\\"%s\\"}","truncatedAlerts":0,"status":"firing",' ..
    '"receiver":"handrail","groupLabels":{"alertname":"FeatureDriftHigh","model":"%s"},' ..
    '"commonLabels":{"alertname":"FeatureDriftHigh","model":"%s"},"commonAnnotations":{},' ..
    '"externalURL":"http://alertmanager:9093","alerts":[%s]}', model, model, model, table.concat(alerts, ","))
  return wrk.format(nil, nil, nil, body)
end
