"""Canary gates against the built server, driven the way Flagger drives its webhooks
(fluxcd/flagger pkg/controller/scheduler.go and scheduler_hooks.go): every analysis interval
it calls the rollback hook first (a 2xx rolls the canary back), then the gate it is waiting
at (confirm-rollout, then confirm-traffic-increase before each weight step, then
confirm-promotion), and only a 2xx lets it advance; anything above 202 means "ask again
next interval". The payloads are Tests/Fixtures/flagger's. Two replicas share one database
and the poller alternates between them, as a Kubernetes Service would."""
import itertools
import json
import threading
import time

import requests
import yaml

from conftest import ROOT, cli, wait_for

FIXTURES = ROOT / "Tests" / "Fixtures" / "flagger"


def payload(hook, checksum, runbook):
    body = json.loads((FIXTURES / f"{hook}.json").read_text())
    body["checksum"] = checksum
    body.setdefault("metadata", {})["runbook"] = runbook
    return body


class FlaggerPoller(threading.Thread):
    """One canary release as Flagger runs it: weights 10, 20, 30, then promotion."""

    def __init__(self, urls, key, checksum, runbook, interval=0.1):
        super().__init__(daemon=True)
        self.replicas = itertools.cycle(urls)
        self.key, self.checksum, self.runbook, self.interval = key, checksum, runbook, interval
        self.phase, self.weight = "Initialized", 0
        self.calls = []  # (hook, status) in order
        self.stopped = threading.Event()

    def hook(self, name):
        r = requests.post(f"{next(self.replicas)}/api/v1/flagger/{name}?key={self.key}",
                          json=payload(name, self.checksum, self.runbook), timeout=10)
        assert r.status_code < 500 and r.status_code not in (400, 401, 403, 404), (name, r.status_code, r.text)
        self.calls.append((name, r.status_code))
        return r.status_code <= 202

    def step(self):
        if self.phase in ("Progressing", "Waiting", "WaitingPromotion") and self.hook("rollback"):
            self.phase, self.weight = "Failed", 0
            return
        if self.phase in ("Initialized", "Waiting"):
            self.phase = "Progressing" if self.hook("confirm-rollout") else "Waiting"
        elif self.phase == "Progressing" and self.weight < 30:
            if self.hook("confirm-traffic-increase"):
                self.weight += 10
        elif self.phase in ("Progressing", "WaitingPromotion"):
            self.phase = "Succeeded" if self.hook("confirm-promotion") else "WaitingPromotion"

    def run(self):
        while not self.stopped.is_set() and self.phase not in ("Succeeded", "Failed"):
            self.step()
            time.sleep(self.interval)

    def waiting_at(self):
        """The hook it keeps calling and being told to wait, three times in a row. (Counting
        calls answered 200 too, the three calls that waited for one weight step looked like
        waiting for the next before its first call had opened its gate.)"""
        last = [(h, s) for h, s in self.calls if h != "rollback"][-3:]
        waiting = len(last) == 3 and len({h for h, _ in last}) == 1 and all(s != 200 for _, s in last)
        return last[0][0] if waiting else None


def person(db, username, role):
    assert cli(["users", "create", "--username", username, "--role", role, "--password-stdin"], db,
               stdin=f"{username} canary password\n").returncode == 0
    token = cli(["tokens", "create", "--user", username, "--name", "e2e"], db)
    assert token.returncode == 0, token.stderr
    return {"Authorization": f"Bearer {token.stdout.strip()}"}


