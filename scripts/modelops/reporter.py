"""What library code has to say while it works: it tells a Reporter, never the terminal.

The CLI passes one that prints (`commands.output.TerminalReporter`); the default says nothing, so the API
can be called from tests or other programs without output.
"""

from __future__ import annotations


class Reporter:
    """Silent: override `progress` (how work goes: waits, downloads, builds) and `result` (what it did)."""

    def progress(self, line: str) -> None:
        """A line about work under way (the CLI prints it on stderr)."""

    def result(self, line: str) -> None:
        """A line of the result: a change carried out, where a server listens (the CLI prints it on stdout)."""

    def advance(self, done: int, total: int | None, unit: str) -> None:
        """How far a long task is: `done` of `total` (None: unknown) `unit`s (a progress bar, when shown)."""


class LineRecorder(Reporter):
    """Keeps every line, progress and changes alike, in `lines` (for programs and tests that read them)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def progress(self, line: str) -> None:
        self.lines.append(line)

    def result(self, line: str) -> None:
        self.lines.append(line)
