"""The plan as people read it (text), as a pull request shows it (markdown) and as machines read it (JSON)."""

from __future__ import annotations

import json

from modelops.registry.plan import Plan


def render(plan: Plan, fmt: str) -> str:
    """The plan as text, a markdown table (for a pull request comment) or JSON."""
    if fmt == "json":
        return json.dumps(plan.to_json(), indent=2)
    if fmt == "markdown":
        return _markdown(plan)
    lines = [f"  + {a.text()}" for a in plan.actions]
    lines += [f"  ! drift: {d.message}" for d in plan.drift if not d.blocking]  # the blocking: plan's error
    lines += [f"  i {note}" for note in plan.notes]
    blocking = sum(d.blocking for d in plan.drift)
    summary = (f"{len(plan.actions)} action(s), {len(plan.drift)} drift" if plan.actions or plan.drift
               else "no changes: the registry matches git") + (f" ({blocking} blocks apply)" if blocking else "")
    return "\n".join([*lines, summary])


def _markdown(plan: Plan) -> str:
    notes = "".join(f"\n\n> {_cell(note)}" for note in plan.notes)
    if not plan.actions and not plan.drift:
        return "### modelops plan\n\nNo changes: the registry matches git." + notes
    out = ["### modelops plan", ""]
    if plan.actions:
        out += ["| model | action | version / alias | from | to |", "|---|---|---|---|---|"]
        for a in plan.actions:
            subject = f"@{a.alias}" if a.alias else a.version + (f" ({', '.join(a.envs)})" if a.envs else "")
            if a.kind == "adopt-version":
                subject = f"{subject} (MLflow version {a.number})"
            if a.kind in ("update-model", "update-version"):
                subject = f"{subject}: {a.changes()}" if subject else a.changes()
            new = a.new[:12] + "…" if a.kind == "register" else a.new
            old = "" if a.kind == "update-model" else a.old
            out.append(f"| {_cell(a.model)} | {a.kind} | {_cell(subject)} | {_cell(old)} | {_cell(new)} |")
        out.append("")
    if plan.drift:
        out += ["**Drift** (the registry differs from git; apply restores git):", ""]
        out += [f"- {'**blocks apply**: ' if d.blocking else ''}{_cell(d.message)}" for d in plan.drift]
        out.append("")
    out.append(f"{len(plan.actions)} action(s), {len(plan.drift)} drift.")
    return "\n".join(out) + notes


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
