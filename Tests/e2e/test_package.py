"""The Debian package as an operator installs it: script/package builds it, apt-get installs
it on this machine, the unit's ExecStart runs as the `handrail` user with the shipped
environment file (there is no running systemd here), it serves and stores an alert, and
`apt-get purge` removes it, leaving nothing behind."""
import configparser
import os
import pathlib
import shlex
import signal
import subprocess
import time

import pytest
import requests

from conftest import ROOT, free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installs a package: needs root (CI runs as root)")

UNIT = pathlib.Path("/lib/systemd/system/handrail.service")


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


def unit_settings():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def env_file(path):
    values = {}
    for line in pathlib.Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


@pytest.fixture(scope="module")
def package():
    built = run([str(ROOT / "script" / "package")], cwd=ROOT, timeout=3600)
    assert built.returncode == 0, built.stdout + built.stderr
    deb = ROOT / built.stdout.strip().splitlines()[-1]
    assert deb.exists(), built.stdout
    return deb


def test_the_package_installs_serves_as_its_user_and_purges_clean(package):
    info = run(["dpkg-deb", "--field", str(package), "Depends", "Recommends"]).stdout
    assert "libpq5" in info and "libcmark" in info and "Recommends: postgresql" in info, info
    installed = run(["apt-get", "install", "-y", "-q", "--no-install-recommends", str(package)],
                    env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, timeout=600)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    server = None
    try:
        for path in ["/usr/bin/handrail", "/usr/share/handrail/migrations", "/usr/share/handrail/templates/static",
                     "/usr/share/handrail/runbooks", "/usr/share/handrail/openapi.yaml", "/etc/handrail/handrail.env"]:
            assert os.path.exists(path), path
        assert run(["id", "handrail"]).returncode == 0
        verify = run(["systemd-analyze", "verify", str(UNIT)])
        assert verify.returncode == 0, verify.stderr
        service = unit_settings()
        assert service["User"] == "handrail" and service["ExecStart"] == "/usr/bin/handrail serve"
        for hardening in ["NoNewPrivileges", "ProtectHome", "PrivateTmp"]:
            assert service[hardening] == "yes", hardening
        assert service["ProtectSystem"] == "strict" and service["ReadWritePaths"] == "/var/lib/handrail"

        # ExecStart as the unit runs it: its user, its folder, its environment file (the
        # port moved to a free one: 8080 may be taken on this machine).
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env_file(service["EnvironmentFile"])}
        port = free_port()
        env["HANDRAIL_LISTEN"] = f"127.0.0.1:{port}"
        # As systemd starts it: that user and group, no other groups, no intermediary process.
        as_user = {"user": service["User"], "group": service["Group"], "extra_groups": [], "env": env,
                   "cwd": service["WorkingDirectory"]}
        server = subprocess.Popen(shlex.split(service["ExecStart"]), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, **as_user)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stdout.read()
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError("the installed Handrail did not become ready")
        assert os.path.exists("/var/lib/handrail/postgres/PG_VERSION"), "the embedded database is not in the state folder"
        key = run(["/usr/bin/handrail", "integrations", "create", "--name", "e2e", "--kind", "generic"], **as_user)
        assert key.returncode == 0, key.stderr
        sent = requests.post(f"http://127.0.0.1:{port}/api/v1/alerts/generic", timeout=30,
                             headers={"Authorization": f"Bearer {key.stdout.strip()}"},
                             json={"dedup_key": "pkg-1", "alertname": "RetrainingJobFailed", "labels": {"job": "nightly"}})
        assert sent.status_code in (200, 201, 202), sent.text
        listed = run(["/usr/bin/handrail", "incidents", "list"], **as_user)
        assert "RetrainingJobFailed" in listed.stdout, listed.stdout + listed.stderr
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        server = None
    finally:
        if server is not None:
            server.kill()
            server.wait()
        purged = run(["apt-get", "purge", "-y", "-q", "handrail"], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                     timeout=600)
    assert purged.returncode == 0, purged.stdout + purged.stderr
    deadline = time.monotonic() + 15
    while run(["pgrep", "-u", "handrail"]).returncode == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    for path in ["/usr/bin/handrail", "/usr/share/handrail", "/etc/handrail", "/var/lib/handrail", str(UNIT)]:
        assert not os.path.exists(path), f"{path} left behind by purge"
    assert run(["id", "handrail"]).returncode != 0, "the handrail user left behind by purge"
