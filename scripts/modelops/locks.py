"""Locked requirements: pip requirement files whose every line is `name==version` with the sha256 of its files.

`scripts/lock.sh` writes them (uv pip compile --generate-hashes) from the human-edited inputs: the platform's
(`requirements.lock`, from pyproject.toml), the runner's (`RUNNER`, from requirements.txt beside it: what every
image installs) and the images' SBOM tool (`SBOM_TOOL`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from modelops.errors import ModelopsError

PACKAGE = Path(__file__).parent
RUNNER = PACKAGE / "runner" / "requirements.lock"
SBOM_TOOL = PACKAGE / "images" / "sbom-tool.lock"
REGENERATE = "regenerate the locks with scripts/lock.sh"


@dataclass(frozen=True)
class LockedPin:
    """One locked package: its canonical name, exact version, accepted sha256 digests and first line."""

    name: str
    version: str
    hashes: frozenset[str]
    line: int
    via: tuple[str, ...] = ()  # what requires it, as the lock's `# via` comments say

    def requirement(self) -> str:
        """`name==version`, without the hashes."""
        return f"{self.name}=={self.version}"


def parse(text: str, display: str) -> list[LockedPin]:
    """The pins of a lock's `text`; a lock line that is not `name==version --hash=sha256:...` is refused."""
    pins: list[LockedPin] = []
    entry: list[str] = []
    start, via, in_via = 0, [], False

    def close() -> None:
        if entry:
            pins.append(_pin(" ".join(entry), start, tuple(via), display))

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#"):
            comment = line[1:].strip()
            if comment.startswith("via"):
                in_via, rest = True, comment[3:].strip()
                via += [rest] if rest else []
            elif in_via and comment:
                via.append(comment)
            continue
        if not line:
            continue
        if not raw[:1].isspace() and not line.startswith("--"):
            close()
            entry, start, via, in_via = [], number, [], False
        elif not entry:
            raise ModelopsError(f"an option outside a locked requirement: {line[:80]}", file=display, line=number,
                                hint=REGENERATE)
        entry.append(line.rstrip("\\").strip())
    close()
    return pins


def _pin(text: str, line: int, via: tuple[str, ...], display: str) -> LockedPin:
    words = text.split()
    hashes = frozenset(w.removeprefix("--hash=sha256:") for w in words[1:] if w.startswith("--hash=sha256:"))
    try:
        requirement = Requirement(words[0])
    except InvalidRequirement as exc:
        raise ModelopsError(f"not a requirement: {exc}", file=display, line=line, hint=REGENERATE) from None
    specifiers = list(requirement.specifier)
    if len(specifiers) != 1 or specifiers[0].operator != "==" or not hashes or len(hashes) != len(words) - 1:
        raise ModelopsError(f"{words[0]} is not locked (name==version with --hash=sha256:... and nothing else)",
                            file=display, line=line, hint=REGENERATE)
    return LockedPin(canonicalize_name(requirement.name), specifiers[0].version, hashes, line, via)


def load(path: Path, display: str | None = None) -> dict[str, LockedPin]:
    """The pins of the lock at `path`, by canonical name."""
    display = display or path.name
    try:
        text = path.read_text()
    except OSError as exc:
        raise ModelopsError(f"cannot read the lock: {exc.strerror}", file=display, hint=REGENERATE) from None
    return {pin.name: pin for pin in parse(text, display)}
