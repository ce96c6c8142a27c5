"""Hostile input against a running server: each finding of the adversarial review, as a
client would send it. Every answer is a 4xx naming the field (or the stored result), the
server never answers 5xx and never dies, and nothing already stored is lost."""
import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid

import requests

from conftest import cli, psql, wait_for
from test_ingest import Handrail


def people(database):
    """One token per role, made with the CLI."""
    tokens = {}
    for role in ["responder", "lead", "admin"]:
        name = f"{role[:4]}{uuid.uuid4().hex[:4]}"
        made = cli(["users", "create", "--username", name, "--role", role, "--password-stdin"], database, stdin=f"{name} chose this password\n")
        assert made.returncode == 0, made.stderr
        token = cli(["tokens", "create", "--user", name, "--name", "e2e"], database)
        assert token.returncode == 0, token.stderr
        tokens[role] = {"Authorization": f"Bearer {token.stdout.strip()}"}
    return tokens


def am_body(alerts, **extra):
    return {"version": "4", "status": "firing", "receiver": "handrail", "groupKey": "{}:{alertname=\"X\"}", "alerts": alerts, **extra}


def am_alert(fingerprint, alertname="FeatureDriftHigh", **labels):
    return {"status": "firing", "fingerprint": fingerprint, "labels": {"alertname": alertname, "model": "ranker", **labels},
            "annotations": {"summary": "drift"}, "startsAt": "2026-11-22T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}


def field_of(response):
    try:
        return response.json()["error"].get("field")
    except (ValueError, KeyError):
        return None


def test_hostile_requests_get_a_4xx_naming_the_field_and_the_server_lives(empty_database, start_server):
    handrail = Handrail(empty_database, start_server)
    url = handrail.url
    who = people(empty_database)
    am = {"Authorization": f"Bearer {handrail.keys['alertmanager']}"}
    generic = {"Authorization": f"Bearer {handrail.keys['generic']}"}
    pd_key = handrail.keys["pagerduty"]

    # Something stored first, which no hostile request may lose.
    stored = requests.post(url + "/api/v1/alerts/alertmanager", json=am_body([am_alert("kept1")]), headers=am, timeout=10)
    assert stored.status_code == 200, stored.text
    ref = stored.json()["alerts"][0]["incident"]
    before = psql(empty_database, "SELECT count(*) || ' ' || sum(delivery_count) FROM alerts")

    long = "x" * 6000
    rotation = {"name": "r1", "members": [], "time_zone": "UTC", "handoff": "Monday 09:00", "start_date": "2026-01-05"}
    cases = [
        # (what, method, path, headers, json body, wanted status, wanted field)
        ("shift length that overflows", "POST", "/api/v1/rotations", who["lead"], {**rotation, "shift_length": "9000000000000000000w"}, 400, "shift_length"),
        ("NUL in a fingerprint", "POST", "/api/v1/alerts/alertmanager", am, am_body([am_alert("a\u0000b")]), 400, "alerts[0].fingerprint"),
        ("NUL in receiver", "POST", "/api/v1/alerts/alertmanager", am, am_body([am_alert("n1")], receiver="r\u0000"), 400, "receiver"),
        ("NUL in groupKey", "POST", "/api/v1/alerts/alertmanager", am, am_body([am_alert("n2")], groupKey="g\u0000"), 400, "groupKey"),
        ("4,000-character fingerprint", "POST", "/api/v1/alerts/alertmanager", am, am_body([am_alert("f" * 4000)]), 400, "alerts[0].fingerprint"),
        ("one good alert and one oversized", "POST", "/api/v1/alerts/alertmanager", am,
         am_body([am_alert("good1"), am_alert("big", service=long)]), 400, "alerts[1].labels.service"),
        ("6,000-character alertname", "POST", "/api/v1/alerts/alertmanager", am, am_body([am_alert("an", alertname=long)]), 400, "alerts[0].labels.alertname"),
        ("1,001 alerts in one delivery", "POST", "/api/v1/alerts/alertmanager", am,
         am_body([am_alert(f"m{i}") for i in range(1001)]), 400, "alerts"),
        ("NUL in a generic dedup_key", "POST", "/api/v1/alerts/generic", generic,
         {"dedup_key": "d\u0000", "alertname": "Disk"}, 400, "dedup_key"),
        ("NUL in a note", "POST", f"/api/v1/incidents/{ref}/notes", who["responder"], {"text": "hello\u0000"}, 400, "text"),
        ("NUL in a role's to", "POST", f"/api/v1/incidents/{ref}/roles/owner", who["lead"], {"action": "assign", "to": "a\u0000"}, 400, "to"),
        ("NUL deep in a body", "POST", f"/api/v1/incidents/{ref}/notes", who["responder"], {"text": "ok", "x": [{"y": "\u0000"}]}, 400, "x[0].y"),
        ("step past int4", "POST", f"/api/v1/incidents/{ref}/steps/3000000000", who["responder"], {"outcome": "done"}, 400, "step"),
    ]
    for what, method, path, headers, body, status, field in cases:
        response = requests.request(method, url + path, json=body, headers=headers, timeout=30)
        assert response.status_code == status, f"{what}: {response.status_code} {response.text[:300]}"
        assert field_of(response) == field, f"{what}: {response.text[:300]}"

    gets = [
        ("NUL in ?service=", f"/api/v1/incidents?service=a%00b", 400, "service"),
        ("NUL in ?owner=", f"/api/v1/incidents?owner=%00", 400, "owner"),
        ("runbook version past int4", "/api/v1/runbooks/feature-drift/versions/99999999999", (400, 404), None),
        ("NUL in a path", "/api/v1/runbooks/a%00b", 400, "path"),
    ]
    for what, path, status, field in gets:
        response = requests.get(url + path, headers=who["lead"], timeout=10)
        assert response.status_code in (status if isinstance(status, tuple) else (status,)), f"{what}: {response.status_code} {response.text[:300]}"
        if field:
            assert field_of(response) == field, f"{what}: {response.text}"

    # PagerDuty answers in its own shape: the field is named in `errors`.
    pd_cases = [
        ("6,000-character class", {"routing_key": pd_key, "event_action": "trigger",
                                   "payload": {"summary": "s", "source": "h", "severity": "critical", "class": long}}, "'payload.class'"),
        ("NUL in an acknowledge's dedup_key", {"routing_key": pd_key, "event_action": "acknowledge", "dedup_key": "k\u0000"}, "'dedup_key'"),
    ]
    for what, body, field in pd_cases:
        response = requests.post(url + "/v2/enqueue", json=body, timeout=10)
        assert response.status_code == 400, f"{what}: {response.status_code} {response.text}"
        assert any(e.startswith(field) for e in response.json()["errors"]), f"{what}: {response.text}"
    change_cases = [
        ("NUL in a change summary", {"summary": "deploy\u0000", "source": "ci"}, "'payload.summary'"),
        ("NUL in a change source", {"summary": "deploy", "source": "c\u0000i"}, "'payload.source'"),
        ("1e999 in custom_details", {"summary": "deploy", "custom_details": {"n": "__INF__"}}, "'payload.custom_details.n'"),
        ("NUL in custom_details", {"summary": "deploy", "custom_details": {"s": ["\u0000"]}}, "'payload.custom_details.s[0]'"),
    ]
    for what, payload, field in change_cases:
        text = json.dumps({"routing_key": pd_key, "payload": payload}).replace('"__INF__"', "1e999")
        response = requests.post(url + "/v2/change/enqueue", data=text, headers={"Content-Type": "application/json"}, timeout=10)
        assert response.status_code == 400, f"{what}: {response.status_code} {response.text}"
        assert any(e.startswith(field) for e in response.json()["errors"]), f"{what}: {response.text}"

    # Nothing was stored by the refused deliveries, and nothing stored was lost.
    assert psql(empty_database, "SELECT count(*) || ' ' || sum(delivery_count) FROM alerts") == before
    assert requests.get(url + "/healthz", timeout=5).status_code == 200
    server = handrail.servers[0]
    assert server.process.poll() is None, "the server died"
    assert "request failed" not in server.output()[1], "a request answered 500"


def test_pagerduty_clients_sending_an_authorization_header_are_accepted(empty_database, start_server):
    handrail = Handrail(empty_database, start_server)
    event = {"routing_key": handrail.keys["pagerduty"], "event_action": "trigger", "dedup_key": "pd-auth",
             "payload": {"summary": "disk full", "source": "db1", "severity": "critical"}}
    for header in ["Token token=y_NbAkKc66ryYTWUXYEu", "Bearer not-a-key"]:
        response = requests.post(handrail.url + "/v2/enqueue", json=event, headers={"Authorization": header}, timeout=10)
        assert response.status_code == 202, f"{header}: {response.text}"
    # A wrong routing_key is still refused, whatever the header.
    wrong = requests.post(handrail.url + "/v2/enqueue", json={**event, "routing_key": "0" * 32},
                          headers={"Authorization": "Token token=x"}, timeout=10)
    assert wrong.status_code == 401


def test_bodies_read_before_the_key_is_known_are_capped(empty_database, start_server):
    handrail = Handrail(empty_database, start_server)
    big = b'{"routing_key": "' + b"x" * (15 << 20) + b'"}'
    for path in ["/v2/enqueue", "/v2/change/enqueue"]:
        response = requests.post(handrail.url + path, data=big, headers={"Content-Type": "application/json"}, timeout=30)
        assert response.status_code == 413, f"{path}: {response.status_code}"
    assert requests.get(handrail.url + "/healthz", timeout=5).status_code == 200


def test_one_group_from_many_senders_at_once_is_stored_every_time(empty_database, start_server):
    handrail = Handrail(empty_database, start_server)
    headers = {"Authorization": f"Bearer {handrail.keys['alertmanager']}"}
    group = [am_alert(f"grp{i}") for i in range(10)]
    first = requests.post(handrail.url + "/api/v1/alerts/alertmanager", json=am_body(group), headers=headers, timeout=10)
    assert first.status_code == 200
    senders, rounds = 8, 15
    barrier = threading.Barrier(senders)

    def send(k):
        session = requests.Session()
        barrier.wait()
        statuses = []
        for r in range(rounds):
            shift = (k + r) % len(group)
            statuses.append(session.post(handrail.url + "/api/v1/alerts/alertmanager", json=am_body(group[shift:] + group[:shift]),
                                         headers=headers, timeout=30).status_code)
        return statuses

    with concurrent.futures.ThreadPoolExecutor(max_workers=senders) as pool:
        statuses = [s for result in pool.map(send, range(senders)) for s in result]
    assert statuses == [200] * (senders * rounds)
    assert psql(handrail.database, "SELECT count(*) || ' ' || sum(delivery_count) FROM alerts") == f"10 {10 * (1 + senders * rounds)}"
    assert psql(handrail.database, "SELECT count(*) FROM incidents") == "1"


def sign_in_form(session, url, next_path=None):
    page = session.get(url + "/login" + (f"?next={next_path}" if next_path else ""), timeout=10)
    return page, re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def test_sign_in_never_redirects_off_site(empty_database, start_server):
    handrail = Handrail(empty_database, start_server)
    made = cli(["users", "create", "--username", "nia", "--role", "viewer", "--password-stdin"], empty_database, stdin="nia chose this password\n")
    assert made.returncode == 0
    for hostile in ["/%09/evil.example", "/%0a/evil.example", "//evil.example", "/%5Cevil.example", "https://evil.example"]:
        browser = requests.Session()
        page, token = sign_in_form(browser, handrail.url, hostile)
        assert "evil.example" not in page.text, hostile
        signed_in = browser.post(handrail.url + "/login", data={"username": "nia", "password": "nia chose this password",
                                                                 "csrf_token": token, "next": requests.utils.unquote(hostile)},
                                 allow_redirects=False, timeout=10)
        assert signed_in.status_code == 303
        assert signed_in.headers["Location"] == "/", hostile


def test_forwarded_for_is_believed_only_from_trusted_proxies(empty_database, start_server):
    handrail = Handrail(empty_database, start_server, env={"HANDRAIL_TRUSTED_PROXIES": "127.0.0.1/32"})
    url = handrail.url
    # The leftmost entries are the client's own words: rotating them changes nothing.
    statuses = []
    for n in range(22):
        browser = requests.Session()
        _, token = sign_in_form(browser, url)
        statuses.append(browser.post(url + "/login", data={"username": f"nobody{n}", "password": "wrong password here", "csrf_token": token},
                                     headers={"X-Forwarded-For": f"203.0.113.{n}, 198.51.100.7"}, allow_redirects=False, timeout=10).status_code)
    assert statuses[:20] == [401] * 20
    assert statuses[20:] == [429, 429]
    addresses = psql(handrail.database, "SELECT string_agg(DISTINCT remote_addr, ',') FROM audit_log WHERE action = 'login.failed'")
    assert addresses == "198.51.100.7"
    # /metrics is for loopback clients: the client behind the proxy is not one.
    assert requests.get(url + "/metrics", timeout=5).status_code == 200
    assert requests.get(url + "/metrics", headers={"X-Forwarded-For": "198.51.100.7"}, timeout=5).status_code == 401


def cluster_pids(cluster):
    """The postmaster of a private cluster and every process it started."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    return [postmaster, *map(int, children)]


def test_a_frozen_database_answers_503_within_seconds_and_recovers(private_cluster, start_server):
    handrail = Handrail(private_cluster.conninfo, start_server, env={"HANDRAIL_STATEMENT_TIMEOUT": "2"})
    headers = {"Authorization": f"Bearer {handrail.keys['generic']}"}

    def send(key):
        started = time.monotonic()
        response = requests.post(handrail.url + "/api/v1/alerts/generic", headers=headers, timeout=60,
                                 json={"dedup_key": key, "alertname": "RetrainingJobFailed"})
        return response, time.monotonic() - started

    assert send("before")[0].status_code == 200
    frozen = cluster_pids(private_cluster)
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(send, [f"frozen{n}" for n in range(4)]))
        for response, took in answers:
            assert response.status_code == 503, response.text
            assert response.headers.get("Retry-After")
            # The statement timeout (2 s), a second's grace, and a retry's backoff: not 45 s.
            assert took < 12, f"answered after {took:.1f} s"
        ready = requests.get(handrail.url + "/readyz", timeout=30)
        assert ready.status_code == 503
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    # Once the database answers again, so does Handrail, without a restart.
    wait_for(lambda: send("after")[0].status_code == 200, timeout=30, what="ingestion to recover")
    assert handrail.servers[0].process.poll() is None


def test_slow_and_idle_connections_are_closed_and_health_checks_still_answer(empty_database, start_server):
    handrail = Handrail(empty_database, start_server, env={
        "HANDRAIL_READ_TIMEOUT": "2", "HANDRAIL_IDLE_TIMEOUT": "3", "HANDRAIL_MAX_CONNECTIONS": "40"})
    host, port = "127.0.0.1", handrail.servers[0].port
    sockets = []
    for n in range(60):
        s = socket.create_connection((host, port), timeout=5)
        kind = n % 3
        if kind == 0:  # slow header: never finished
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        elif kind == 1:  # slow body: announced 1,000 bytes, sends 10
            s.sendall(b"POST /api/v1/alerts/generic HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"dedup_k")
        # kind 2: idle, says nothing
        sockets.append(s)
    # Over the limit, connections are closed at once; within the read timeout the slow ones go
    # too, and health checks answer throughout.
    def health():
        try:
            return requests.get(handrail.url + "/healthz", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False  # closed at once while over the limit

    assert wait_for(health, timeout=10, what="/healthz")

    def closed(s):
        s.settimeout(0.2)
        try:
            return s.recv(1024) == b""
        except socket.timeout:
            return False
        except OSError:
            return True

    # Keep the slow body trickling: the read timeout counts from the request's start, not the last byte.
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        open_ones = []
        for n, s in enumerate(sockets):
            if n % 3 == 1:
                try:
                    s.sendall(b"e")
                except OSError:
                    continue
            if not closed(s):
                open_ones.append(n)
        if not open_ones:
            break
        time.sleep(0.3)
    assert not open_ones, f"{len(open_ones)} slow or idle connections still open: {open_ones[:10]}"
    for s in sockets:
        s.close()
    assert requests.get(handrail.url + "/readyz", timeout=5).status_code == 200
