"""A verdict rewrites the deployment in place (the editor `release` and `promote` use): only the changed lines
change, and the result is validated before the write."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops.canary.decide import Decision
from modelops.errors import ModelopsError
from modelops.manifest.edit import ManifestEditor
from modelops.manifest.loading import load
from modelops.manifest.serving import Serving
from modelops.workspace import Workspace
from tests.conftest import EXAMPLES, ROOT

IRIS = "models/iris/model.yaml"


def _changed_lines(diff: str) -> list[str]:
    return [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def _rewrite(repo: Path, changes: dict, env: str = "production") -> ManifestEditor:
    editor = ManifestEditor(repo / "models/iris", repo)
    current = Serving.of(editor.loaded.manifest.deployments[env])
    editor.serve(env, Decision("promote", "", current.version, None, changes=changes).serving(current))
    return editor


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_manifest_is_unchanged_by_an_editor_that_changes_nothing(name: str) -> None:
    editor = ManifestEditor(ROOT / "models" / name, ROOT)
    for env, deployment in editor.loaded.manifest.deployments.items():
        editor.serve(env, Serving.of(deployment))
    assert editor.diff() == "" and editor.text() == (ROOT / "models" / name / "model.yaml").read_text()


@pytest.mark.parametrize(("changes", "lines"), [
    ({"canary": {"weight": 30}},  # the next step
     ["-    canary: {version: 1.1.0, weight: 10}", "+    canary: {version: 1.1.0, weight: 30}"]),
    ({"version": "1.1.0", "canary": None},  # the last step: the canary becomes the version
     ["-    version: 1.0.0", "-    canary: {version: 1.1.0, weight: 10}", "+    version: 1.1.0"]),
    ({"canary": None}, ["-    canary: {version: 1.1.0, weight: 10}"]),  # rolled back
    ({"shadow": None}, ["-    shadow: [1.2.0]"]),  # a disagreeing shadow leaves
])
def test_a_verdict_changes_only_its_lines(repo: Path, changes: dict, lines: list[str]) -> None:
    current = Serving.of(load(repo / "models/iris", repo).manifest.deployments["production"])
    wanted = Decision("promote", "", current.version, None, changes=changes).serving(current)
    editor = _rewrite(repo, changes)
    editor.check(Workspace(repo).fetch, offline=True)
    assert editor.write()
    assert _changed_lines(editor.diff()) == lines
    assert Serving.of(load(repo / "models/iris", repo).manifest.deployments["production"]) == wanted


def test_a_shadow_promoted_to_a_canary_takes_the_first_step(repo: Path) -> None:
    editor = _rewrite(repo, {"shadow": None, "canary": {"version": "1.2.0", "weight": 10}}, env="production")
    assert sorted(_changed_lines(editor.diff())) == ["+    canary: {version: 1.2.0, weight: 10}",
                                                     "-    canary: {version: 1.1.0, weight: 10}",
                                                     "-    shadow: [1.2.0]"]


def test_a_rewrite_validate_refuses_writes_nothing(repo: Path) -> None:
    before = (repo / IRIS).read_bytes()
    editor = _rewrite(repo, {"version": "1.2.0"})  # 1.2.0 is also its shadow
    with pytest.raises(ModelopsError) as refused:
        editor.check(Workspace(repo).fetch, offline=True)
    assert "a version cannot shadow itself" in refused.value.render()
    assert (repo / IRIS).read_bytes() == before
