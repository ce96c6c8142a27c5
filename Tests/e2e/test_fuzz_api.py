"""The whole OpenAPI surface fuzzed by schemathesis (PyPI), as each role and as an integration
key: no operation may answer 5xx, and every answer must match what openapi.yaml documents
(status code and body schema). Seeded and bounded (a fixed number of examples per operation),
so a run takes about two minutes; HANDRAIL_FUZZ_EXAMPLES raises the count for a longer hunt."""
import os
import pathlib
import subprocess

import requests

from conftest import ROOT, cli

SCHEMATHESIS = pathlib.Path(ROOT) / ".venv" / "bin" / "st"
EXAMPLES = os.environ.get("HANDRAIL_FUZZ_EXAMPLES", "10")
# Adding a webhook destination resolves its host name: the fuzzer's random names would send
# DNS queries off this machine. test_notifications covers those operations, on loopback.
RESOLVING = ["addMyContactMethod", "addUsersContactMethod", "addRotationChannel"]


def fuzz(url, header, tmp_path, name, *extra):
    """Runs schemathesis against the server as the holder of `header`; returns its output."""
    out = subprocess.run(
        [str(SCHEMATHESIS), "run", str(ROOT / "openapi.yaml"), "--url", url, "-H", header,
         "--checks", "not_a_server_error,status_code_conformance,response_schema_conformance",
         "--max-examples", EXAMPLES, "--seed", "20261202", "--phases", "examples,coverage,fuzzing",
         "--generation-database", "none", "--request-timeout", "30", "--warnings", "off", "--no-color",
         "--report-dir", str(tmp_path / name), *[a for op in RESOLVING for a in ("--exclude-operation-id", op)], *extra],
        capture_output=True, text=True, timeout=900, cwd=tmp_path)
    return out.returncode, out.stdout + out.stderr


def test_no_operation_answers_5xx_or_outside_its_documentation(empty_database, start_server, tmp_path):
    db = empty_database
    server = start_server({"DATABASE_URL": db, "HANDRAIL_BCRYPT_COST": "4"})
    server.wait_ready()
    headers = {}
    for role in ["viewer", "responder", "lead", "manager", "admin"]:
        made = cli(["users", "create", "--username", f"fz-{role}", "--role", role, "--password-stdin"], db, stdin=f"{role} fuzzing password\n")
        assert made.returncode == 0, made.stderr
        token = cli(["tokens", "create", "--user", f"fz-{role}", "--name", "fuzz"], db)
        assert token.returncode == 0, token.stderr
        headers[role] = f"Authorization: Bearer {token.stdout.strip()}"
    keys = {}
    for kind in ["alertmanager", "generic", "canary"]:
        key = cli(["integrations", "create", "--name", f"fz-{kind}", "--kind", kind], db)
        assert key.returncode == 0, key.stderr
        keys[kind] = f"Authorization: Bearer {key.stdout.strip()}"
    # Something for the operations to find: an incident, a rotation.
    alert = {"dedup_key": "fuzz-1", "alertname": "FeatureDriftHigh", "labels": {"model": "ranker"}, "value": 0.4}
    assert requests.post(server.url + "/api/v1/alerts/generic", json=alert, headers={"Authorization": keys["generic"].split(": ", 1)[1]},
                         timeout=10).status_code == 200
    rotation = cli(["rotations", "create", "fuzz", "--members", "fz-responder,fz-lead", "--time-zone", "UTC", "--start-date", "2026-01-05"], db)
    assert rotation.returncode == 0, rotation.stderr

    failed = []
    runs = [(role, header, ()) for role, header in headers.items()]
    paths = {"canary": "^/api/v1/(flagger|argo)/"}
    runs += [(f"key-{kind}", header, ("--include-path-regex", paths.get(kind, "^/(api/v1/alerts|v2)/"))) for kind, header in keys.items()]
    # The admin goes last: it may disable the others or reset their passwords.
    runs.sort(key=lambda run: run[0] == "admin")
    for name, header, extra in runs:
        code, output = fuzz(server.url, header, tmp_path, name, *extra)
        if code != 0:
            failed.append(f"--- as {name} (exit {code}):\n" + output[-6000:])
    assert server.process.poll() is None, "the server died under fuzzing"
    assert "request failed" not in server.output()[1], "an operation answered 500"
    assert not failed, "\n".join(failed)
