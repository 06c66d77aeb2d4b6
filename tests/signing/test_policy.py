"""[tool.modelops.signing]: what it trusts and requires, and its mistakes, located in pyproject.toml."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from modelops.errors import ModelopsError
from modelops.signing import policy


def _deployment(version: str, canary: str | None = None, shadow: tuple[str, ...] = ()) -> SimpleNamespace:
    return SimpleNamespace(version=version, canary=SimpleNamespace(version=canary) if canary else None,
                           shadow=list(shadow))


DEPLOYMENTS = {"staging": _deployment("3.0.0"), "production": _deployment("1.0.0", "1.1.0", ("1.2.0",))}
VERSIONS = ["1.0.0", "1.1.0", "1.2.0", "3.0.0", "4.0.0"]


@pytest.mark.parametrize(("require", "required"), [
    ("off", set()),
    ("all", set(VERSIONS)),
    (["production"], {"1.0.0", "1.1.0", "1.2.0"}),  # main, canary and shadow
    (["staging", "nowhere"], {"3.0.0"}),
])
def test_which_versions_must_be_signed(tmp_path: Path, require: object, required: set[str]) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "a.pub").write_text("key")
    trust = policy.load(tmp_path, {"signing": {"trusted_keys": ["keys/*.pub"], "require": require}})
    assert trust.keys == (tmp_path / "keys" / "a.pub",)
    assert trust.required(VERSIONS, DEPLOYMENTS) == required


def test_the_environment_only_adds_requirements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.pub").write_text("key")
    monkeypatch.setenv(policy.REQUIRE_ENV, "staging, production")
    trust = policy.load(tmp_path, {"signing": {"trusted_keys": ["a.pub"], "require": ["production"]}})
    assert trust.require == ("production", "staging")
    assert policy.load(tmp_path, {"signing": {"trusted_keys": ["a.pub"], "require": "all"}}).require == ("all",)


def test_nothing_configured_requires_nothing(tmp_path: Path) -> None:
    trust = policy.load(tmp_path, {})
    assert trust == policy.Trust() and trust.required(VERSIONS, DEPLOYMENTS) == set()


@pytest.mark.parametrize(("table", "field", "words"), [
    ({"require": "production"}, "require", "require = 'production' is not valid"),
    ({"require": ["all"]}, "require", "require = ['all'] is not valid"),
    ({"require": "all"}, "require", 'require = "all" but no signer is trusted'),
    ({"trusted_key": ["k.pub"]}, "trusted_key", "unknown setting 'trusted_key' (did you mean 'trusted_keys'?)"),
    ({"trusted_keys": "keys/*.pub"}, "trusted_keys", "trusted_keys is not a list of file names"),
    ({"trusted_keys": ["../outside.pub"]}, "trusted_keys", "'../outside.pub' is outside the repository"),
    ({"trusted_identities": [{"identity": "me@example.com"}]}, "trusted_identities",
     "{'identity': 'me@example.com'} is not {identity = ..., issuer = ...}"),
])
def test_mistakes_name_the_setting(tmp_path: Path, table: dict, field: str, words: str) -> None:
    with pytest.raises(ModelopsError) as caught:
        policy.load(tmp_path, {"signing": table})
    problem = caught.value.problem
    assert (problem.file, problem.field) == ("pyproject.toml", f"tool.modelops.signing.{field}")
    assert problem.message.startswith(words) and problem.hint
