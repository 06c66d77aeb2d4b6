"""Wheels whose shared libraries are stripped on the host, before they enter a build context (and whose
members that no runner loads, listed in UNUSED, are left out).

The base image has no binutils and the build has no network, so the host strips: each ELF member of a
wheel goes through `strip --strip-unneeded` (debug info and the static symbol table go; the dynamic
symbols that imports and the loader use stay), and the wheel's RECORD gets the new hashes. A stripped
library is kept only when it is smaller and the loader maps exactly the same bytes as before (the ELF
header's section-table fields aside); otherwise the original stays. That refuses, among others, the
libraries auditwheel patched with patchelf (`<package>.libs/`, and extensions whose RPATH it set), whose
segments binutils rewrites. Stripped wheels are cached by the original's sha256; without `strip` on the
host, wheels are used as they are.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import shutil
import struct
import subprocess
import tempfile
import zipfile
from pathlib import Path

from modelops.artifacts import cache_dir
from modelops.errors import ModelopsError
from modelops.reporter import Reporter

RECIPE = "strip-unneeded-2"  # part of the cache key: change it when the recipe changes
# Members a runner never loads, dropped with their RECORD lines: ONNX Runtime's C API library (its Python
# module is self-contained and does not link it) and its offline tools (model optimisers, quantisation).
UNUSED = {"onnxruntime": ("onnxruntime/capi/libonnxruntime.so.", "onnxruntime/transformers/",
                          "onnxruntime/quantization/", "onnxruntime/tools/")}
_PT_LOAD = 1


def loaded_bytes(data: bytes) -> list[tuple[tuple[int, ...], bytes]] | None:
    """The loadable segments of an ELF image, (header, bytes), with the section-table fields zeroed; None if not ELF."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    order = "<" if data[5] == 1 else ">"
    image = bytearray(data)
    try:
        if data[4] == 2:  # ELF64: e_phoff at 0x20, e_phentsize/e_phnum at 0x36; e_shoff 0x28, e_sh* 0x3A..0x40
            (phoff,) = struct.unpack_from(order + "Q", data, 0x20)
            size, count = struct.unpack_from(order + "HH", data, 0x36)
            rows = [struct.unpack_from(order + "IIQQQQQQ", data, phoff + i * size) for i in range(count)]
            headers = [(kind, offset, vaddr, filesz, memsz, flags, align)
                       for kind, flags, offset, vaddr, _, filesz, memsz, align in rows]
            image[0x28:0x30], image[0x3A:0x40] = bytes(8), bytes(6)
        else:  # ELF32: e_phoff at 0x1C, e_phentsize/e_phnum at 0x2A; e_shoff 0x20, e_sh* 0x2E..0x34
            (phoff,) = struct.unpack_from(order + "I", data, 0x1C)
            size, count = struct.unpack_from(order + "HH", data, 0x2A)
            rows = [struct.unpack_from(order + "IIIIIIII", data, phoff + i * size) for i in range(count)]
            headers = [(kind, offset, vaddr, filesz, memsz, flags, align)
                       for kind, offset, vaddr, _, filesz, memsz, flags, align in rows]
            image[0x20:0x24], image[0x2E:0x34] = bytes(4), bytes(6)
    except struct.error:
        return None
    return [(h, bytes(image[h[1]:h[1] + h[3]])) for h in headers if h[0] == _PT_LOAD]


def stripped(data: bytes, strip: str, scratch: Path) -> bytes | None:
    """`data` (an ELF file) stripped of what the loader does not map, or None when that is unsafe or no gain."""
    before = loaded_bytes(data)
    if not before:
        return None
    scratch.write_bytes(data)
    done = subprocess.run([strip, "--strip-unneeded", str(scratch)], capture_output=True, check=False)
    after = scratch.read_bytes() if done.returncode == 0 else b""
    return after if after and len(after) < len(data) and loaded_bytes(after) == before else None


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def strip_wheel(wheel: Path, out: Path, strip: str) -> int:
    """Write `wheel` to `out` with its shared libraries stripped, its UNUSED members left out and RECORD updated;
    returns the bytes saved."""
    saved, changed, unused = 0, {}, UNUSED.get(wheel.name.split("-")[0].lower(), ())
    with tempfile.TemporaryDirectory(prefix="modelops-strip-") as tmp, zipfile.ZipFile(wheel) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        members = source.infolist()
        record = next((m for m in members if m.filename.endswith(".dist-info/RECORD")), None)
        for member in members:
            if member is record:
                continue
            data = source.read(member)
            if member.filename.startswith(unused):
                saved += len(data)
                continue
            name = member.filename.rsplit("/", 1)[-1]
            if ".so" in name and not member.is_dir():
                smaller = stripped(data, strip, Path(tmp) / "lib")
                if smaller is not None:
                    saved += len(data) - len(smaller)
                    data = changed[member.filename] = smaller
            target.writestr(member, data)
        if record is not None:
            lines = []
            for line in source.read(record).decode().splitlines():
                path = line.rsplit(",", 2)[0]
                if path.startswith(unused):
                    continue
                lines.append(f"{path},{_digest(changed[path])},{len(changed[path])}" if path in changed else line)
            target.writestr(record, "\n".join(lines) + "\n")
    return saved


def wheels(folder: Path, reporter: Reporter) -> list[Path]:
    """The wheels of `folder`, each replaced by its stripped copy (made once, cached) when `strip` can shrink it."""
    found = sorted(folder.glob("*.whl"))
    strip = shutil.which("strip")
    if strip is None:
        reporter.progress("strip (binutils) is not on this host: shared libraries go into the image unstripped")
        return found
    result = []
    for wheel in found:
        key = hashlib.sha256(wheel.read_bytes()).hexdigest()
        cached = cache_dir() / "stripped-wheels" / RECIPE / key / wheel.name
        if not cached.parent.is_dir():
            cached.parent.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cached.parent.parent))
            try:
                with zipfile.ZipFile(wheel) as archive:
                    elf = any(".so" in n.rsplit("/", 1)[-1] for n in archive.namelist())
                saved = strip_wheel(wheel, staging / wheel.name, strip) if elf else 0
                if saved:
                    reporter.progress(f"stripped {wheel.name} (-{saved / 1e6:.1f} MB)")
                else:
                    (staging / wheel.name).unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # another build made it meanwhile
                    staging.rename(cached.parent)
            except zipfile.BadZipFile:
                raise ModelopsError(f"{wheel} is not a valid wheel (zip)",
                                    hint="remove it from the wheelhouse and download it again") from None
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        result.append(cached if cached.is_file() else wheel)
    return result
