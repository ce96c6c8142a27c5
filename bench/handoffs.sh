#!/usr/bin/env bash
# The handoff benchmark (script/bench handoffs): one rotation-week's handoff, generated over
# HTTP, on a database holding a year of demo history (handrail demo), at two sizes.
# Prints p50/p99 of POST /api/v1/rotations/ml-platform/handoffs for the last full ISO week.
# BENCH_HANDOFF_INCIDENTS (default 50000, over one year) sets the 1× size; 10× is ten times
# that over ten years: ten times the data, the same week to hand off.
set -euo pipefail
pgbin="$1"; tmp="$2"
base=${BENCH_HANDOFF_INCIDENTS:-50000}
requests=${BENCH_HANDOFF_REQUESTS:-200}
week=$(python3 -c 'import datetime; d = datetime.date.today() - datetime.timedelta(days=7); y, w, _ = d.isocalendar(); print(f"{y}-W{w:02d}")')
declare -A p50 p99
for years in 1 10; do
  size=$((base * years))
  db="handoffs_$size"
  psql -X -q -d "host=$tmp dbname=postgres user=bench" -c "CREATE DATABASE $db"
  export DATABASE_URL="host=$tmp dbname=$db user=bench"
  start=$(date +%s)
  "$BENCH_BIN/handrail" demo --incidents "$size" --years "$years" >/dev/null 2>"$tmp/demo.log" || { cat "$tmp/demo.log"; exit 1; }
  # A freshly loaded database gets vacuumed by autovacuum in the next minutes, competing
  # for the same two cores, and checkpointed (gigabytes of dirty pages, written while each
  # handoff's COMMIT waits for its WAL flush); do both now, so the figures are the
  # handoff's, not the bulk load's.
  psql -X -q -d "$DATABASE_URL" -c "VACUUM (ANALYZE)" -c "CHECKPOINT"
  events=$(psql -X -At -d "$DATABASE_URL" -c "SELECT count(*) FROM incident_events")
  echo "== $size incidents, $events timeline events (demo history written in $(( $(date +%s) - start )) s)"
  echo "bench lead chose this password" | "$BENCH_BIN/handrail" users create --username bench-lead --role lead --password-stdin >/dev/null
  token=$("$BENCH_BIN/handrail" tokens create --user bench-lead --name bench)
  HANDRAIL_LOG_LEVEL=warning HANDRAIL_LISTEN=127.0.0.1:18092 "$BENCH_BIN/handrail" serve >"$tmp/handoff-server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18092/readyz >/dev/null 2>&1 && break; sleep 0.2; done
  python3 - "$token" "$week" "$requests" > "$tmp/handoff-$size.txt" <<'PY' || true
import json, math, sys, time, urllib.request
token, week, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def post():
    req = urllib.request.Request("http://127.0.0.1:18092/api/v1/rotations/ml-platform/handoffs", method="POST",
                                 data=json.dumps({"week": week}).encode(), headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        body = json.load(r)
        assert r.status == 201
    return (time.perf_counter() - t) * 1000, body
for _ in range(5):
    post()  # warm-up
times = []
for _ in range(n):
    ms, body = post()
    times.append(ms)
times.sort()
doc = body["document"]
# Nearest-rank percentiles: the p99 of 200 requests is the 198th, not the slowest.
def percentile(p): return times[max(0, math.ceil(p / 100 * len(times)) - 1)]
print(f"{percentile(50):.1f} {percentile(99):.1f} "
      f"{len(doc['opened'])} {len(doc['resolved'])} {len(doc['decisions_made'])} {len(body['markdown'])}")
PY
  [ -s "$tmp/handoff-$size.txt" ] || { echo "the handoff requests failed; server log:"; tail -20 "$tmp/handoff-server.log"; exit 1; }
  kill "$pid"; wait "$pid" 2>/dev/null || true
  read -r a b opened resolved decided bytes < "$tmp/handoff-$size.txt"
  p50[$size]=$a; p99[$size]=$b
  echo "handoff of $week for ml-platform: p50 ${a} ms, p99 ${b} ms over $requests requests ($opened opened, $resolved resolved, $decided decisions, $bytes bytes of Markdown)"
done
python3 - "${p50[$base]}" "${p99[$base]}" "${p50[$((base * 10))]}" "${p99[$((base * 10))]}" <<'PY'
import sys
a50, a99, b50, b99 = map(float, sys.argv[1:])
print("== summary (target: p99 < 250 ms at 1×; 10× within 1.3× of 1×)")
print(f"1×:  p50 {a50:.1f} ms, p99 {a99:.1f} ms")
print(f"10×: p50 {b50:.1f} ms, p99 {b99:.1f} ms  ({b50 / a50:.2f}× and {b99 / a99:.2f}× the 1× figures)")
PY
