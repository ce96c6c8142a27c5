"""Reaching people, with real parts: a webhook receiver that verifies every delivery with the
`standardwebhooks` package, e-mail through Debian's msmtp to a local SMTP server (aiosmtpd),
three replicas sharing one database, and a replica killed mid-delivery. Every address is on
loopback (HANDRAIL_WEBHOOK_ALLOW allows it for these tests only)."""
import datetime
import json
import re
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import pytest
import requests
import yaml
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conftest import ROOT, cli, wait_for

ALLOW = {"HANDRAIL_WEBHOOK_ALLOW": "127.0.0.0/8,::1", "HANDRAIL_PUBLIC_URL": "https://handrail.example"}


def payload_validator():
    """The generic webhook's payload as openapi.yaml's `webhooks:` section documents it."""
    document = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    schema = document["webhooks"]["notification"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator({**schema, "components": document["components"]})


class Receiver:
    """A webhook receiver on loopback. Paths are destinations; each can be told what to answer
    (a list of statuses, then 200) or to hold a request. Generic webhooks (paths given a
    secret) are verified with standardwebhooks and against openapi.yaml's payload; any
    unsigned, badly signed, replayed or undocumented one is recorded as an error."""

    def __init__(self):
        self.lock = threading.Lock()
        self.secrets = {}
        self.script = {}
        self.hold = {}
        self.received = []
        self.errors = []
        self.seen = set()
        self.payload = payload_validator()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                path = self.path
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    secret = receiver.secrets.get(path)
                    if secret is not None:
                        try:
                            Webhook(secret).verify(body, headers)
                        except WebhookVerificationError as e:
                            receiver.errors.append(f"{path}: {e}")
                        triple = (headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature"))
                        if triple in receiver.seen:
                            receiver.errors.append(f"{path}: replayed {triple}")
                        receiver.seen.add(triple)
                        for problem in receiver.payload.iter_errors(json.loads(body)):
                            receiver.errors.append(f"{path}: not the documented payload: {problem.message} at {list(problem.path)}")
                    receiver.received.append({"path": path, "id": headers.get("webhook-id"), "body": json.loads(body)})
                    answers = receiver.script.get(path, [])
                    status = answers.pop(0) if answers else 200
                    hold = receiver.hold.pop(path, None)
                if hold:
                    hold["arrived"].set()
                    hold["release"].wait(30)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def at(self, path):
        with self.lock:
            return [r for r in self.received if r["path"] == path]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def people_and_rotation(db, on_call="lena"):
    """rhea (responder) and lena (lead) in ml-platform, `on_call` covering now; tokens for both."""
    tokens = {}
    for name, role in [("rhea", "responder"), ("lena", "lead"), ("root", "admin")]:
        made = cli(["users", "create", "--username", name, "--role", role, "--password-stdin"], db, stdin=f"{name} chose this password\n")
        assert made.returncode == 0, made.stderr
        tokens[name] = {"Authorization": "Bearer " + cli(["tokens", "create", "--user", name, "--name", "e2e"], db).stdout.strip()}
    made = cli(["rotations", "create", "ml-platform", "--members", "rhea,lena", "--time-zone", "UTC", "--shift-length", "1w",
                "--handoff", "Monday 09:00", "--start-date", "2026-01-05"], db)
    assert made.returncode == 0, made.stderr
    now = datetime.datetime.now(datetime.timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    cover = cli(["rotations", "override", "ml-platform", "--user", on_call, "--from", (now - datetime.timedelta(hours=1)).strftime(fmt),
                 "--to", (now + datetime.timedelta(hours=2)).strftime(fmt), "--reason", "e2e"], db)
    assert cover.returncode == 0, cover.stderr
    key = cli(["integrations", "create", "--name", "e2e-generic", "--kind", "generic"], db).stdout.strip()
    return tokens, key


def fire(server, key, dedup, model="ranker", status="firing"):
    sent = requests.post(server.url + "/api/v1/alerts/generic", headers={"Authorization": f"Bearer {key}"}, timeout=10, json={
        "dedup_key": dedup, "alertname": "FeatureDriftHigh", "labels": {"model": model, "feature": "age", "metric": "psi"},
        "summary": "PSI 0.3 on age", "value": 0.3, "status": status})
    assert sent.status_code == 200, sent.text
    return sent.json()["alerts"][0].get("incident")


def add_webhook(server, headers, receiver, path, label="phone"):
    made = requests.post(server.url + "/api/v1/me/contact-methods", headers=headers, timeout=10,
                         json={"kind": "webhook", "label": label, "address": receiver.url + path})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["secret"].startswith("whsec_")
    assert receiver.url + path not in json.dumps(body["contact_method"]), "the URL is shown once, as a hint afterwards"
    receiver.secrets[path] = body["secret"]
    return body["contact_method"]["id"]


def add_channel(server, headers, receiver, path, kind="webhook"):
    made = requests.post(server.url + "/api/v1/rotations/ml-platform/channels", headers=headers, timeout=10,
                         json={"kind": kind, "label": path.strip("/"), "url": receiver.url + path})
    assert made.status_code == 201, made.text
    if kind == "webhook":
        receiver.secrets[path] = made.json()["secret"]
    return made.json()["channel"]["id"]


def test_three_replicas_deliver_each_message_once_signed_and_retry_what_can_pass(empty_database, start_server, receiver):
    db = empty_database
    tokens, key = people_and_rotation(db)
    env = {"DATABASE_URL": db, "HANDRAIL_BCRYPT_COST": "4", **ALLOW}
    replicas = [start_server(env) for _ in range(3)]
    for r in replicas:
        r.wait_ready()
    a = replicas[0]
    add_webhook(a, tokens["lena"], receiver, "/lena")
    add_channel(a, tokens["lena"], receiver, "/team")
    add_channel(a, tokens["lena"], receiver, "/slack", kind="slack")
    listed = requests.get(a.url + "/api/v1/rotations/ml-platform/channels", headers=tokens["rhea"], timeout=10).json()["channels"]
    assert [c["hint"] for c in listed] == [receiver.url + "/…team", receiver.url + "/…lack"]

    ref = fire(replicas[1], key, "drift-1")
    wait_for(lambda: receiver.at("/team") and receiver.at("/lena") and receiver.at("/slack"), what="the first messages")
    time.sleep(3)  # any duplicate from another replica would have arrived by now
    team, lena, slack = receiver.at("/team"), receiver.at("/lena"), receiver.at("/slack")
    assert [m["body"]["type"] for m in team] == ["incident.opened"], team
    assert [m["body"]["type"] for m in lena] == ["incident.escalation"], "the on-call hears at once, once"
    incident = team[0]["body"]["data"]["incident"]
    assert incident["ref"] == ref and incident["severity"] == "critical" and incident["owner"] == "lena"
    assert incident["value"] == 0.3 and incident["threshold"] == "psi: warning at 0.1, critical at 0.25 (higher is worse)"
    assert incident["url"] == f"https://handrail.example/incidents/{int(ref.split('-')[1])}"
    assert incident["next_step"].startswith("1. "), incident
    assert team[0]["body"]["version"] == 1 and team[0]["id"] == team[0]["body"]["id"]
    assert slack[0]["body"]["text"].startswith(f"{ref} opened: ") and slack[0]["body"]["blocks"]
    assert receiver.errors == []

    # A receiver that answers 503 then 200 gets the message on the retry, same id; one that
    # answers 410 fails at once, and admins see it.
    receiver.script["/flaky"] = [503]
    receiver.script["/gone"] = [410, 410, 410]
    add_channel(a, tokens["lena"], receiver, "/flaky")
    add_channel(a, tokens["lena"], receiver, "/gone")
    number = int(ref.split("-")[1])
    acked = requests.post(f"{a.url}/api/v1/incidents/{ref}/acknowledge", headers=tokens["lena"], timeout=10)
    assert acked.status_code == 200, acked.text
    wait_for(lambda: len(receiver.at("/flaky")) >= 2, timeout=30, what="the retry after 503")
    flaky = receiver.at("/flaky")
    assert len({m["id"] for m in flaky}) == 1 and flaky[0]["body"] == flaky[1]["body"], "the same message, the same id"
    assert len(receiver.at("/gone")) == 1

    def records():
        return requests.get(f"{a.url}/api/v1/incidents/{number}/notifications", headers=tokens["rhea"], timeout=10).json()["notifications"]
    wait_for(lambda: all(r["state"] != "pending" for r in records()), what="every notification settled")
    by_recipient = {(r["recipient"], r["event"]): r for r in records()}
    assert by_recipient[("flaky", "acknowledged")]["state"] == "delivered" and by_recipient[("flaky", "acknowledged")]["attempts"] == 2
    gone = by_recipient[("gone", "acknowledged")]
    assert gone["state"] == "failed" and gone["attempts"] == 1 and "410" in gone["last_error"]
    missing = requests.get(f"{a.url}/api/v1/incidents/99999/notifications", headers=tokens["rhea"], timeout=10)
    assert missing.status_code == 404, missing.text
    failed = requests.get(a.url + "/api/v1/notifications/failed", headers=tokens["root"], timeout=10)
    assert failed.status_code == 200 and [f["recipient"] for f in failed.json()["notifications"]] == ["gone"]
    assert requests.get(a.url + "/api/v1/notifications/failed", headers=tokens["lena"], timeout=10).status_code == 403
    assert [m["body"]["type"] for m in receiver.at("/team")] == ["incident.opened", "incident.acknowledged"]
    assert receiver.errors == []

    # Each replica counts what it delivered; together, every webhook delivery.
    delivered = 0
    for r in replicas:
        found = re.search(r'handrail_notification_attempts_total\{kind="webhook",outcome="delivered"\} (\d+)', requests.get(r.url + "/metrics", timeout=10).text)
        delivered += int(found.group(1)) if found else 0
    webhooks = len(receiver.at("/team")) + len(receiver.at("/lena")) + len(receiver.at("/flaky")) - 1  # /flaky's first answer was a 503
    assert delivered == webhooks, (delivered, webhooks)


def test_a_replica_killed_mid_delivery_leaves_the_message_to_another(empty_database, start_server, receiver):
    db = empty_database
    tokens, key = people_and_rotation(db)
    env = {"DATABASE_URL": db, "HANDRAIL_BCRYPT_COST": "4", "HANDRAIL_NOTIFY_TIMEOUT": "2", **ALLOW}
    first = start_server(env)
    first.wait_ready()
    add_channel(first, tokens["lena"], receiver, "/team")
    hold = {"arrived": threading.Event(), "release": threading.Event()}
    receiver.hold["/team"] = hold
    fire(first, key, "drift-kill")
    assert hold["arrived"].wait(20), "the delivery began"
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    hold["release"].set()
    second = start_server(env)
    second.wait_ready()
    wait_for(lambda: len(receiver.at("/team")) >= 2, timeout=40, what="the other replica to deliver it again")
    time.sleep(2)
    team = receiver.at("/team")
    assert 1 <= len(team) <= 2 and len({m["id"] for m in team}) == 1, team
    assert receiver.errors == []


def test_escalation_reaches_the_next_step_unless_acknowledged_and_restarts_on_reopen(empty_database, start_server, receiver):
    db = empty_database
    tokens, key = people_and_rotation(db)
    server = start_server({"DATABASE_URL": db, "HANDRAIL_BCRYPT_COST": "4", **ALLOW})
    server.wait_ready()
    add_webhook(server, tokens["lena"], receiver, "/lena")
    add_webhook(server, tokens["rhea"], receiver, "/rhea")
    bad = requests.put(server.url + "/api/v1/rotations/ml-platform/escalation", headers=tokens["lena"], timeout=10,
                       json={"steps": [{"after_minutes": 0, "notify": "on_call"}, {"after_minutes": 0, "notify": "user"}]})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "steps[1].after_minutes"
    policy = {"steps": [{"after_minutes": 0, "notify": "on_call"}, {"after_minutes": 0.1, "notify": "user", "user": "rhea"}]}
    assert requests.put(server.url + "/api/v1/rotations/ml-platform/escalation", headers=tokens["rhea"], timeout=10, json=policy).status_code == 403
    put = requests.put(server.url + "/api/v1/rotations/ml-platform/escalation", headers=tokens["lena"], timeout=10, json=policy)
    assert put.status_code == 200, put.text

    quiet = fire(server, key, "drift-quiet", model="ranker")
    answered = fire(server, key, "drift-answered", model="fraud")
    wait_for(lambda: len(receiver.at("/lena")) >= 2, what="the on-call paged for both")
    # The page carries signed links for her alone: a confirmation page, not the action itself.
    detail = receiver.at("/lena")[0]["body"]["data"]["detail"]
    link = detail["acknowledge_url"].replace("https://handrail.example", server.url)
    assert "resolve_url" in detail and f"/confirm?action=acknowledge&user=lena&" in link
    mine = requests.get(link, headers=tokens["lena"], timeout=10)
    assert mine.status_code == 200 and "Acknowledge INC-" in mine.text, mine.text[:500]
    assert requests.get(link, headers=tokens["rhea"], timeout=10).status_code == 403, "not for another person"
    assert requests.get(link[:-3] + "abc", headers=tokens["lena"], timeout=10).status_code == 400, "not when changed"
    assert requests.get(link, timeout=10, allow_redirects=False).status_code in (302, 303, 401), "not without signing in"
    assert requests.post(f"{server.url}/api/v1/incidents/{answered}/acknowledge", headers=tokens["lena"], timeout=10).status_code == 200
    wait_for(lambda: receiver.at("/rhea"), timeout=20, what="step 2 after six seconds without acknowledgement")
    time.sleep(8)
    rhea = [m["body"]["data"]["incident"]["ref"] for m in receiver.at("/rhea")]
    assert rhea == [quiet], "only the unacknowledged incident escalated"

    # Resolved, firing again: the chain starts over with the on-call.
    assert requests.post(f"{server.url}/api/v1/incidents/{quiet}/resolve", headers=tokens["lena"], timeout=10).status_code == 200
    fire(server, key, "drift-quiet", model="ranker", status="resolved")
    before = len(receiver.at("/lena"))
    assert fire(server, key, "drift-quiet", model="ranker") == quiet
    wait_for(lambda: len(receiver.at("/lena")) > before, what="the reopened incident's first step")
    assert receiver.at("/lena")[-1]["body"]["data"]["incident"]["ref"] == quiet
    assert receiver.errors == []


def test_no_allow_list_no_loopback(empty_database, start_server):
    db = empty_database
    tokens, _ = people_and_rotation(db)
    server = start_server({"DATABASE_URL": db, "HANDRAIL_BCRYPT_COST": "4"})
    server.wait_ready()
    for url in ["http://127.0.0.1:9/x", "http://[::1]:9/x", "http://localhost:9/x", "http://127.1.2.3/x"]:
        made = requests.post(server.url + "/api/v1/me/contact-methods", headers=tokens["lena"], timeout=10,
                             json={"kind": "webhook", "label": "x", "address": url})
        assert made.status_code == 400, (url, made.text)
        assert made.json()["error"]["field"] == "url" and "loopback" in made.json()["error"]["message"], made.text


def test_email_goes_through_msmtp_and_needs_its_code(empty_database, start_server, mailbox):
    db = empty_database
    tokens, _ = people_and_rotation(db)
    server = start_server({"DATABASE_URL": db, "HANDRAIL_BCRYPT_COST": "4", "HANDRAIL_SENDMAIL": str(mailbox.sendmail),
                           "HANDRAIL_MAIL_FROM": "Handrail <handrail@example.test>", **ALLOW})
    server.wait_ready()
    bad = requests.post(server.url + "/api/v1/me/contact-methods", headers=tokens["rhea"], timeout=10,
                        json={"kind": "email", "label": "work", "address": "rhea@example.test\r\nBcc: x@example.test"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "address"
    made = requests.post(server.url + "/api/v1/me/contact-methods", headers=tokens["rhea"], timeout=10,
                         json={"kind": "email", "label": "work", "address": "rhea@example.test"})
    assert made.status_code == 201, made.text
    method = made.json()["contact_method"]
    assert method["verified"] is False and made.json().get("secret") is None
    untested = requests.post(f"{server.url}/api/v1/me/contact-methods/{method['id']}/test", headers=tokens["rhea"], timeout=10)
    assert untested.status_code == 404, "no test before the code is confirmed"

    wait_for(lambda: mailbox.messages, what="the code by e-mail")
    msg = mailbox.messages[0]
    assert mailbox.recipients[0] == ["rhea@example.test"] and msg["To"] == "rhea@example.test"
    assert msg["From"] == "Handrail <handrail@example.test>"
    code = re.search(r"code: (\d{6})", msg["Subject"]).group(1)
    wrong = requests.post(f"{server.url}/api/v1/me/contact-methods/{method['id']}/verify", headers=tokens["rhea"], timeout=10,
                          json={"code": "000000" if code != "000000" else "111111"})
    assert wrong.status_code == 400 and wrong.json()["error"]["field"] == "code"
    ok = requests.post(f"{server.url}/api/v1/me/contact-methods/{method['id']}/verify", headers=tokens["rhea"], timeout=10,
                       json={"code": code})
    assert ok.status_code == 200 and ok.json()["contact_methods"][0]["verified"] is True

    sent = requests.post(f"{server.url}/api/v1/me/contact-methods/{method['id']}/test", headers=tokens["rhea"], timeout=10)
    assert sent.status_code == 202
    wait_for(lambda: len(mailbox.messages) >= 2, what="the test e-mail")
    test = mailbox.messages[1]
    assert test["Subject"] == "[Handrail] Handrail test message for rhea"
    assert "Handrail reaches you here" in test.get_content()
    history = requests.get(f"{server.url}/api/v1/me/contact-methods/{method['id']}/notifications", headers=tokens["rhea"], timeout=10)
    assert [(n["event"], n["state"]) for n in history.json()["notifications"]] == [("test", "delivered"), ("verify", "delivered")]


def test_a_shift_that_ends_gets_one_handoff_sent_to_both_people_even_with_three_replicas(empty_database, start_server, receiver):
    db = empty_database
    tokens = {}
    for name, role in [("rhea", "responder"), ("lena", "lead")]:
        made = cli(["users", "create", "--username", name, "--role", role, "--password-stdin"], db, stdin=f"{name} chose this password\n")
        assert made.returncode == 0, made.stderr
        tokens[name] = {"Authorization": "Bearer " + cli(["tokens", "create", "--user", name, "--name", "e2e"], db).stdout.strip()}
    # Daily shifts changing hands at the next whole minute that is at least 20 s away.
    now = datetime.datetime.now(datetime.timezone.utc)
    change = (now + datetime.timedelta(seconds=80)).replace(second=0, microsecond=0)
    start = (change - datetime.timedelta(days=3)).date().isoformat()
    made = cli(["rotations", "create", "ml-platform", "--members", "rhea,lena", "--time-zone", "UTC", "--shift-length", "1d",
                "--handoff", change.strftime("%H:%M"), "--start-date", start], db)
    assert made.returncode == 0, made.stderr
    env = {"DATABASE_URL": db, "HANDRAIL_BCRYPT_COST": "4", **ALLOW}
    replicas = [start_server(env) for _ in range(3)]
    for r in replicas:
        r.wait_ready()
    add_webhook(replicas[0], tokens["lena"], receiver, "/lena")
    add_webhook(replicas[0], tokens["rhea"], receiver, "/rhea")
    add_channel(replicas[0], tokens["lena"], receiver, "/team")
    listed = requests.get(replicas[0].url + "/api/v1/rotations/ml-platform/handoffs", headers=tokens["rhea"], timeout=10).json()["handoffs"]
    assert listed == [], "no handoff for shifts that ended before the rotation existed"

    wait_for(lambda: receiver.at("/lena") and receiver.at("/rhea") and receiver.at("/team"),
             timeout=(change - now).total_seconds() + 40, what="the handoff to both people and the channel")
    time.sleep(6)  # the other replicas have looked by now
    handoffs = requests.get(replicas[1].url + "/api/v1/rotations/ml-platform/handoffs", headers=tokens["rhea"], timeout=10).json()["handoffs"]
    assert len(handoffs) == 1, handoffs
    h = handoffs[0]
    assert h["to"].startswith(change.strftime("%Y-%m-%dT%H:%M")) and h["generated_by"] == "handrail (on schedule)"
    for path in ["/lena", "/rhea", "/team"]:
        got = receiver.at(path)
        assert [m["body"]["type"] for m in got] == ["handoff.generated"], (path, got)
        assert got[0]["body"]["data"]["url"].endswith(f"/rotations/ml-platform/handoffs/{h['id']}")
    assert receiver.errors == []
    # The incoming on-call acknowledges it.
    incoming = h["incoming"]
    acked = requests.post(f"{replicas[2].url}/api/v1/rotations/ml-platform/handoffs/{h['id']}/acknowledge", headers=tokens[incoming], timeout=10)
    assert acked.status_code == 200, acked.text


def test_escalation_and_channels_from_the_command_line(empty_database):
    db = empty_database
    people_and_rotation(db)
    shown = cli(["rotations", "escalation", "ml-platform"], db)
    assert shown.returncode == 0 and shown.stdout.splitlines() == ["step 1\tafter 0 min\ton_call", "reminders\toff"], shown.stdout
    set_ = cli(["rotations", "escalation", "ml-platform", "--step", "0:on_call", "--step", "10:user:lena", "--step", "30:leads",
                "--renotify", "60"], db)
    assert set_.returncode == 0, set_.stderr
    assert set_.stdout.splitlines() == ["step 1\tafter 0 min\ton_call", "step 2\tafter 10 min\tuser lena", "step 3\tafter 30 min\tleads",
                                        "reminders\tevery 60 min"], set_.stdout
    for bad in [["--step", "10:user"], ["--step", "5:boss"], ["--step", "10:on_call", "--step", "5:leads"], ["--step", "1:user:nobody"]]:
        refused = cli(["rotations", "escalation", "ml-platform", *bad], db)
        assert refused.returncode != 0, bad
    assert "user lena" in cli(["rotations", "escalation", "ml-platform"], db).stdout, "a refused change leaves the chain as it was"

    loop = cli(["rotations", "channels", "ml-platform", "--add-webhook", "http://127.0.0.1:9/hook"], db)
    assert loop.returncode != 0 and "loopback" in loop.stderr and "HANDRAIL_WEBHOOK_ALLOW" in loop.stderr
    added = cli(["rotations", "channels", "ml-platform", "--add-webhook", "http://127.0.0.1:9/hook", "--label", "ops"], db,
                extra_env={"HANDRAIL_WEBHOOK_ALLOW": "127.0.0.0/8"})
    assert added.returncode == 0, added.stderr
    secret = re.search(r"signing secret \(shown once\): (whsec_\S+)", added.stdout).group(1)
    listing = cli(["rotations", "channels", "ml-platform"], db)
    assert "\twebhook\tops\thttp://127.0.0.1:9/…hook" in listing.stdout and secret not in listing.stdout
    channel = listing.stdout.split("\t")[0]
    assert cli(["rotations", "channels", "ml-platform", "--remove", channel], db).returncode == 0
    assert cli(["rotations", "channels", "ml-platform"], db).stdout == ""
