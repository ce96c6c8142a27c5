#!/usr/bin/env bash
# The notifications benchmark (script/bench notifications): an alert storm opens 1,000 new
# incidents in one rotation that has a signed webhook channel and an escalation step to the
# on-call's signed webhook; a receiver on loopback answers 200 and counts. Prints the time
# from the last incident's opening to the last notification delivered, deliveries/s, and the
# ingestion rate of resends (wrk, 16 senders) alone and while the notifications drain.
# Target: every notification delivered within 30 s; ingestion within 10 % while draining.
set -euo pipefail
pgbin="$1"; tmp="$2"
storm=${BENCH_STORM_INCIDENTS:-1000}
psql -X -q -d "host=$tmp dbname=postgres user=bench" -c "CREATE DATABASE notify"
export DATABASE_URL="host=$tmp dbname=notify user=bench"
"$BENCH_BIN/handrail" migrate >/dev/null 2>&1
for who in lena rhea; do
  echo "bench $who chose this password" | "$BENCH_BIN/handrail" users create --username "$who" --role lead --password-stdin >/dev/null
done
token=$("$BENCH_BIN/handrail" tokens create --user lena --name bench)
"$BENCH_BIN/handrail" rotations create ml-platform --members lena,rhea --time-zone UTC --start-date 2026-01-05 >/dev/null
now=$(date -u +%s)
"$BENCH_BIN/handrail" rotations override ml-platform --user lena --from "$(date -u -d @$((now - 3600)) +%FT%TZ)" \
  --to "$(date -u -d @$((now + 7200)) +%FT%TZ)" --reason bench >/dev/null
am_key=$("$BENCH_BIN/handrail" integrations create --name bench-am --kind alertmanager)
generic_key=$("$BENCH_BIN/handrail" integrations create --name bench-generic --kind generic)

python3 - "$tmp/receiver.port" > "$tmp/receiver.log" 2>&1 <<'PY' &
import sys, time, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
times = []
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as chat services and webhook receivers answer
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock: times.append(time.time())
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def do_GET(self):
        with lock: body = f"{len(times)} {min(times) if times else 0} {max(times) if times else 0}".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
ThreadingHTTPServer.daemon_threads = True
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
receiver_pid=$!
for _ in $(seq 1 50); do [ -s "$tmp/receiver.port" ] && break; sleep 0.1; done
receiver="http://127.0.0.1:$(cat "$tmp/receiver.port")"

