#!/usr/bin/env bash
# The storm benchmark (script/bench storm): an alert storm of new incidents. Every delivery
# is a new Alertmanager group of 10 new alerts (bench/storm.lua), from 16 concurrent senders,
# matched to the feature-drift runbook whose rotation (ml-platform) has someone on call: each
# delivery opens one incident, gives it an owner and starts its escalation, as in production.
# Prints new incidents/s, p50/p99, CPU per new incident, beside the equivalent transaction.
set -euo pipefail
pgbin="$1"; tmp="$2"
seconds=${BENCH_SECONDS:-20}
psql -X -q -d "host=$tmp dbname=postgres user=bench" -c "CREATE DATABASE storm"
export DATABASE_URL="host=$tmp dbname=storm user=bench"
"$BENCH_BIN/handrail" migrate >/dev/null 2>&1
for who in lena rhea; do
  echo "bench $who chose this password" | "$BENCH_BIN/handrail" users create --username "$who" --role lead --password-stdin >/dev/null
done
"$BENCH_BIN/handrail" rotations create ml-platform --members lena,rhea --time-zone UTC --start-date 2026-01-05 >/dev/null
key=$("$BENCH_BIN/handrail" integrations create --name bench-am --kind alertmanager)
HANDRAIL_LOG_LEVEL=warning HANDRAIL_LISTEN=127.0.0.1:18094 "$BENCH_BIN/handrail" serve >"$tmp/storm-server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18094/readyz >/dev/null 2>&1 && break; sleep 0.2; done
curl -sf http://127.0.0.1:18094/readyz >/dev/null || { cat "$tmp/storm-server.log"; exit 1; }
ticks() {
  local pg=0 p
  for p in $(head -1 "$tmp/data/postmaster.pid") $(pgrep -P "$(head -1 "$tmp/data/postmaster.pid")"); do
    [ -r "/proc/$p/stat" ] && pg=$((pg + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$(awk '{print $14 + $15}' "/proc/$pid/stat") $pg"
}
storm() {  # storm RUN SECONDS → wrk's output
  BENCH_RUN="$1" BENCH_KEY="$key" wrk -t 2 -c 16 -d "$2s" --latency -s bench/storm.lua http://127.0.0.1:18094/api/v1/alerts/alertmanager
}
# Warm-up: a few thousand incidents, then the statistics autovacuum would gather.
storm warm 3 >/dev/null
psql -X -q -d "$DATABASE_URL" -c "ANALYZE" -c "CHECKPOINT"
# The equivalent transaction: the statements Handrail runs for such a delivery (the resend
# statement, SQL/resend.sql, which finds nothing to resend; then SQL/ingest.sql in a
# transaction; the two small reads between them are left out), from pgbench, on the same
# data; Handrail writes deliveries that wait for each other in one such statement (IngestBatcher),
# the equivalent each alone, as Handrail does when nothing waits. Its alerts are a warm-up
# delivery's, as Handrail routed them, under a new
# fingerprint and grouping key per transaction (STORMID, replaced by a random number).
key_id=$(psql -X -At -d "$DATABASE_URL" -c "SELECT id FROM integration_keys WHERE name = 'bench-am'")
psql -X -q -d "$DATABASE_URL" -c "CREATE TABLE bench_storm_rows AS SELECT jsonb_agg(jsonb_build_object(
    'ord', n, 'fingerprint', 'STORMID-' || a.fingerprint, 'status', 'firing', 'alertname', a.alertname, 'labels', a.labels,
    'annotations', a.annotations, 'value', a.value, 'vals', a.\"values\", 'links', a.links, 'generator_url', a.generator_url,
    'severity', a.severity, 'grouping_key', 'STORMID-' || a.grouping_key, 'group_rule', a.group_rule, 'title', i.title,
    'runbook_id', i.runbook_id, 'runbook_version', i.runbook_version, 'runbook_reason', i.runbook_reason,
    'auto_resolve', i.auto_resolve, 'reopen_window', i.reopen_window, 'starts_at', extract(epoch FROM a.starts_at),
    'ends_at', NULL, 'owner', u.username, 'owners_rotation', i.owners_rotation, 'owner_reason', 'on call in ' || i.owners_rotation))::text AS rows
    FROM (SELECT *, row_number() OVER (ORDER BY fingerprint) AS n FROM alerts WHERE incident_id = (SELECT min(id) FROM incidents)) a
    JOIN incidents i ON i.id = a.incident_id JOIN incident_roles r ON r.incident_id = i.id AND r.role = 'owner' JOIN users u ON u.id = r.user_id"
[ "$(psql -X -At -d "$DATABASE_URL" -c "SELECT jsonb_array_length(rows::jsonb) FROM bench_storm_rows")" = 10 ] || { echo "bench: no warm-up incident to copy"; exit 1; }
rows="replace((SELECT rows FROM bench_storm_rows), 'STORMID', 'eq' || :n)::jsonb"
deliveries='[{"ord": 0, "request_id": null, "alert_count": 10, "truncated_alerts": 0, "receiver": "handrail", "group_key": "pgbench"}]'
{
  echo '\set n random(1, 1000000000000)'
  sed -e "s/\\\$1::jsonb/$rows/" -e "s/\\\$2::bigint/$key_id/g" -e "s/\\\$3::integration_kind/'alertmanager'::integration_kind/" \
    -e 's/\$4::text/NULL::text/' -e 's/\$5::int/10/g' -e 's/\$6::int/0/' -e "s/\\\$7::text/'handrail'/" -e "s/\\\$8::text/'pgbench'/" \
    Sources/HandrailStore/SQL/resend.sql
  echo 'BEGIN;'
  sed -e "s/\\\$1::jsonb/$rows/" -e "s/\\\$2::bigint/$key_id/g" -e "s/\\\$3::integration_kind/'alertmanager'::integration_kind/" \
    -e "s/\\\$4::text/'bench-am'/" -e "s/\\\$5::jsonb/'$deliveries'::jsonb/" Sources/HandrailStore/SQL/ingest.sql
  echo ';'
  echo 'COMMIT;'
} > "$tmp/storm-equivalent.sql"
if grep -v '^ *--' "$tmp/storm-equivalent.sql" | grep -q '\$[0-9]'; then echo "bench: a parameter has no value in the pgbench script" >&2; exit 1; fi
psql -X -q -d "$DATABASE_URL" -c "ANALYZE" -c "CHECKPOINT"
if [ -n "${BENCH_STATEMENTS:-}" ]; then
  psql -X -q -d "$DATABASE_URL" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" -c "SELECT pg_stat_statements_reset()" >/dev/null
