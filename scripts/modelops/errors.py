"""One error type for everything a user can get wrong, and the problems `validate` collects."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the repository, located as precisely as possible."""

    file: str
    message: str
    field: str = ""
    line: int | None = None
    hint: str = ""

    def render(self) -> str:
        where = (self.file + (f":{self.line}" if self.line else "")) if self.file else "error"
        text = f"{where}: {self.field + ': ' if self.field else ''}{self.message}"
        return text + (f"\n  hint: {self.hint}" if self.hint else "")

    def to_json(self) -> dict:
        return asdict(self)


def dotted(path: tuple[str | int, ...] | list[str | int]) -> str:
    """A field path as messages name it: `('versions', 0, 'artifact')` -> `versions[0].artifact`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def excerpt(text: str, limit: int = 40) -> str:
    """A short, quoted and escaped excerpt of untrusted text: never echo a whole unknown input back."""
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


class ModelopsError(Exception):
    """An error the user can act on; rendered once by the CLI, without a traceback."""

    def __init__(self, message: str, *, file: str = "", line: int | None = None, field: str = "",
                 hint: str = "", problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problem = Problem(file=file, line=line, field=field, message=message, hint=hint)
        self.problems = problems or [self.problem]

    @classmethod
    def of(cls, problems: list[Problem]) -> ModelopsError:
        """The error reporting all of `problems` (at least one), located at the first."""
        first = problems[0]
        return cls(first.message, file=first.file, line=first.line, field=first.field, hint=first.hint,
                   problems=problems)

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)
