"""handrail serve / migrate as an operator runs them."""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest
import requests

from conftest import BINARY, ROOT, cli, free_port, psql, wait_for


def run(args, env=None, timeout=60):
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    full_env.update(env or {})
    return subprocess.run([str(BINARY), *args], env=full_env, capture_output=True, text=True, timeout=timeout)


def test_help_documents_configuration():
    top = run(["--help"], env={"COLUMNS": "80"})
    assert top.returncode == 0
    # Every variable of the README's configuration table, in a terminal 80 columns wide.
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `((?:HANDRAIL_[A-Z_]+)|DATABASE_URL)", readme, re.M))
    assert len(documented) >= 20, documented
    for name in sorted(documented):
        assert name in top.stdout, name
    too_wide = [line for line in top.stdout.splitlines() if len(line) > 80]
    assert not too_wide, too_wide
    serve = run(["serve", "--help"])
    assert serve.returncode == 0
    for flag in ["--listen", "--database-url", "--data-dir", "--skip-migrations"]:
        assert flag in serve.stdout, flag


def test_a_command_run_where_there_is_no_database_refuses_instead_of_making_one(empty_database, tmp_path):
    """Run from the wrong folder without DATABASE_URL, a command must not answer from a new,
    empty embedded database; `--verbose` and errors say which database was meant."""
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    out = subprocess.run([str(BINARY), "users", "list"], cwd=empty, capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HANDRAIL_DATA_DIR")})
    assert out.returncode == 1, out
    assert "no database here" in out.stderr and "--data-dir" in out.stderr, out.stderr
    assert list(empty.iterdir()) == [], "nothing may be created"
    # Asked, it says which database it uses; a password never shows.
    listed = cli(["users", "list", "--verbose"], empty_database)
    assert listed.returncode == 0, listed.stderr
    assert f"database: PostgreSQL at {empty_database}" in listed.stderr
    wrong = run(["users", "list", "--database-url", "postgresql://vera:hunter2@127.0.0.1:1/handrail"])
    assert wrong.returncode == 1
    assert "(database: PostgreSQL at postgresql://vera:…@127.0.0.1:1/handrail)" in wrong.stderr, wrong.stderr
    assert "hunter2" not in wrong.stderr


def test_serves_on_database_url_and_stops_on_sigterm(empty_database, start_server):
    server = start_server({"DATABASE_URL": empty_database})
    server.wait_ready()
    assert requests.get(server.url + "/healthz").json() == {"status": "ok"}
    metrics = requests.get(server.url + "/metrics").text
    assert 'handrail_http_requests_total{route="/readyz",method="GET",status="200"}' in metrics
    assert requests.get(server.url + "/openapi.yaml").text.startswith("openapi:")
    code, _, err = server.stop(signal.SIGTERM)
    assert code == 0, err
    # One log line per request, with status and duration.
    assert re.search(r"GET /healthz 200 [0-9.]+ms", err)


def test_sigterm_ends_open_live_pages_and_exits_within_10_seconds(empty_database, start_server):
    """A browser tab keeps a live stream open (45 s each); SIGTERM must not wait for it."""
    assert cli(["users", "create", "--username", "vera", "--role", "viewer", "--password-stdin"], empty_database,
               stdin="vera chose this password\n").returncode == 0
    token = cli(["tokens", "create", "--user", "vera", "--name", "e2e"], empty_database).stdout.strip()
    server = start_server({"DATABASE_URL": empty_database})
    server.wait_ready()
    streams = []
    for _ in range(3):
        r = requests.get(server.url + "/live", headers={"Authorization": "Bearer " + token, "Accept": "text/event-stream"},
                         stream=True, timeout=60)
        assert r.status_code == 200
        assert next(r.iter_lines(decode_unicode=True)).startswith("retry:")  # the stream is open
        streams.append(r)
    started = time.monotonic()
    code, _, err = server.stop(signal.SIGTERM, timeout=30)
    elapsed = time.monotonic() - started
    assert code == 0, err
    assert elapsed < 10, f"SIGTERM took {elapsed:.1f} s with 3 live pages open"
    # It says what it waits for, and when each part is done.
    for line in ["shutdown: SIGTERM received; live pages end now; waiting for the requests in flight",
                 "shutdown: the notification workers stopped", "shutdown: closing the database", "shutdown: done"]:
        assert line in err, err[-2000:]
    for r in streams:
        r.close()


def test_unreachable_database_exits_fast_with_one_line_and_no_password():
    started = time.monotonic()
    result = run(["serve"], {"DATABASE_URL": "postgresql://handrail:pa55-w0rd-secret@127.0.0.1:1/handrail",
                             "HANDRAIL_LISTEN": "127.0.0.1:0"}, timeout=30)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert elapsed < 10, f"took {elapsed:.1f}s"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("handrail: cannot connect to PostgreSQL")
    assert "127.0.0.1" in lines[0]
    assert "pa55-w0rd-secret" not in result.stderr + result.stdout
    assert "Fatal error" not in result.stderr and "Stack" not in result.stderr


def test_a_bad_pool_size_is_refused_in_one_line(empty_database):
    result = run(["serve"], {"DATABASE_URL": empty_database, "HANDRAIL_LISTEN": "127.0.0.1:0", "HANDRAIL_DB_POOL_SIZE": "lots"}, timeout=30)
    assert result.returncode != 0
    assert "HANDRAIL_DB_POOL_SIZE" in result.stderr and "lots" in result.stderr


def test_wrong_database_name_is_named(empty_database):
    bad = re.sub(r"dbname=\S+$", "dbname=does_not_exist_here", empty_database)
    result = run(["serve"], {"DATABASE_URL": bad, "HANDRAIL_LISTEN": "127.0.0.1:0"}, timeout=30)
    assert result.returncode != 0
    assert "does_not_exist_here" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_two_servers_started_together_apply_each_migration_once(empty_database, start_server):
    migrations = sorted(p.name for p in (pathlib.Path(__file__).resolve().parents[2] / "migrations").glob("*.sql"))
    servers = [start_server({"DATABASE_URL": empty_database}) for _ in range(2)]
    for server in servers:
        server.wait_ready()
    rows = psql(empty_database, "SELECT name || ':' || count(*) FROM schema_migrations GROUP BY name ORDER BY name")
    assert rows.splitlines() == [f"{name}:1" for name in migrations]
    for server in servers:
        assert server.stop()[0] == 0


def test_migrate_status_and_skip_migrations(empty_database, start_server):
    env = {"DATABASE_URL": empty_database}
    status = run(["migrate", "--status"], env)
    assert status.returncode == 1
    assert "pending" in status.stdout
    server = start_server({**env}, args=["--skip-migrations"])
    time.sleep(0.5)
    deadline = time.monotonic() + 30
    while True:
        try:
            ready = requests.get(server.url + "/readyz", timeout=2)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert ready.status_code == 503
    assert "migrate" in ready.json()["reason"]
    applied = run(["migrate"], env)
    assert applied.returncode == 0, applied.stderr
    assert "applied" in applied.stdout
    assert requests.get(server.url + "/readyz").status_code == 200
    assert run(["migrate", "--status"], env).returncode == 0
    assert "nothing to apply" in run(["migrate"], env).stdout


def postgres_processes(data_dir):
    out = subprocess.run(["pgrep", "-f", f"postgres -D {data_dir}"], capture_output=True, text=True)
    return out.stdout.split()


@pytest.fixture
def embedded_data_dir():
    """A data folder for the embedded PostgreSQL; whatever runs in it is stopped afterwards."""
    data_dir = tempfile.mkdtemp(prefix="handrail-e2e-")
    os.chmod(data_dir, 0o755)
    yield data_dir
    subprocess.run(["pkill", "-f", f"postgres -D {data_dir}"])
    shutil.rmtree(data_dir, ignore_errors=True)


def test_embedded_postgres_starts_stops_with_handrail_and_is_reused(start_server, embedded_data_dir):
    data_dir = embedded_data_dir
    env = {"HANDRAIL_DATA_DIR": data_dir}
    first = start_server(env)
    first.wait_ready()
    assert postgres_processes(data_dir), "no embedded postgres running"
    # Socket only: nothing listens on TCP for the cluster.
    conf = psql(f"host={data_dir}/run dbname=handrail user=handrail", "SHOW listen_addresses")
    assert conf == ""
    applied_at = psql(f"host={data_dir}/run dbname=handrail user=handrail", "SELECT min(applied_at) FROM schema_migrations")
    code, _, err = first.stop(signal.SIGINT)
    assert code == 0, err
    assert "creating the embedded PostgreSQL cluster" in err
    assert postgres_processes(data_dir) == [], "postgres left behind after Ctrl-C"

    second = start_server(env)
    second.wait_ready()
    again = psql(f"host={data_dir}/run dbname=handrail user=handrail", "SELECT min(applied_at) FROM schema_migrations")
    assert again == applied_at, "the second start did not reuse the data"
    code, _, err = second.stop(signal.SIGTERM)
    assert code == 0
    assert "creating the embedded PostgreSQL cluster" not in err
    assert postgres_processes(data_dir) == []


def test_the_embedded_postgres_never_outlives_a_killed_handrail_and_the_next_start_recovers(start_server, embedded_data_dir):
    """A supervisor's SIGKILL (Kubernetes after its grace period) gives Handrail no chance to
    stop its PostgreSQL: the watchdog does, and the next start needs no cleanup."""
    data_dir = embedded_data_dir
    env = {"HANDRAIL_DATA_DIR": data_dir}
    first = start_server(env)
    first.wait_ready()
    assert postgres_processes(data_dir)
    first.stop(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while postgres_processes(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert postgres_processes(data_dir) == [], "the embedded PostgreSQL outlived a killed Handrail by 10 s"
    second = start_server(env)
    second.wait_ready()
    assert psql(f"host={data_dir}/run dbname=handrail user=handrail", "SELECT count(*) > 0 FROM schema_migrations") == "t"
    code, _, err = second.stop(signal.SIGTERM)
    assert code == 0, err
    assert postgres_processes(data_dir) == []


def test_a_release_copied_elsewhere_finds_its_files_in_share_handrail(empty_database, tmp_path):
    """A relocatable release: bin/handrail reads ../share/handrail/, wherever it is put and
    whatever folder it runs from; without it, it says which folder it looked in."""
    prefix = tmp_path / "opt"
    (prefix / "bin").mkdir(parents=True)
    shutil.copy2(BINARY, prefix / "bin" / "handrail")
    share = prefix / "share" / "handrail"
    for folder in ["migrations", "templates", "runbooks"]:
        shutil.copytree(ROOT / folder, share / folder)
    shutil.copy2(ROOT / "openapi.yaml", share / "openapi.yaml")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDRAIL_") and k != "DATABASE_URL"}
    env.update({"DATABASE_URL": empty_database, "HANDRAIL_LISTEN": f"127.0.0.1:{port}"})
    server = subprocess.Popen([str(prefix / "bin" / "handrail"), "serve"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def ready():
            try:
                return server.poll() is not None or requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False
        wait_for(ready, what="the relocated server")
        assert server.poll() is None, server.stderr.read()
        assert "<form" in requests.get(f"http://127.0.0.1:{port}/login").text
        assert requests.get(f"http://127.0.0.1:{port}/static/handrail.css").status_code == 200
        assert requests.get(f"http://127.0.0.1:{port}/openapi.yaml").text.startswith("openapi:")
        lint = subprocess.run([str(prefix / "bin" / "handrail"), "runbooks", "lint"], cwd=tmp_path, env=env,
                              capture_output=True, text=True)
        assert lint.returncode == 0, lint.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
    shutil.rmtree(share)
    alone = subprocess.run([str(prefix / "bin" / "handrail"), "migrate"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert alone.returncode == 1
    assert str(share / "migrations") in alone.stderr, alone.stderr


def test_openapi_document_is_valid_and_served(empty_database, start_server):
    import yaml
    from openapi_spec_validator import validate

    server = start_server({"DATABASE_URL": empty_database})
    server.wait_ready()
    served = requests.get(server.url + "/openapi.yaml")
    assert served.status_code == 200
    document = yaml.safe_load(served.text)
    validate(document)
    schemes = document["components"]["securitySchemes"]
    assert {"bearerToken", "integrationKey", "sessionCookie"} <= set(schemes)
    server.stop()