fi
# Handrail and the equivalent take turns in rounds (BENCH_ROUNDS, default 4), as in the
# ingestion benchmark: this machine's speed drifts within minutes.
rounds=${BENCH_ROUNDS:-4}
slice=$(( (seconds + rounds - 1) / rounds ))
echo "== storm: every delivery a new Alertmanager group of 10 new alerts (one new incident each), 16 concurrent senders (wrk); equivalent: pgbench, 16 clients; ${rounds} rounds of ${slice}s"
: > "$tmp/storm-cpu.txt"
for round in $(seq 1 "$rounds"); do
  t0=$(ticks)
  storm "run$round" "$slice" > "$tmp/storm-wrk-$round.txt"
  echo "$t0 $(ticks)" >> "$tmp/storm-cpu.txt"
  "$pgbin/pgbench" -n -M prepared -c 16 -j 2 -T "$slice" -f "$tmp/storm-equivalent.sql" "$DATABASE_URL" > "$tmp/storm-eq-$round.txt" 2>&1 \
    || { head -20 "$tmp/storm-eq-$round.txt"; exit 1; }
  echo "round $round: handrail $(awk '/Requests\/sec/ {print $2}' "$tmp/storm-wrk-$round.txt") new incidents/s (p99 $(awk '/ 99%/ {print $2}' "$tmp/storm-wrk-$round.txt")), equivalent $(awk '/^tps/ {print $3}' "$tmp/storm-eq-$round.txt") tps"
done
if [ -n "${BENCH_STATEMENTS:-}" ]; then
  psql -X -d "$DATABASE_URL" -c "SELECT calls, plans, round(total_exec_time::numeric, 0) AS ms, round((total_exec_time / calls)::numeric, 3) AS ms_per_call,
    round((total_plan_time / greatest(plans, 1))::numeric, 3) AS plan_ms,
    shared_blks_hit / calls AS blocks_per_call, round(wal_bytes / calls) AS wal_bytes_per_call, left(regexp_replace(query, '\s+', ' ', 'g'), 70) AS query
    FROM pg_stat_statements WHERE calls > 0 ORDER BY total_exec_time + total_plan_time DESC LIMIT 12"
fi
rss=$(grep VmHWM /proc/$pid/status | awk '{print $2}')
stored=$(psql -X -At -d "$DATABASE_URL" -c "SELECT count(*) || ' incidents (' || count(*) FILTER (WHERE grouping_key LIKE 'eq%') || ' of them pgbench''s), ' || (SELECT count(*) FROM alerts) || ' alerts, ' || (SELECT count(*) FROM escalations) || ' escalations started' FROM incidents")
python3 - "$tmp" "$rounds" "$(getconf CLK_TCK)" "$rss" "$stored" <<'PY'
import re, statistics, sys
tmp, rounds, tick, rss, stored = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def ms(text):
    value, unit = re.match(r"([0-9.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
requests = seconds = errors = 0
p50s, p99s, tps, eq_p = [], [], [], []
for r in range(1, rounds + 1):
    wrk = open(f"{tmp}/storm-wrk-{r}.txt").read()
    n, secs = re.search(r"(\d+) requests in ([0-9.]+)s", wrk).groups()
    requests += int(n); seconds += float(secs)
    errors += sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", wrk))
    p50s.append(ms(re.search(r" 50%\s+(\S+)", wrk).group(1))); p99s.append(ms(re.search(r" 99%\s+(\S+)", wrk).group(1)))
    eq = open(f"{tmp}/storm-eq-{r}.txt").read()
    assert "number of failed transactions: 0 " in eq, eq
    tps.append(float(re.search(r"tps = ([0-9.]+)", eq).group(1)))
rps, equivalent = requests / seconds, statistics.mean(tps)
server = pg = 0
for line in open(f"{tmp}/storm-cpu.txt"):
    s0, p0, s1, p1 = map(int, line.split())
    server += s1 - s0; pg += p1 - p0
print("== summary (targets: ≥ 1,000 new incidents/s, p99 < 50 ms)")
print(f"handrail:   {rps:,.0f} new incidents/s = {rps * 10:,.0f} new alerts/s; p50 {statistics.median(p50s):.1f} ms, p99 {max(p99s):.1f} ms (worst round)")
print(f"equivalent: {equivalent:,.0f} transactions/s (pgbench); handrail = {rps / equivalent:.0%} of it")
print(f"errors (non-2xx): {errors}")
print(f"CPU per new incident: server {server / tick / requests * 1e6:.0f} µs, PostgreSQL {pg / tick / requests * 1e6:.0f} µs")
print(f"server peak RSS: {rss / 1024:.1f} MiB")
print(f"stored: {stored}")
PY