def test_a_flagger_like_controller_advances_only_on_peoples_decisions_and_both_replicas_agree(empty_database, start_server):
    db = empty_database
    a = start_server({"DATABASE_URL": db, "HANDRAIL_BCRYPT_COST": "4"})
    a.wait_ready()
    b = start_server({"DATABASE_URL": db, "HANDRAIL_BCRYPT_COST": "4"})
    b.wait_ready()
    assert cli(["runbooks", "sync", str(ROOT / "runbooks")], db).returncode == 0
    made = cli(["integrations", "create", "--name", "flagger-prod", "--kind", "canary"], db)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    lead, responder = person(db, "lena", "lead"), person(db, "ravi", "responder")

    def gate_waiting(poller, hook):
        wait_for(lambda: poller.waiting_at() == hook, timeout=20, what=f"the poller waiting at {hook}")
        gates = requests.get(f"{a.url}/api/v1/gates?waiting=true", headers=lead, timeout=10).json()["gates"]
        mine = [g for g in gates if g["release"]["checksum"] == poller.checksum and g["stage"] == hook]
        assert len(mine) == 1, gates
        return mine[0]

    def decide(gate, who, kind, why):
        return requests.post(f"{b.url}/api/v1/gates/{gate['id']}/decisions", headers=who,
                             json={"kind": kind, "rationale": why}, timeout=10)

    # feature-drift lets leads and managers decide.
    poller = FlaggerPoller([a.url, b.url], key, "6d5f8c7b9", "feature-drift")
    poller.start()
    try:
        gate = gate_waiting(poller, "confirm-rollout")
        assert gate["answer"] == "wait" and gate["times_asked"] >= 3
        refused = decide(gate, responder, "go", "looks fine to me")
        assert refused.status_code == 403, refused.text
        assert "lead" in refused.json()["error"]["message"]
        asked = gate["times_asked"]
        wait_for(lambda: requests.get(f"{a.url}/api/v1/gates/{gate['id']}", headers=lead, timeout=10).json()["times_asked"] >= asked + 3,
                 what="three more questions after the refused go")
        assert poller.phase == "Waiting" and poller.waiting_at() == "confirm-rollout"
        # Both replicas answer the waiting gate the same way.
        for replica in (a.url, b.url):
            r = requests.post(f"{replica}/api/v1/flagger/confirm-rollout?key={key}",
                              json=payload("confirm-rollout", "6d5f8c7b9", "feature-drift"), timeout=10)
            assert (r.status_code, r.json()["answer"]) == (409, "wait")
        assert decide(gate, lead, "go", "offline eval +0.4% NDCG; guards quiet").status_code == 201
        wait_for(lambda: poller.phase == "Progressing", timeout=10, what="the rollout started")

        step1 = gate_waiting(poller, "confirm-traffic-increase")
        assert poller.phase == "Progressing" and poller.weight == 0
        assert decide(step1, lead, "go", "10% is safe").status_code == 201
        wait_for(lambda: poller.weight == 10, timeout=10, what="the canary at 10%")
        step2 = gate_waiting(poller, "confirm-traffic-increase")
        assert step2["id"] != step1["id"] and step2["step"] == 2 and poller.weight == 10
        for replica in (a.url, b.url):
            r = requests.get(f"{replica}/api/v1/gates/{step1['id']}", headers=lead, timeout=10).json()
            assert r["answer"] == "go"
        # A person decides to roll back: the next rollback hook answers 200 and Flagger rolls back.
        assert decide(step2, lead, "rollback", "quality proxy -6 points on the canary").status_code == 201
        wait_for(lambda: poller.phase == "Failed", timeout=10, what="the poller rolling back")
        assert poller.calls[-1] == ("rollback", 200)
        assert poller.weight == 0
    finally:
        poller.stopped.set()
        poller.join(5)

    # The next release of the same target starts from nothing decided.
    again = FlaggerPoller([b.url, a.url], key, "77aa01f3c", "feature-drift")
    again.start()
    try:
        gate = gate_waiting(again, "confirm-rollout")
        assert gate["answer"] == "wait"
        assert ("rollback", 200) not in again.calls
    finally:
        again.stopped.set()
        again.join(5)

    # An operator opens a gate from the command line before the controller asks; the list
    # shows it waiting, beside the one the poller left waiting.
    opened = cli(["gates", "open", "--namespace", "model-serving", "--name", "fraud-scorer", "--checksum", "c0ffee",
                  "--stage", "confirm-promotion", "--runbook", "canary-guard-breach"], db)
    assert opened.returncode == 0, opened.stderr
    gate_id = opened.stdout.strip()
    listed = cli(["gates", "list", "--waiting"], db)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [gate_id, "wait", "model-serving/fraud-scorer@c0ffee", "confirm-promotion"] in [r[:4] for r in rows], rows
    assert any(r[2] == "model-serving/ranker@77aa01f3c" for r in rows), rows
    bad = cli(["gates", "open", "--namespace", "x", "--name", "y", "--checksum", "z", "--stage", "later"], db)
    assert bad.returncode != 0 and "--stage" in bad.stderr

    for server in (a, b):
        assert key not in "".join(server.output()), "the key in the URL reached the server's log"


