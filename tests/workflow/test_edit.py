"""The manifest editor: round-trip YAML changes only the lines an edit is about, whatever the comments and
spacing around them."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from modelops.manifest.edit import ManifestEditor
from modelops.manifest.scaffold import new
from modelops.manifest.serving import Serving
from tests.conftest import EXAMPLES, ROOT


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(lines removed, lines added) between two texts, by difflib."""
    removed, added = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before.splitlines(), after.splitlines()).get_opcodes():
        if tag != "equal":
            removed += before.splitlines()[i1:i2]
            added += after.splitlines()[j1:j2]
    return removed, added


@pytest.mark.parametrize("model", EXAMPLES)
def test_an_example_opened_and_left_alone_is_byte_for_byte_the_same(model: str) -> None:
    editor = ManifestEditor(ROOT / "models" / model, ROOT)
    editor.serve("staging", Serving.of(editor.loaded.manifest.deployments["staging"]))  # what it serves already
    assert editor.text() == editor.before and editor.diff() == ""


def test_a_commented_manifest_differs_only_in_the_lines_that_changed(repo: Path) -> None:
    folder = new(repo, "churn", "@data/churn", "Will a customer leave?", "sklearn")  # the commented scaffold
    manifest = folder / "model.yaml"
    manifest.write_text(manifest.read_text().replace("  staging: {version: 0.1.0}\n", (
        "  staging: {version: 0.1.0}   # what CI deploys first\n"
        "  production:\n"
        "    version: '0.1.0'           # quoted, on purpose\n"
        "    # a canary soon\n"
        "    shadow: [0.1.0]\n")))
    before = manifest.read_text()
    editor = ManifestEditor(folder, repo)
    editor.append_version("0.2.0", "artifacts/0.2.0/model.skops", "ab" * 32, "more data")
    editor.serve("staging", Serving("0.2.0"))
    editor.serve("production", Serving("0.2.0", ("0.1.0", 10)))
    after = editor.text()

    removed, added = changed_lines(before, after)
    assert removed == ["  staging: {version: 0.1.0}   # what CI deploys first",
                       "    version: '0.1.0'           # quoted, on purpose",
                       "    shadow: [0.1.0]"]
    assert added == ["  - version: 0.2.0", "    description: more data", "    artifact:",
                     "      uri: artifacts/0.2.0/model.skops", f'      sha256: "{"ab" * 32}"',
                     "  staging: {version: 0.2.0}   # what CI deploys first",
                     "    version: '0.2.0'           # quoted, on purpose",
                     "    canary: {version: 0.1.0, weight: 10}"]
    comments = [line.strip() for line in before.splitlines() if line.strip().startswith("#")]
    assert [line.strip() for line in after.splitlines() if line.strip().startswith("#")] == comments
    # the comment before deployments: still there, after the version appended to the list above it
    assert after.index("  - version: 0.2.0") < after.index("# Which version each environment serves")
    assert editor.check(lambda *_: Path(), offline=True).manifest.deployments["production"].canary.weight == 10


def test_spacing_ruamel_would_not_write_is_kept_where_nothing_changed(repo: Path) -> None:
    manifest = repo / "models/iris/model.yaml"
    text = manifest.read_text().replace("  staging:\n    version: 1.2.0\n", "  staging:    {version: 1.2.0}\n")
    manifest.write_text(text.replace("flavor: sklearn", "flavor:   sklearn"))
    before = manifest.read_text()
    editor = ManifestEditor(repo / "models/iris", repo)
    editor.serve("production", Serving("1.1.0", None, ("1.2.0",)))
    assert changed_lines(before, editor.text()) == (
        ["    version: 1.0.0", "    canary: {version: 1.1.0, weight: 10}"], ["    version: 1.1.0"])
    assert editor.write() and manifest.read_text() == editor.text()
    assert not ManifestEditor(repo / "models/iris", repo).write()  # nothing left to change
