"""`modelops apply --build --push` over many models: time, and how often it reads each fact.

Copies the example models N times into a temporary repository (artifacts hard-linked), then runs the real
`apply --build --push` (embedded MLflow, the local Docker engine and a `docker-registry` on a free port) in
a child process that counts manifest parses, `[tool.modelops]` reads, settings loads and artifact digests.
With `--baseline REV`, the same run is made on that git revision's code too, and both are printed side by
side (the counters wrap whichever of the old or new readers the revision has).

usage: python benchmarks/apply_build.py [--models 10] [--baseline d6b4c52]
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.render_kubernetes import make_repo  # noqa: E402

# what is counted -> the reader's dotted name in each layout (the first that exists is wrapped)
READERS = {
    "manifest parses": ("modelops.manifest.safe_yaml.parse", "modelops.yamlsafe.load"),
    "pyproject reads": ("modelops.settings.pyproject_table",),
    "settings loads": ("modelops.settings.load",),
    "digests": ("modelops.artifacts.digest",),
}


def child(repo: Path) -> None:
    """Run apply --build --push in this process with the readers wrapped; print the counts as JSON."""
    counts: collections.Counter = collections.Counter()

    def wrap(key: str, names: tuple[str, ...]) -> None:
        for dotted in names:
            module_name, attribute = dotted.rsplit(".", 1)
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            original = getattr(module, attribute)

            def counted(*args, _original=original, **kwargs):
                counts[key] += 1
                return _original(*args, **kwargs)

            setattr(module, attribute, counted)
            return

    for key, names in READERS.items():
        wrap(key, names)
    from modelops.cli import cli

    os.chdir(repo)
    started = time.perf_counter()
    code = cli.main(["apply", "--build", "--push"], standalone_mode=False)
    print(json.dumps({"seconds": time.perf_counter() - started, "code": code, **counts}))


def run(scripts: Path, models: int, registry: str, base: str, work: Path) -> dict:
    """One measured run of the code under `scripts` on a fresh repository and registry."""
    repo = work / "repo"
    make_repo(repo, models)
    env = {**os.environ, "PYTHONPATH": str(scripts), "MODELOPS_ROOT": str(repo), "MODELOPS_BASE_IMAGE": base,
           "MODELOPS_IMAGE_REGISTRY": registry, "MODELOPS_CACHE": str(Path.home() / ".cache" / "modelops"),
           "MLFLOW_TRACKING_URI": "", "MODELOPS_TRACKING_URI": ""}
    done = subprocess.run([sys.executable, __file__, "--child", str(repo)], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"the run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--baseline", help="a git revision to measure side by side (e.g. the last release)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    from tests.images import harness

    harness.engine()
    base = harness.base_image()
    sides = {"this tree": ROOT / "scripts"}
    with tempfile.TemporaryDirectory(prefix="modelops-apply-build-") as tmp:
        if args.baseline:
            checkout = Path(tmp) / "baseline"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(checkout), args.baseline],
                           check=True)
            sides = {f"baseline {args.baseline}": checkout / "scripts", **sides}
        results = {}
        try:
            for label, scripts in sides.items():
                folder = Path(tmp) / f"registry-{len(results)}"
                folder.mkdir()
                registry = harness.Registry(folder)
                try:
                    results[label] = run(scripts, args.models, f"{registry.address}/models", base,
                                         Path(tmp) / f"work-{len(results)}")
                finally:
                    registry.close()
        finally:
            if args.baseline:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(checkout)], check=False)
    artifacts = sum(len(list((ROOT / "models" / p.name / "artifacts").iterdir()))
                    for p in (ROOT / "models").iterdir() if (p / "model.yaml").is_file())
    examples = len([p for p in (ROOT / "models").iterdir() if (p / "model.yaml").is_file()])
    per_artifact = artifacts / examples  # the copies alternate between the examples
    print(f"apply --build --push over {args.models} models (copies of the examples):")
    print(f"{'':28}" + "".join(f"{label:>24}" for label in results))
    rows = [("seconds", lambda r: f"{r['seconds']:.1f}"),
            ("manifest parses per model", lambda r: f"{r.get('manifest parses', 0) / args.models:.1f}"),
            ("pyproject reads", lambda r: str(r.get("pyproject reads", 0))),
            ("settings loads", lambda r: str(r.get("settings loads", 0))),
            ("digests per artifact", lambda r: f"{r.get('digests', 0) / (args.models * per_artifact):.1f}")]
    for name, cell in rows:
        print(f"{name:28}" + "".join(f"{cell(r):>24}" for r in results.values()))


if __name__ == "__main__":
    main()