def readme_analysis_template():
    """The AnalysisTemplate the README tells Argo Rollouts users to apply."""
    text = (ROOT / "README.md").read_text()
    for block in text.split("```yaml")[1:]:
        doc = yaml.safe_load(block.split("```")[0])
        if isinstance(doc, dict) and doc.get("kind") == "AnalysisTemplate":
            return doc
    raise AssertionError("the README has no AnalysisTemplate")


def condition(expression, result):
    """Argo's conditions as the README writes them: `result.decision == "x"`."""
    field, _, value = expression.partition(" == ")
    assert field.strip() == "result.decision", expression
    return result.get("decision") == json.loads(value.strip())


class ArgoAnalysis:
    """One AnalysisRun of the README's template, measured the way Argo Rollouts assesses a
    metric (argoproj/argo-rollouts analysis/analysis.go, assessMetricStatus): each
    measurement is Successful, Failed, or Inconclusive when neither condition holds; the
    metric fails beyond failureLimit failures, is inconclusive beyond inconclusiveLimit, and
    succeeds at consecutiveSuccessLimit successes in a row."""

    def __init__(self, template, base_url, args):
        self.metric = template["spec"]["metrics"][0]
        web = self.metric["provider"]["web"]
        values = {a["name"]: a.get("value") for a in template["spec"]["args"]}
        values.update(args)

        def fill(text):
            for name, value in values.items():
                text = text.replace("{{args.%s}}" % name, str(value))
            assert "{{" not in text, text
            return text
        self.url = fill(web["url"]).replace("https://handrail.example.com", base_url)
        self.headers = {h["key"]: fill(h["value"]) for h in web.get("headers", [])}
        assert web.get("jsonPath", "{$}") == "{$}"
        self.failed = self.inconclusive = self.successes = 0
        self.phase = "Running"

    def measure(self):
        r = requests.get(self.url, headers=self.headers, timeout=10)
        assert r.status_code == 200, r.text  # Argo's web provider errors on anything else
        result = r.json()
        failed, succeeded = condition(self.metric["failureCondition"], result), condition(self.metric["successCondition"], result)
        if failed:
            self.failed += 1
            self.successes = 0
        elif succeeded:
            self.successes += 1
        else:
            self.inconclusive += 1
            self.successes = 0
        if self.failed > self.metric.get("failureLimit", 0):
            self.phase = "Failed"
        elif self.inconclusive > self.metric.get("inconclusiveLimit", 0):
            self.phase = "Inconclusive"
        elif self.successes >= self.metric.get("consecutiveSuccessLimit", 0) > 0:
            self.phase = "Successful"
        return result


def test_the_readmes_argo_analysis_template_waits_then_passes_or_fails_on_peoples_decisions(empty_database, start_server):
    db = empty_database
    server = start_server({"DATABASE_URL": db, "HANDRAIL_BCRYPT_COST": "4"})
    server.wait_ready()
    assert cli(["runbooks", "sync", str(ROOT / "runbooks")], db).returncode == 0
    made = cli(["integrations", "create", "--name", "argo-prod", "--kind", "canary"], db)
    assert made.returncode == 0, made.stderr
    responder = person(db, "ravi", "responder")
    template = readme_analysis_template()

    def run(hash_):
        return ArgoAnalysis(template, server.url, {"namespace": "model-serving", "name": "ranker", "hash": hash_, "key": made.stdout.strip()})

    promote = run("5f7d9c")
    for _ in range(5):
        result = promote.measure()
    assert promote.phase == "Running" and result["decision"] == "wait", "no decision: the analysis keeps asking"
    gate = result["gate"]
    assert requests.post(f"{server.url}/api/v1/gates/{gate}/decisions", headers=responder,
                         json={"kind": "go", "rationale": "SLO burn flat for an hour"}, timeout=10).status_code == 201
    promote.measure()
    assert promote.phase == "Successful"

    abort = run("6a8e0d")
    abort.measure()
    assert abort.phase == "Running"
    gate = requests.get(abort.url, headers=abort.headers, timeout=10).json()["gate"]
    assert requests.post(f"{server.url}/api/v1/gates/{gate}/decisions", headers=responder,
                         json={"kind": "rollback", "rationale": "p99 1.7x baseline"}, timeout=10).status_code == 201
    abort.measure()
    assert abort.phase == "Failed", "a rollback fails the analysis: Argo aborts the rollout"
