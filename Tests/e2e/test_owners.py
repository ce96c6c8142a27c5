"""Rotations, ownership and decisions through the built binary: the operator's CLI
(rotations create/oncall/override/show, incidents show, decisions list) and the HTTP API."""
import datetime

import requests

from conftest import cli, wait_for


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_rotation_owner_and_decision_from_the_cli(empty_database, start_server):
    db = empty_database
    for name, role in [("rhea", "responder"), ("lena", "lead")]:
        made = cli(["users", "create", "--username", name, "--role", role, "--password-stdin"], db, stdin=f"{name} chose this password\n")
        assert made.returncode == 0, made.stderr
    lead_token = cli(["tokens", "create", "--user", "lena", "--name", "e2e"], db).stdout.strip()
    key = cli(["integrations", "create", "--name", "e2e-generic", "--kind", "generic"], db).stdout.strip()

    bad = cli(["rotations", "create", "ml-platform", "--members", "rhea,lena", "--time-zone", "Europe/Atlantis", "--start-date", "2026-01-05"], db)
    assert bad.returncode != 0 and "time_zone" in bad.stderr
    unknown = cli(["rotations", "create", "ml-platform", "--members", "rhea,nobody", "--time-zone", "UTC", "--start-date", "2026-01-05"], db)
    assert unknown.returncode != 0 and "members[1]" in unknown.stderr
    made = cli(["rotations", "create", "ml-platform", "--members", "rhea,lena", "--time-zone", "Europe/Berlin",
                "--shift-length", "1w", "--handoff", "Monday 09:00", "--start-date", "2026-01-05"], db)
    assert made.returncode == 0, made.stderr

    # Shift 0 from Monday 2026-01-05 09:00 Berlin (08:00Z) is rhea's; at 09:00 CEST on
    # 30 March (07:00Z, after the DST change) it is shift 12: rhea again (12 mod 2 = 0).
    def oncall(at):
        out = cli(["rotations", "oncall", "ml-platform", "--at", at], db)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()
    assert oncall("2026-01-07T12:00:00Z") == "rhea"
    assert oncall("2026-01-12T08:00:00Z") == "lena"
    assert oncall("2026-03-30T06:59:00Z") == "lena"
    assert oncall("2026-03-30T07:00:00Z") == "rhea"
    early = cli(["rotations", "oncall", "ml-platform", "--at", "2025-12-01T00:00:00Z"], db)
    assert early.returncode != 0 and "nobody is on call" in early.stderr

    # lena covers the hour around now, so she owns what opens now.
    now = datetime.datetime.now(datetime.timezone.utc)
    cover = cli(["rotations", "override", "ml-platform", "--user", "lena", "--from", rfc3339(now - datetime.timedelta(hours=1)),
                 "--to", rfc3339(now + datetime.timedelta(hours=1)), "--reason", "swap"], db)
    assert cover.returncode == 0, cover.stderr
    shown = cli(["rotations", "show", "ml-platform"], db)
    assert "on call now: lena" in shown.stdout and "covered by lena" in shown.stdout

    server = start_server({"DATABASE_URL": db, "HANDRAIL_BCRYPT_COST": "4"})
    server.wait_ready()
    sent = requests.post(server.url + "/api/v1/alerts/generic", headers={"Authorization": f"Bearer {key}"}, timeout=10, json={
        "dedup_key": "drift-ranker-age", "alertname": "FeatureDriftHigh", "labels": {"model": "ranker", "feature": "age"},
        "summary": "PSI 0.3 on age", "value": 0.3})
    assert sent.status_code == 200, sent.text
    ref = sent.json()["alerts"][0]["incident"]

    incident = cli(["incidents", "show", ref], db)
    assert "owner: lena (awaiting acceptance)" in incident.stdout, incident.stdout
    listed = cli(["incidents", "list", "--owner", "lena"], db)
    assert ref in listed.stdout

    lead = {"Authorization": f"Bearer {lead_token}"}
    decided = requests.post(f"{server.url}/api/v1/incidents/{ref}/decisions", headers=lead, timeout=10, json={
        "kind": "rollback", "target": {"model": "ranker", "from_version": "v42", "to_version": "v41"},
        "rationale": "drift began with v42"})
    assert decided.status_code == 201, decided.text
    accepted = requests.post(f"{server.url}/api/v1/incidents/{ref}/acknowledge", headers=lead, timeout=10)
    assert accepted.json()["incident"]["owner_pending"] is False

    decisions = cli(["decisions", "list", "--incident", ref], db)
    assert decisions.returncode == 0, decisions.stderr
    assert "awaiting_execution\trollback\tranker v42 → v41\tlena (lead)" in decisions.stdout
    assert "drift began with v42" in decisions.stdout

    # The handoff of the hour around now holds the incident, the decision and the skipped step.
    skipped = requests.post(f"{server.url}/api/v1/incidents/{ref}/steps/2", headers=lead, timeout=10,
                            json={"outcome": "skipped", "note": "dashboard down"})
    assert skipped.status_code == 200, skipped.text
    window = ["--from", rfc3339(now - datetime.timedelta(hours=1)), "--to", rfc3339(now + datetime.timedelta(hours=1))]
    handoff = cli(["handoff", "--rotation", "ml-platform", *window], db)
    assert handoff.returncode == 0, handoff.stderr
    text = handoff.stdout
    assert text.startswith("# Handoff: ml-platform\n")
    assert f"**[{ref}](/incidents/{ref.split('-')[1]})** PSI 0.3 on age" in text
    assert "rollback of ranker v42 → v41 by lena" in text
    assert "skipped by lena: dashboard down" in text
    again = cli(["handoff", "--rotation", "ml-platform", *window], db)
    assert again.stdout == text, "same log, same bytes"
    as_json = cli(["handoff", "--rotation", "ml-platform", "--format", "json", *window], db)
    import json
    doc = json.loads(as_json.stdout)
    assert [row["ref"] for row in doc["still_open"]] == [ref]
    as_html = cli(["handoff", "--rotation", "ml-platform", "--format", "html", *window], db)
    assert "<h1>Handoff: ml-platform</h1>" in as_html.stdout
    bad_week = cli(["handoff", "--rotation", "ml-platform", "--week", "2026-W60"], db)
    assert bad_week.returncode != 0 and "--week" in bad_week.stderr

    # Resolve it; the draft postmortem holds the decision, the skipped step and the resolution.
    resolved = requests.post(f"{server.url}/api/v1/incidents/{ref}/resolve", headers=lead, timeout=10, json={"note": "rolled back to v41"})
    assert resolved.status_code == 200, resolved.text
    draft = cli(["postmortem", ref], db)
    assert draft.returncode == 0, draft.stderr
    assert draft.stdout.startswith(f"# Postmortem: {ref} PSI 0.3 on age\n")
    assert "**rollback** of ranker v42 → v41, by lena (lead)" in draft.stdout
    assert "**skipped** by lena" in draft.stdout and "dashboard down (gap)" in draft.stdout
    assert "Resolved by lena at" in draft.stdout and "rolled back to v41" in draft.stdout
    assert "\n\nTimes in Europe/Berlin.\n\n" in draft.stdout, "the owning rotation's zone, said once at the top"
    missing = cli(["postmortem", "INC-999"], db)
    assert missing.returncode != 0 and "no incident INC-999" in missing.stderr
