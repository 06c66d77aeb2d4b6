"""Stripping wheels on the host: real binutils `strip`, a real wheel, installed by pip and imported."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from modelops.images import wheel_strip as strip
from modelops.reporter import LineRecorder

STRIP = shutil.which("strip")
pytestmark = pytest.mark.skipif(STRIP is None, reason="strip (binutils) is not installed "
                                                      "(scripts/setup.sh --system installs it)")


def _yaml_wheel(folder: Path) -> Path:
    """A wheel of the PyYAML this interpreter runs (its package and libyaml extension, as pip installed them)."""
    package = Path(yaml.__file__).parent
    libyaml = next(package.glob("_yaml*.so"), None)
    if libyaml is None:
        pytest.skip("this PyYAML has no libyaml extension")
    wheel = folder / "PyYAML-6.0.0-cp311-cp311-linux_x86_64.whl"
    record = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        files = {f"yaml/{p.relative_to(package)}": p.read_bytes() for p in package.rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts}
        files["PyYAML-6.0.0.dist-info/METADATA"] = b"Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0.0\n"
        files["PyYAML-6.0.0.dist-info/WHEEL"] = (b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\n"
                                                 b"Tag: cp311-cp311-linux_x86_64\n")
        for name, data in files.items():
            archive.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        record.append("PyYAML-6.0.0.dist-info/RECORD,,")
        archive.writestr("PyYAML-6.0.0.dist-info/RECORD", "\n".join(record) + "\n")
    return wheel


def test_a_stripped_wheel_installs_and_its_extension_imports(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MODELOPS_CACHE", str(tmp_path / "cache"))
    house = tmp_path / "house"
    house.mkdir()
    original = _yaml_wheel(house)
    recorder = LineRecorder()
    lines = recorder.lines
    (slim,) = strip.wheels(house, recorder)
    assert slim != original and slim.name == original.name and slim.stat().st_size < original.stat().st_size
    assert strip.wheels(house, recorder) == [slim] and len(lines) == 1  # cached: stripped once
    with zipfile.ZipFile(slim) as archive:
        for line in archive.read("PyYAML-6.0.0.dist-info/RECORD").decode().splitlines():
            name, digest, size = line.rsplit(",", 2)
            if digest:
                data = archive.read(name)
                assert (digest, int(size)) == ("sha256=" + base64.urlsafe_b64encode(
                    hashlib.sha256(data).digest()).rstrip(b"=").decode(), len(data)), name

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "--target", str(target), str(slim)], check=True, timeout=120)
    check = ("import sys, yaml; assert yaml.__file__.startswith(sys.argv[1]), yaml.__file__; "
             "assert yaml.__with_libyaml__; print(yaml.load('a: [1, 2]', Loader=yaml.CLoader))")
    done = subprocess.run([sys.executable, "-S", "-c", check, str(target)], capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(target)}, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (0, "{'a': [1, 2]}\n"), done.stderr


def test_a_strip_that_changes_what_the_loader_maps_is_refused(tmp_path: Path) -> None:
    library = next(Path(yaml.__file__).parent.glob("_yaml*.so"))
    data = library.read_bytes()
    segments = strip.loaded_bytes(data)
    assert segments and strip.loaded_bytes(b"#!/bin/sh\n" * 10) is None
    last = segments[-1][0]
    corrupt = tmp_path / "corrupt-strip"  # drops the tail, but also changes one loaded byte
    corrupt.write_text(f"#!{sys.executable}\nimport sys\np = sys.argv[-1]\nd = bytearray(open(p, 'rb').read())\n"
                       f"d[{last[1]}] ^= 1\nopen(p, 'wb').write(d[:-512])\n")
    corrupt.chmod(0o755)
    assert strip.stripped(data, str(corrupt), tmp_path / "scratch") is None
    assert strip.stripped(data, STRIP, tmp_path / "scratch") is not None
