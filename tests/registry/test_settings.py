"""Settings: pyproject.toml's [tool.modelops], overridden by the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelops import settings
from modelops.errors import ModelopsError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODELOPS_TRACKING_URI", "MLFLOW_TRACKING_URI", "MODELOPS_IMAGE_REGISTRY", "MODELOPS_BASE_IMAGE",
                 "MODELOPS_LOCK_TIMEOUT", "MLFLOW_DISABLE_TELEMETRY"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_embedded_registry_and_no_telemetry(tmp_path: Path) -> None:
    config = settings.load(tmp_path)
    assert config.tracking_uri == f"sqlite:///{tmp_path}/.modelops/mlflow.db"
    assert config.tracking_uri == settings.embedded_uri(tmp_path)
    assert config.artifact_root == (tmp_path / ".modelops" / "artifacts").as_uri()
    assert (config.image_registry, config.base_image, config.lock_timeout) == \
        ("127.0.0.1:5000/models", "python:3.11-slim", 600.0)
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_pyproject_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.modelops]\ntracking_uri = "http://mlflow:5000"\n'
                                            'base_image = "python:3.12-slim"\n')
    config = settings.load(tmp_path)
    assert (config.tracking_uri, config.base_image) == ("http://mlflow:5000", "python:3.12-slim")
    assert config.tracking_uri != settings.embedded_uri(tmp_path)
    assert config.artifact_root is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://other:5000")
    assert settings.load(tmp_path).tracking_uri == "http://other:5000"
    monkeypatch.setenv("MODELOPS_TRACKING_URI", "postgresql://db/mlflow")
    assert settings.load(tmp_path).tracking_uri == "postgresql://db/mlflow"


@pytest.mark.parametrize(("text", "message"), [
    ("[tool.modelops\n", "invalid TOML"),
    ('[tool.modelops]\nlock_timeout = "soon"\n', "lock_timeout 'soon' is not a number of seconds"),
    ("[tool.modelops]\nlock_timeout = -5\n", "lock_timeout '-5' is not a number of seconds above 0"),
    ("[tool.modelops]\nlock_timeout = inf\n", "lock_timeout 'inf' is not"),
])
def test_bad_settings_are_named(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(ModelopsError, match=message):
        settings.load(tmp_path)


@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf", "1e309", "86401"])
def test_lock_timeout_must_be_finite_positive_and_at_most_a_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  value: str) -> None:
    monkeypatch.setenv("MODELOPS_LOCK_TIMEOUT", value)
    with pytest.raises(ModelopsError, match=f"lock_timeout '{value}' is not a number of seconds") as raised:
        settings.load(tmp_path)
    assert (raised.value.problem.file, raised.value.problem.field) == ("MODELOPS_LOCK_TIMEOUT",
                                                                       "tool.modelops.lock_timeout")
    assert raised.value.problem.hint
    monkeypatch.setenv("MODELOPS_LOCK_TIMEOUT", "0.5")
    assert settings.load(tmp_path).lock_timeout == 0.5


@pytest.mark.parametrize("uri", ["databricks", "databricks://profile", "https://mlflow.example.com",
                                 "postgresql+psycopg2://db/mlflow", "mssql+pyodbc://host/db", "sqlite:///tmp/x.db"])
def test_tracking_uris_mlflow_registries_accept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str) -> None:
    monkeypatch.setenv("MODELOPS_TRACKING_URI", uri)
    assert settings.load(tmp_path).tracking_uri == uri


def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.modelops]\ntrackng_uri = "http://mlflow:5000"\n')
    with pytest.raises(ModelopsError, match=r"'trackng_uri' \(did you mean 'tracking_uri'\?\)") as raised:
        settings.load(tmp_path)
    assert (raised.value.problem.file, raised.value.problem.field) == ("pyproject.toml", "tool.modelops.trackng_uri")
    assert "allowed keys are: tracking_uri, " in raised.value.problem.hint


@pytest.mark.parametrize(("text", "field"), [('[tool]\nmodelops = "x"\n', "tool.modelops"), ('tool = 1\n', "tool")])
def test_a_modelops_setting_that_is_not_a_table_is_one_error_for_every_reader(tmp_path: Path, text: str,
                                                                              field: str) -> None:
    from modelops.scan import policy
    from modelops.workspace import Workspace

    (tmp_path / "pyproject.toml").write_text(text)
    readers = (lambda: settings.load(tmp_path), lambda: Workspace(tmp_path).settings,
               lambda: policy.load(tmp_path, Workspace(tmp_path).tool_table))
    for read in readers:
        with pytest.raises(ModelopsError, match="is not a table") as raised:
            read()
        assert raised.value.problem.field == field


def test_scan_policy_table_is_allowed(tmp_path: Path) -> None:
    from modelops.scan import policy

    (tmp_path / "pyproject.toml").write_text('[tool.modelops.scan]\nfail_severity = "high"\n')
    assert settings.load(tmp_path).lock_timeout == 600
    assert policy.load(tmp_path, settings.pyproject_table(tmp_path)).policy.fail_severity == "high"
