"""The CLI's own promises: instant help, the schema, the scaffold, the change detector."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelops.cli import COMMANDS
from modelops.manifest.model import MAX_TEXT, Manifest
from tests.conftest import run_cli


def test_help_imports_nothing_heavy() -> None:
    code = ("import sys; from modelops.cli import cli\n"
            "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'pydantic', 'numpy', 'docker',"
            " 'jinja2', 'yaml', 'fastapi', 'safety'})\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    assert "validate" in out


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_every_command_has_help_with_an_example(verb: str, repo: Path) -> None:
    result = run_cli(verb, "--help", cwd=repo)
    assert result.code == 0, result.err
    assert COMMANDS[verb][1] and len(result.out.split("\n\n")[1].strip()) > 20  # a sentence, not a stub
    examples = result.out.split("Example", 1)[1] if "Example" in result.out else ""
    assert f"modelops {verb}" in examples, f"`modelops {verb} --help` shows no example"
    assert "Traceback" not in result.err


def test_schema_is_the_manifest_model(repo: Path) -> None:
    result = run_cli("schema", cwd=repo)
    schema = json.loads(result.out)
    assert schema["$schema"].endswith("2020-12/schema")
    assert set(schema["required"]) == {"name", "description", "owners", "flavor", "signature", "versions"}
    assert schema["additionalProperties"] is False
    assert schema == {**Manifest.model_json_schema(), "$schema": schema["$schema"], "title": schema["title"]}


def test_new_scaffolds_a_model_that_validates_once_its_artifact_is_in(repo: Path) -> None:
    result = run_cli("new", "churn", "--owner", "@data/churn", "--description", "Churn: will a customer leave?",
                     cwd=repo)
    assert result.code == 0, result.err
    folder = repo / "models/churn"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "artifacts", "example.json", "model.yaml",
                                                        "requirements.txt"]
    assert "does not exist" in run_cli("validate", "models/churn", "--offline", cwd=repo).err

    artifact = folder / "artifacts/0.1.0/model.skops"
    artifact.parent.mkdir(parents=True)
    artifact.write_bytes(b"placeholder bytes standing for a model")
    digest = run_cli("digest", str(artifact), cwd=repo).out.split()[0]
    manifest = folder / "model.yaml"
    manifest.write_text(manifest.read_text().replace("0" * 64, digest))
    result = run_cli("validate", "models/churn", "--offline", cwd=repo)
    assert result.code == 0, result.err
    assert 'description: "Churn: will a customer leave?"' in manifest.read_text()


def test_new_refuses_bad_names_and_existing_folders(repo: Path) -> None:
    for args, words in ((["Bad_Name"], "'Bad_Name' is not a valid model name"),
                        (["iris"], "models/iris already exists"),
                        (["ok-name", "--owner", "not an owner"], "owners: 'not an owner' is not valid"),
                        (["ok-name", "--description", "d" * (MAX_TEXT + 1)], "at most 2000 characters")):
        result = run_cli("new", *args, cwd=repo)
        assert result.code == 1
        assert words in result.err
        assert "Traceback" not in result.err
    assert not (repo / "models/ok-name").exists()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_changed_reports_touched_and_deleted_models(repo: Path) -> None:
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", "-A")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "base")
    git(repo, "checkout", "-qb", "change")

    def changed() -> dict:
        result = run_cli("changed", "--base", "main", cwd=repo)
        assert result.code == 0, result.err
        return json.loads(result.out)

    assert changed() == {"models": [], "deleted": [], "all": False}
    (repo / "models/iris/README.md").write_text("new card\n")
    assert changed() == {"models": ["iris"], "deleted": [], "all": False}
    git(repo, "rm", "-rq", "models/diabetes")
    assert changed() == {"models": ["iris"], "deleted": ["diabetes"], "all": False}
    (repo / "templates/new-model/example.json").write_text("{}\n")
    assert changed() == {"models": ["iris"], "deleted": ["diabetes"], "all": True}


def test_changed_sees_names_git_would_quote(repo: Path) -> None:
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "base")

    def changed() -> dict:
        result = run_cli("changed", "--base", "main", cwd=repo)
        assert result.code == 0, result.err
        return json.loads(result.out)

    (repo / "models/iris/notes-é.txt").write_text("untracked\n")
    assert changed()["models"] == ["iris"]
    git(repo, "add", "-A")
    assert changed()["models"] == ["iris"]
    git(repo, "rm", "-q", "--cached", "models/iris/notes-é.txt")
    (repo / "models/iris/notes-é.txt").unlink()
    (repo / "models/diabetes/a \"quoted\"\tname.txt").write_text("tracked\n")
    git(repo, "add", "-A")
    assert changed() == {"models": ["diabetes"], "deleted": [], "all": False}
    git(repo, "reset", "-q")
    (repo / "models/diabetes/a \"quoted\"\tname.txt").unlink()
    (repo / "templates/notes-é.txt").write_text("platform\n")
    assert changed()["all"] is True


def test_changed_when_the_models_repository_is_a_folder_of_a_larger_git_repository(repo: Path) -> None:
    top = repo.parent
    (top / "other").mkdir()
    git(top, "init", "-q", "-b", "main")
    git(top, "add", "-A")
    git(top, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "base")
    (repo / "models/iris/README.md").write_text("new card\n")
    (top / "other/templates").write_text("not ours\n")  # outside the models repository: no effect
    result = run_cli("changed", "--base", "main", cwd=repo)
    assert json.loads(result.out) == {"models": ["iris"], "deleted": [], "all": False}, result.err


def test_changed_with_an_unknown_base(repo: Path) -> None:
    git(repo, "init", "-q")
    result = run_cli("changed", "--base", "no-such-ref", cwd=repo)
    assert result.code == 1
    assert "git cannot compare with 'no-such-ref'" in result.err


def test_changed_refuses_an_option_as_base(repo: Path, tmp_path: Path) -> None:
    git(repo, "init", "-q")
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    result = run_cli("changed", f"--base=--output={victim}", cwd=repo)
    assert result.code == 1
    assert f"--base: '--output={victim}' is not a git ref" in result.err
    assert victim.read_text() == "keep\n"


def test_changed_outside_git(repo: Path) -> None:
    result = run_cli("changed", "--base", "main", cwd=repo, env={"GIT_CEILING_DIRECTORIES": str(repo.parent)})
    assert result.code == 1
    assert result.err.startswith(f"error: not a git repository: {repo}")
    assert "usage" not in result.err


def test_a_full_disk_is_one_line_and_exit_1() -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "modelops", "schema"], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr == "error: No space left on device\n"


def test_paths_that_select_no_model_are_errors(repo: Path) -> None:
    assert run_cli("validate", "--offline", ".", cwd=repo).out.endswith("3 model(s) valid\n")  # the repository
    for args in (["validate", "--offline", "templates/new-model"], ["plan", "models/iris/artifacts"],
                 ["apply", "templates"]):
        result = run_cli(*args, cwd=repo, env={"MLFLOW_TRACKING_URI": "", "MODELOPS_TRACKING_URI": ""})
        assert result.code == 1, result
        assert result.err.startswith(f"error: {args[-1]}: not a model folder (no model.yaml in it or in its "
                                     "subfolders)\n  hint: pass model folders such as models/iris")
    assert not (repo / ".modelops").exists()


def test_an_empty_models_folder_is_said_and_succeeds(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    result = run_cli("validate", "--offline", cwd=tmp_path)
    assert (result.code, result.err) == (0, "no models under models/\n")


def test_a_missing_root_or_template_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("validate", cwd=tmp_path, env={"MODELOPS_ROOT": str(tmp_path / "nonexistent")})
    assert result.code == 1 and result.err.startswith(f"error: MODELOPS_ROOT={tmp_path / 'nonexistent'}: no such")
    (tmp_path / "models").mkdir()
    result = run_cli("new", "foo-bar", cwd=tmp_path)
    assert result.code == 1, result
    assert result.err.startswith(f"templates/new-model: no templates/new-model/ folder in {tmp_path}\n  hint: ")
    assert not any((tmp_path / "models").iterdir())


def test_an_unexpected_error_is_one_line_and_its_traceback_is_shown_when_asked_for(monkeypatch, capsys) -> None:
    from modelops import api
    from modelops.cli import cli

    def broken() -> dict:
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "schema", broken)
    assert cli.main(["schema"], standalone_mode=False) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == ["unexpected error: RuntimeError: boom",
                                "  hint: run it again with --traceback (or MODELOPS_TRACEBACK=1) to see where, "
                                "and report it"]
    for args, env in ((["--traceback", "schema"], "0"), (["schema"], "1")):
        monkeypatch.setenv("MODELOPS_TRACEBACK", env)
        assert cli.main(args, standalone_mode=False) == 1
        err = capsys.readouterr().err
        assert err.startswith("Traceback (most recent call last):") and err.endswith("RuntimeError: boom\n")
        assert "in broken" in err


def test_a_user_error_is_rendered_once_and_exits_1(repo: Path) -> None:
    result = run_cli("validate", "models/nope", cwd=repo)
    assert result.code == 1
    assert result.err == "error: models/nope: no such model folder\n  hint: pass folders such as models/iris\n"
    shown = run_cli("--traceback", "render", "models/iris", "--version", "1.0.0", "--out", "/proc/1/x", cwd=repo)
    assert shown.code == 1 and shown.err.startswith("Traceback (most recent call last):")
    assert "/proc/1" in shown.err
