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