HANDRAIL_LOG_LEVEL=warning HANDRAIL_LISTEN=127.0.0.1:18093 HANDRAIL_WEBHOOK_ALLOW=127.0.0.0/8 "$BENCH_BIN/handrail" serve >"$tmp/notify-server.log" 2>&1 &
pid=$!
trap 'kill $pid $receiver_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18093/readyz >/dev/null 2>&1 && break; sleep 0.2; done
api() { curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
api -X POST -d "{\"kind\": \"webhook\", \"label\": \"team\", \"url\": \"$receiver/team\"}" http://127.0.0.1:18093/api/v1/rotations/ml-platform/channels >/dev/null
api -X POST -d "{\"kind\": \"webhook\", \"label\": \"phone\", \"address\": \"$receiver/lena\"}" http://127.0.0.1:18093/api/v1/me/contact-methods >/dev/null
api -X PUT -d '{"steps": [{"after_minutes": 0, "notify": "on_call"}]}' http://127.0.0.1:18093/api/v1/rotations/ml-platform/escalation >/dev/null

# Resends alone: the ingestion rate to compare with.
python3 bench/make_bodies.py 200 > "$tmp/bodies.jsonl"
cat > "$tmp/resend.lua" <<LUA
local bodies = {}
for line in io.lines("$tmp/bodies.jsonl") do bodies[#bodies + 1] = line end
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/api/v1/alerts/alertmanager", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $am_key"}, bodies[(n % #bodies) + 1])
end
LUA
wrk -t2 -c16 -d3s -s "$tmp/resend.lua" http://127.0.0.1:18093 >/dev/null  # the 200 groups opened, warm
# Their 400 notifications drain before anything is measured.
drained() { [ "$(psql -X -At -d "$DATABASE_URL" -c "SELECT count(*) FROM notifications WHERE state = 'pending'")" = 0 ]; }
for _ in $(seq 1 240); do drained && break; sleep 0.5; done
# Then ANALYZE, as the ingestion benchmark does and autovacuum would within a minute: without
# statistics the planner takes the 2,000 alerts for an empty table and scans it, and the
# resends' rate doubles whenever autovacuum gets there, in whichever window that happens.
psql -X -q -d "$DATABASE_URL" -c "ANALYZE" -c "CHECKPOINT"
# CPU ticks (user + system) of Handrail, of every PostgreSQL process and of the receiver: on a
# machine whose cores they all share, where the draining's cost goes.
ticks() {
  local pg=0 p
  for p in $(head -1 "$tmp/data/postmaster.pid") $(pgrep -P "$(head -1 "$tmp/data/postmaster.pid")"); do
    [ -r "/proc/$p/stat" ] && pg=$((pg + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$(awk '{print $14 + $15}' "/proc/$pid/stat") $pg $(awk '{print $14 + $15}' "/proc/$receiver_pid/stat")"
}
# BENCH_STATEMENTS=1: PostgreSQL's time by statement in each 5 s window.
statements_reset() {
  [ -z "${BENCH_STATEMENTS:-}" ] && return 0
  psql -X -q -d "$DATABASE_URL" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" -c "SELECT pg_stat_statements_reset()" -c "SELECT pg_stat_reset()" >/dev/null
}
statements_print() {
  [ -z "${BENCH_STATEMENTS:-}" ] && return 0
  echo "== statements during $1 (BENCH_STATEMENTS)"
  psql -X -d "$DATABASE_URL" -c "SELECT calls, plans, round((total_exec_time + total_plan_time)::numeric, 0) AS ms,
    round(((total_exec_time + total_plan_time) / calls)::numeric, 3) AS ms_per_call, shared_blks_hit / calls AS blocks_per_call, left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
    FROM pg_stat_statements WHERE calls > 0 ORDER BY total_exec_time + total_plan_time DESC LIMIT 12" \
    -c "SELECT sessions, xact_commit, xact_rollback, blks_hit, tup_updated, tup_inserted FROM pg_stat_database WHERE datname = current_database()"
}
statements_reset
t0=$(ticks)
alone=$(wrk -t2 -c16 -d5s -s "$tmp/resend.lua" http://127.0.0.1:18093 | awk '/Requests\/sec/ {print $2}')
t1=$(ticks)
statements_print "the 5 s of resends alone"

# The storm: new incidents from 16 senders, then resends while the notifications drain.
read -r before _ <<< "$(curl -s "$receiver/")"
python3 - "$generic_key" "$storm" > "$tmp/storm.txt" <<'PY'
import json, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
key, n = sys.argv[1], int(sys.argv[2])
def send(i):
    body = {"dedup_key": f"storm-{i}", "alertname": "FeatureDriftHigh", "labels": {"model": f"storm-model-{i}", "feature": "age"},
            "summary": "PSI 0.3", "value": 0.3}
    req = urllib.request.Request("http://127.0.0.1:18093/api/v1/alerts/generic", data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 200
start = time.time()
with ThreadPoolExecutor(16) as pool:
    list(pool.map(send, range(n)))
print(start, time.time())
PY
read -r storm_start storm_end < "$tmp/storm.txt"
statements_reset
t2=$(ticks)
during=$(wrk -t2 -c16 -d5s -s "$tmp/resend.lua" http://127.0.0.1:18093 | awk '/Requests/ {print $2}')
t3=$(ticks)
read -r c2 _ <<< "$(curl -s "$receiver/")"
statements_print "the 5 s of resends while draining"
expected=$((before + storm * 2))
deadline=$(( $(date +%s) + 120 ))
while :; do
  read -r count first last <<< "$(curl -s "$receiver/")"
  [ "$count" -ge "$expected" ] && break
  [ "$(date +%s)" -ge "$deadline" ] && break
  sleep 0.5
done
# The same resends once everything is delivered: what the storm's incidents alone cost them.
statements_reset
after=$(wrk -t2 -c16 -d5s -s "$tmp/resend.lua" http://127.0.0.1:18093 | awk '/Requests/ {print $2}')
statements_print "the 5 s of resends after the drain"
failed=$(psql -X -At -d "$DATABASE_URL" -c "SELECT count(*) FROM notifications WHERE state <> 'delivered'")
python3 - "$storm" "$storm_start" "$storm_end" "$((count - before))" "$((expected - before))" "$storm_start" "$last" "$alone" "$during" "$failed" \
  "$t0" "$t1" "$t2" "$t3" "$(getconf CLK_TCK)" "$((c2 - before))" "$after" <<'PY'
import sys
storm, s0, s1, count, expected, first, last, alone, during, failed = sys.argv[1:11]
t0, t1, t2, t3 = ([int(x) for x in t.split()] for t in sys.argv[11:15])
hz, drained_in_window, after = int(sys.argv[15]), int(sys.argv[16]), float(sys.argv[17])
storm, count, expected, failed = int(storm), int(count), int(expected), int(failed)
s0, s1, first, last, alone, during = map(float, (s0, s1, first, last, alone, during))
print(f"== storm: {storm} new incidents in {s1 - s0:.1f} s ({storm / (s1 - s0):.0f}/s), each a channel message and an escalation to the on-call")
print(f"notifications delivered: {count} of {expected}; not delivered: {failed}")
print(f"last incident opened → last notification delivered: {max(0, last - s1):.1f} s (target: < 30 s)")
print(f"deliveries/s from the storm's start to the last delivery: {count / max(0.001, last - first):.0f}")
print(f"resend ingestion alone: {alone:.0f} deliveries/s; while notifications drain: {during:.0f}/s ({during / alone * 100:.0f} %); after the drain: {after:.0f}/s")
def cpu(a, b):
    return "  ".join(f"{name} {(y - x) / hz:.2f} s" for name, x, y in zip(("handrail", "postgres", "receiver"), a, b))
print(f"CPU during 5 s of resends alone:       {cpu(t0, t1)}")
print(f"CPU during 5 s of resends and draining: {cpu(t2, t3)} ({drained_in_window} notifications delivered by its end)")
PY
