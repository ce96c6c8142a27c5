"""Ingestion with real senders: Debian's Alertmanager (webhook and its PagerDuty notifier,
driven by amtool), PyPI's pdpyras, three servers on one database, and a PostgreSQL that
goes away while alerts arrive."""
import concurrent.futures
import datetime
import threading
import time
import uuid

import pdpyras
import requests

from conftest import cli, psql, wait_for


class Handrail:
    """A running server with a viewer token and one integration key per source."""

    def __init__(self, database, start_server, count=1, env=None):
        assert cli(["users", "create", "--username", "vera", "--role", "viewer", "--password-stdin"], database,
                   stdin="vera chose this password\n").returncode == 0
        token = cli(["tokens", "create", "--user", "vera", "--name", "e2e"], database)
        assert token.returncode == 0, token.stderr
        self.token = token.stdout.strip()
        self.keys = {}
        for kind in ["alertmanager", "pagerduty", "generic"]:
            out = cli(["integrations", "create", "--name", f"e2e-{kind}", "--kind", kind], database)
            assert out.returncode == 0, out.stderr
            self.keys[kind] = out.stdout.strip()
        self.servers = [start_server({"DATABASE_URL": database, "HANDRAIL_BCRYPT_COST": "4", **(env or {})}) for _ in range(count)]
        for server in self.servers:
            server.wait_ready()
        self.url = self.servers[0].url
        self.database = database

    def get(self, path):
        response = requests.get(self.url + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def incidents(self, query=""):
        return self.get("/api/v1/incidents" + query)["incidents"]

    def incident(self, ref):
        return self.get(f"/api/v1/incidents/{ref}")


def am_config(handrail, repeat="3s"):
    return f"""
route:
  receiver: handrail
  group_by: [alertname, model]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: {repeat}
  routes:
    - matchers: ['via="pagerduty"']
      receiver: pagerduty
receivers:
  - name: handrail
    webhook_configs:
      - url: {handrail.url}/api/v1/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: {handrail.keys["alertmanager"]}
  - name: pagerduty
    pagerduty_configs:
      - routing_key: {handrail.keys["pagerduty"]}
        url: {handrail.url}/v2/enqueue
        send_resolved: true
"""


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_alertmanager_groups_resends_and_resolutions(empty_database, start_server, alertmanager):
    handrail = Handrail(empty_database, start_server)
    am = alertmanager(am_config(handrail))
    drift = ["alertname=FeatureDriftHigh", "model=ranker", "severity=warning"]
    am.amtool("alert", "add", *drift, "feature=age", "--annotation=summary=PSI 0.3 on age")
    am.amtool("alert", "add", *drift, "feature=country", "--annotation=summary=PSI 0.2 on country")
    canary = ["alertname=CanaryGuardBreached", "model=ranker", "rollout=r7"]
    am.amtool("alert", "add", *canary, "--annotation=summary=canary error rate 4%")

    # Two alerts of one group: one incident with two alerts, the runbook pinned with its reason.
    def drift_incident():
        found = handrail.incidents("?runbook=feature-drift")
        return found if found and found[0]["alert_count"] == 2 else None
    (incident,) = wait_for(drift_incident, what="one feature-drift incident with two alerts")
    ref = incident["ref"]
    detail = handrail.incident(ref)
    assert detail["runbook"]["id"] == "feature-drift"
    assert 'alertname="FeatureDriftHigh"' in detail["runbook_reason"]
    assert sorted(a["labels"]["feature"] for a in detail["alerts"]) == ["age", "country"]
    assert detail["timeline"][0]["type"] == "opened" and detail["timeline"][0]["actor"] == "e2e-alertmanager"

    # Alertmanager's repeat resend: the delivery count grows, no new incident.
    wait_for(lambda: handrail.incident(ref)["incident"]["delivery_count"] >= 4, timeout=30, what="a repeat resend")
    assert len(handrail.incidents("?runbook=feature-drift")) == 1

    # Resolve one: still open. Resolve both: feature-drift says auto_resolve false → "all alerts cleared".
    am.amtool("alert", "add", *drift, "feature=age", "--annotation=summary=PSI 0.3 on age", f"--end={now_rfc3339()}")
    wait_for(lambda: handrail.incident(ref)["incident"]["open_alerts"] == 1, what="one alert cleared")
    assert handrail.incident(ref)["incident"]["state"] == "triggered"
    am.amtool("alert", "add", *drift, "feature=country", "--annotation=summary=PSI 0.2 on country", f"--end={now_rfc3339()}")
    wait_for(lambda: any(e["type"] == "all_alerts_cleared" for e in handrail.incident(ref)["timeline"]), what="all alerts cleared")
    after = handrail.incident(ref)
    assert after["incident"]["state"] == "triggered", "feature-drift waits for a person"
    assert {a["annotations"]["summary"] for a in after["alerts"]} == {"PSI 0.3 on age", "PSI 0.2 on country"}

    # canary-guard-breach says auto_resolve true: clearing its alert resolves the incident.
    (canary_incident,) = handrail.incidents("?runbook=canary-guard-breach")
    am.amtool("alert", "add", *canary, "--annotation=summary=canary error rate 4%", f"--end={now_rfc3339()}")
    wait_for(lambda: handrail.incident(canary_incident["ref"])["incident"]["state"] == "resolved", what="the canary incident to resolve")

    shown = cli(["incidents", "show", ref], empty_database)
    assert shown.returncode == 0, shown.stderr
    assert "runbook: feature-drift v1" in shown.stdout and "all_alerts_cleared" in shown.stdout
    listed = cli(["incidents", "list", "--open"], empty_database)
    assert ref in listed.stdout and canary_incident["ref"] not in listed.stdout
    searched = cli(["incidents", "list", "--text", "CANARY ERROR"], empty_database)
    assert searched.returncode == 0, searched.stderr
    assert canary_incident["ref"] in searched.stdout and ref not in searched.stdout


def test_alertmanagers_pagerduty_notifier_opens_and_resolves(empty_database, start_server, alertmanager):
    handrail = Handrail(empty_database, start_server)
    am = alertmanager(am_config(handrail, repeat="1h"))
    labels = ["alertname=GPUMemoryHigh", "via=pagerduty", "host=trainer-3"]
    am.amtool("alert", "add", *labels, "--annotation=summary=GPU memory at 97%")
    (incident,) = wait_for(lambda: handrail.incidents(), what="an incident from the PagerDuty notifier")
    detail = handrail.incident(incident["ref"])
    assert detail["alerts"][0]["source"] == "pagerduty"
    assert detail["alerts"][0]["integration"] == "e2e-pagerduty"
    am.amtool("alert", "add", *labels, "--annotation=summary=GPU memory at 97%", f"--end={now_rfc3339()}")
    wait_for(lambda: handrail.incident(incident["ref"])["incident"]["state"] == "resolved", what="the PagerDuty resolve")


def test_pdpyras_trigger_acknowledge_change_resolve(empty_database, start_server):
    handrail = Handrail(empty_database, start_server)
    events = pdpyras.EventsAPISession(handrail.keys["pagerduty"])
    events.url = handrail.url
    dedup_key = events.trigger("Feature store lag 40 min", "feast-materializer", severity="error",
                               custom_details={"lag_minutes": 40})
    assert dedup_key
    (incident,) = handrail.incidents()
    assert incident["severity"] == "critical"
    assert events.acknowledge(dedup_key) == dedup_key
    assert handrail.incident(incident["ref"])["incident"]["state"] == "acknowledged"
    changes = pdpyras.ChangeEventsAPISession(handrail.keys["pagerduty"])
    changes.url = handrail.url
    changes.submit("Deployed materializer v1.8", source="argo")
    assert events.resolve(dedup_key) == dedup_key
    assert events.resolve(dedup_key) == dedup_key, "resolving a resolved key changes nothing and still succeeds"
    detail = handrail.incident(incident["ref"])
    assert detail["incident"]["state"] == "resolved"
    assert [e["type"] for e in detail["timeline"]] == ["opened", "alert_added", "acknowledged", "change", "alert_cleared", "resolved"]
    # PagerDuty's own 400 shape for a bad event.
    bad = requests.post(handrail.url + "/v2/enqueue", json={"routing_key": handrail.keys["pagerduty"], "event_action": "trigger"}, timeout=10)
    assert bad.status_code == 400
    assert bad.json()["status"] == "invalid event" and bad.json()["errors"]


def test_three_servers_fifty_concurrent_sends_one_incident(empty_database, start_server):
    handrail = Handrail(empty_database, start_server, count=3)
    body = {"version": "4", "status": "firing", "receiver": "handrail", "groupKey": "{}:{alertname=\"ModelServingSLOBurn\"}",
            "alerts": [{"status": "firing", "fingerprint": "5ab1e" + uuid.uuid4().hex[:8],
                        "labels": {"alertname": "ModelServingSLOBurn", "service": "ranker", "severity": "critical"},
                        "annotations": {"summary": "error budget burning 14x"},
                        "startsAt": "2026-11-22T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}]}
    headers = {"Authorization": f"Bearer {handrail.keys['alertmanager']}"}
    barrier = threading.Barrier(50)

    def send(i):
        server = handrail.servers[i % 3]
        barrier.wait()
        return requests.post(server.url + "/api/v1/alerts/alertmanager", json=body, headers=headers, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(send, range(50)))
    assert statuses == [200] * 50
    counts = psql(empty_database, "SELECT (SELECT count(*) FROM incidents) || ' ' || (SELECT count(*) FROM alerts) || ' ' || "
                                  "(SELECT sum(delivery_count) FROM alerts) || ' ' || (SELECT count(*) FROM incident_events WHERE type = 'opened')")
    assert counts == "1 1 50 1"


def test_postgres_outage_gives_503_never_a_false_2xx_and_recovers(private_cluster, start_server):
    handrail = Handrail(private_cluster.conninfo, start_server)
    headers = {"Authorization": f"Bearer {handrail.keys['generic']}"}
    results = []
    stop = threading.Event()

    def sender():
        n = 0
        while not stop.is_set():
            key = f"outage-{n}"
            n += 1
            try:
                status = requests.post(handrail.url + "/api/v1/alerts/generic", headers=headers, timeout=30,
                                       json={"dedup_key": key, "alertname": "RetrainingJobFailed", "labels": {"job": key}}).status_code
            except requests.RequestException as error:
                status = repr(error)
            results.append((key, status, time.monotonic()))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    private_cluster.stop()
    down_at = time.monotonic()
    time.sleep(3)
    restart_at = time.monotonic()
    private_cluster.start()
    up_at = time.monotonic()
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join()

    statuses = {status for _, status, _ in results}
    assert statuses <= {200, 503}, statuses
    assert 503 in statuses, "no request met the outage"
    during = [s for _, s, at in results if down_at + 1.5 < at < restart_at]
    assert during and set(during) == {503}
    stored = set(psql(private_cluster.conninfo, "SELECT string_agg(fingerprint, ',') FROM alerts").split(","))
    acknowledged = {key for key, status, _ in results if status == 200}
    assert acknowledged <= stored, f"answered 2xx but not stored: {sorted(acknowledged - stored)[:5]}"
    # Ingestion came back without restarting Handrail.
    assert [s for _, s, at in results if at > up_at + 1.5][-5:] == [200] * 5
    assert handrail.servers[0].process.poll() is None


def test_incidents_list_says_when_more_match_and_lists_all_on_request(empty_database):
    made = cli(["demo", "--incidents", "260"], empty_database)
    assert made.returncode == 0, made.stderr
    first = cli(["incidents", "list"], empty_database)
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.splitlines()) == 50
    assert "showing the newest 50; at least 200 more match (--limit up to 200, or --all)" in first.stderr
    page = cli(["incidents", "list", "--limit", "200"], empty_database)
    assert "showing the newest 200; 60 more match" in page.stderr
    every = cli(["incidents", "list", "--all"], empty_database)
    assert len(every.stdout.splitlines()) == 260 and "more match" not in every.stderr
