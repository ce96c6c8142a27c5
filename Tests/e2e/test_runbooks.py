"""handrail runbooks lint as an author runs it."""
import pathlib
import subprocess

from conftest import BINARY

ROOT = pathlib.Path(__file__).resolve().parents[2]


def lint(directory):
    return subprocess.run([str(BINARY), "runbooks", "lint", str(directory)], capture_output=True, text=True, timeout=60)


def test_shipped_runbooks_lint_clean():
    result = lint(ROOT / "runbooks")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no problems" in result.stdout


def test_every_problem_is_reported_as_file_line_message(tmp_path):
    (tmp_path / "good.md").write_text("---\nid: good\ntitle: Good\nmatch: { alertname: A }\n---\n## Steps\n1. Look.\n")
    (tmp_path / "bad.md").write_text("---\nid: bad\ntitle: Bad\nmatch: { alertname: B }\ncolour: red\nrollback:\n  decided_by: [boss]\n---\n# No steps\n")
    (tmp_path / "README.md").write_text("Not a runbook.\n")
    result = lint(tmp_path)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert f"{tmp_path}/bad.md:5: unknown key \"colour\"" in "\n".join(lines)
    assert any(line.startswith(f"{tmp_path}/bad.md:7: unknown role \"boss\"") for line in lines), lines
    assert any(line.startswith(f"{tmp_path}/bad.md:9: no \"## Steps\" section") for line in lines), lines
    assert not any("good.md" in line or "README" in line for line in lines)
    assert "3 problem(s)" in result.stderr


def test_serve_syncs_at_start_and_the_cli_syncs_on_demand(empty_database, start_server, tmp_path):
    import os
    import shutil

    from conftest import psql

    books = tmp_path / "books"
    shutil.copytree(ROOT / "runbooks", books)
    env = {"DATABASE_URL": empty_database, "HANDRAIL_RUNBOOKS_DIR": str(books)}
    server = start_server(env)
    server.wait_ready()
    server.stop()
    assert psql(empty_database, "SELECT count(*) FROM runbook_versions") == str(len(list(books.glob("*.md"))))

    def sync():
        full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        full_env.update(env)
        return subprocess.run([str(BINARY), "runbooks", "sync"], env=full_env, capture_output=True, text=True, timeout=60)

    unchanged = sync()
    assert unchanged.returncode == 0, unchanged.stderr
    assert "0 new version(s)" in unchanged.stdout
    text = (books / "feature-drift.md").read_text().replace("Confirm the drift is real", "Confirm that the drift is real")
    (books / "feature-drift.md").write_text(text)
    (books / "retraining-failed.md").unlink()
    changed = sync()
    assert "feature-drift: new version 2" in changed.stdout
    assert "retraining-failed: retired" in changed.stdout
    (books / "broken.md").write_text("---\nid: broken\n---\n")
    refused = sync()
    assert refused.returncode == 1
    assert "books/broken.md:2: missing title" in refused.stdout
    assert "nothing synced" in refused.stderr
    assert psql(empty_database, "SELECT current_version FROM runbooks WHERE id = 'feature-drift'") == "2"


def test_cli_lists_shows_and_matches_synced_runbooks(empty_database):
    import os

    def run(*args):
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env["DATABASE_URL"] = empty_database
        return subprocess.run([str(BINARY), "runbooks", *args], env=env, capture_output=True, text=True, timeout=60)

    assert run("sync", str(ROOT / "runbooks")).returncode == 0
    listing = run("list").stdout
    assert "canary-guard-breach\tv1\tml-serving\tactive\tCanary guard breach during a model rollout" in listing
    shown = run("show", "stale-features")
    assert shown.returncode == 0
    assert "id: stale-features" in shown.stdout and "## Steps" in shown.stdout
    assert run("show", "nope").returncode == 1
    matched = run("match", "--alertname", "CanaryGuardBreached", "--label", "model=fraud", "--label", "rollout=r7")
    assert matched.stdout.splitlines()[0] == "canary-guard-breach"
    assert 'alertname="CanaryGuardBreached"' in matched.stdout
    none = run("match", "--alertname", "Unknown")
    assert none.returncode == 2 and "no runbook matches" in none.stdout
    bad = run("match", "--alertname", "X", "--label", "nokeyvalue")
    assert bad.returncode == 1 and bad.stderr.startswith("handrail: label:")
