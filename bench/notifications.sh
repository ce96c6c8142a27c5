#!/usr/bin/env bash
# The notifications benchmark (script/bench notifications): an alert storm opens 1,000 new
# incidents in one rotation that has a signed webhook channel and an escalation step to the
# on-call's signed webhook; a receiver on loopback answers 200 and counts. Prints the time
# from the last incident's opening to the last notification delivered, deliveries/s, and the
# ingestion rate of resends (wrk, 16 senders) alone and while the notifications drain, in rounds.
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
# BENCH_STATEMENTS=1: PostgreSQL's time by statement in a window.
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
# Rounds (BENCH_ROUNDS, default 5): resends alone for a window (BENCH_WINDOW seconds, default
# 10); a storm of new incidents from 16 senders; resends for a window while its notifications
# drain; the drain's end. A last window alone closes the run, so each draining window sits
# between two windows alone and the machine's drift (and the tables' growth) falls on both
# sides of the comparison. Windows alone differ by up to ±10 % on these machines: the median
# of the rounds is the figure.
rounds=${BENCH_ROUNDS:-5}
window=${BENCH_WINDOW:-10}
resends() { wrk -t2 -c16 -d${window}s -s "$tmp/resend.lua" http://127.0.0.1:18093 | awk '/Requests\/sec/ {print $2}'; }
: > "$tmp/rounds.txt"
for round in $(seq 1 "$rounds"); do
  t0=$(ticks); alone=$(resends); t1=$(ticks)
  read -r before _ <<< "$(curl -s "$receiver/")"
  python3 - "$generic_key" "$storm" "$round" > "$tmp/storm.txt" <<'PY'
import json, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
key, n, round = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def send(i):
    body = {"dedup_key": f"storm-{round}-{i}", "alertname": "FeatureDriftHigh", "labels": {"model": f"storm-{round}-model-{i}", "feature": "age"},
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
  [ "$round" = 1 ] && statements_reset
  t2=$(ticks); during=$(resends); t3=$(ticks)
  [ "$round" = 1 ] && statements_print "round 1's resends while draining"
  expected=$((before + storm * 2))
  deadline=$(( $(date +%s) + 120 ))
  while :; do
    read -r count first last <<< "$(curl -s "$receiver/")"
    [ "$count" -ge "$expected" ] && break
    [ "$(date +%s)" -ge "$deadline" ] && break
    sleep 0.5
  done
  echo "$storm_start $storm_end $((count - before)) $last $alone $during $t0 $t1 $t2 $t3" >> "$tmp/rounds.txt"
done
closing=$(resends)
failed=$(psql -X -At -d "$DATABASE_URL" -c "SELECT count(*) FROM notifications WHERE state <> 'delivered'")
python3 - "$storm" "$(getconf CLK_TCK)" "$closing" "$failed" "$tmp/rounds.txt" "$window" <<'PY'
import statistics, sys
storm, hz, closing, failed, window = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[6]
rounds = [line.split() for line in open(sys.argv[5])]
alone = [float(r[4]) for r in rounds] + [closing]
ratios, drains = [], []
def cpu(a, b):
    return " ".join(f"{name} {(y - x) / hz:.2f}" for name, x, y in zip(("handrail", "postgres", "receiver"), a, b))
for i, r in enumerate(rounds):
    s0, s1, count, last, _, during = map(float, r[:6])
    t = [tuple(map(int, r[6 + 3 * k:9 + 3 * k])) for k in range(4)]
    reference = (alone[i] + alone[i + 1]) / 2
    ratios.append(during / reference)
    drains.append(last - s1)
    print(f"== round {i + 1}: {storm} new incidents in {s1 - s0:.1f} s ({storm / (s1 - s0):.0f}/s), {int(count)} of {2 * storm} notifications delivered, "
          f"the last {last - s1:.1f} s after the last opening ({count / max(0.001, last - s0):.0f}/s)")
    print(f"   resends alone {alone[i]:.0f}/s and {alone[i + 1]:.0f}/s around {during:.0f}/s while draining: {during / reference * 100:.0f} %")
    print(f"   CPU seconds in {window} s alone: {cpu(t[0], t[1])}; draining: {cpu(t[2], t[3])}")
print(f"== notifications not delivered: {failed}")
print(f"last incident opened → last notification delivered: worst {max(drains):.1f} s (target: < 30 s)")
print(f"resend ingestion while notifications drain, against alone: median {statistics.median(ratios) * 100:.0f} % (target: ≥ 90 %)")
PY
