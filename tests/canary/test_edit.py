"""Editing a deployment in place: only the changed lines change; the result is validated before the write."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops.errors import ModelopsError
from modelops.manifest import edit
from modelops.manifest.loading import load
from modelops.workspace import Workspace
from tests.conftest import EXAMPLES, ROOT

COMMENTED = """\
# A manifest as people write it: comments, quotes, flow mappings and their own indentation.
deployments:
    production:
        version: "1.0.0"      # the main one
        canary: {version: '1.1.0', weight: 10}  # ten percent
        # the shadow compares, never answers
        shadow: [1.2.0]
    staging: {version: 1.2.0}
list:
-   a: 1
"""


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_manifest_round_trips_byte_for_byte(name: str) -> None:
    path = ROOT / "models" / name / "model.yaml"
    yaml, doc = edit.load(path)
    assert edit.dumps(yaml, doc) == path.read_text()


def test_a_new_weight_changes_one_line_and_keeps_comments_quotes_and_indentation(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text(COMMENTED)
    yaml, doc = edit.load(path)
    edit.set_deployment(doc, "production", {"canary": {"weight": 30}})
    diff = edit.write(path, yaml, doc, display="model.yaml")
    assert path.read_text() == COMMENTED.replace("weight: 10", "weight: 30")
    assert [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")] == [
        "-        canary: {version: '1.1.0', weight: 10}  # ten percent",
        "+        canary: {version: '1.1.0', weight: 30}  # ten percent"]
    assert edit.write(path, yaml, doc) == ""  # nothing more to change: nothing written


def test_removing_a_key_keeps_the_comment_lines_below_it(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text(COMMENTED)
    yaml, doc = edit.load(path)
    edit.set_deployment(doc, "production", {"version": "1.1.0", "canary": None, "shadow": ["1.2.0", "1.3.0"]})
    edit.write(path, yaml, doc)
    assert path.read_text() == COMMENTED.replace('"1.0.0"', '"1.1.0"').replace(
        "        canary: {version: '1.1.0', weight: 10}  # ten percent\n", "").replace("[1.2.0]", "[1.2.0, 1.3.0]")


def test_a_new_mapping_is_written_in_flow_style(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text(COMMENTED)
    yaml, doc = edit.load(path)
    edit.set_deployment(doc, "staging", {"canary": {"version": "1.3.0", "weight": 5}})
    edit.write(path, yaml, doc)
    assert "    staging: {version: 1.2.0, canary: {version: 1.3.0, weight: 5}}\n" in path.read_text()


def test_update_validates_the_result_and_writes_nothing_it_refuses(repo: Path) -> None:
    ws = Workspace(repo)
    loaded = ws.manifest(repo / "models/iris")
    before = (repo / "models/iris/model.yaml").read_bytes()
    with pytest.raises(ModelopsError) as refused:
        edit.update(loaded, {"production": {"version": "1.2.0"}}, ws.fetch)  # 1.2.0 is also its shadow
    assert refused.value.problem.field == "deployments.production.shadow[0]"
    assert "a version cannot shadow itself (in the rewritten manifest: nothing written)" in refused.value.render()
    assert (repo / "models/iris/model.yaml").read_bytes() == before
    assert sorted(p.name for p in (repo / "models/iris").iterdir()) == sorted(
        p.name for p in (ROOT / "models/iris").iterdir())  # no temporary file left


def test_update_writes_a_manifest_that_loads_and_refuses_one_changed_meanwhile(repo: Path) -> None:
    ws = Workspace(repo)
    path = repo / "models/iris/model.yaml"
    loaded = ws.manifest(path.parent)
    diff = edit.update(loaded, {"production": {"version": "1.1.0", "canary": None}}, ws.fetch)
    assert "-    canary: {version: 1.1.0, weight: 10}" in diff
    again = load(path.parent, repo).manifest.deployments["production"]
    assert (again.version, again.canary, again.shadow) == ("1.1.0", None, ["1.2.0"])
    mode = path.stat().st_mode & 0o777
    assert mode == (ROOT / "models/iris/model.yaml").stat().st_mode & 0o777  # permissions kept
    with pytest.raises(ModelopsError, match="changed while modelops read it"):
        edit.update(loaded, {"production": {"version": "1.0.0"}}, ws.fetch)  # `loaded` is the file before
