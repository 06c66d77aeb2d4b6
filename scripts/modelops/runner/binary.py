"""The binary tensor data extension of the v2 protocol (Triton's and KServe's): tensors as raw bytes.

A request with `Inference-Header-Content-Length: N` carries its JSON in the first N bytes of the body
and, after it, the data of each input whose `parameters.binary_data_size` is set, in the order of the
inputs: little-endian, row major, BOOL one byte per element, BYTES each element a 4-byte little-endian
length followed by its bytes. An answer with binary outputs is laid out the same way and says so with
the same header and `Content-Type: application/octet-stream`.
"""

from __future__ import annotations

import struct

import numpy as np

from modelops.runner.http import RequestError

HEADER = "inference-header-content-length"
OCTET_STREAM = "application/octet-stream"
FIELD = "Inference-Header-Content-Length"
DTYPES = {"BOOL": np.dtype("u1"), "UINT8": np.dtype("u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
          "UINT64": np.dtype("<u8"), "INT8": np.dtype("i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
          "INT64": np.dtype("<i8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}
_LENGTH = struct.Struct("<I")


def split(body: bytes, header: str) -> tuple[bytes, memoryview]:
    """(the JSON, the binary data) of a body whose JSON is `header` bytes long."""
    length = header.strip()
    if not length.isdigit() or not 0 < int(length) <= len(body):
        raise RequestError(f"{FIELD} is {header!r}: expected the length in bytes of the JSON at the start of "
                           f"the body (1 to {len(body)})", FIELD)
    cut = int(length)
    return body[:cut], memoryview(body)[cut:]


def decode(datatype: str, raw: memoryview, count: int, where: str) -> list:
    """The `count` values of a binary tensor (BYTES: the bytes of each element); 400 if they do not add up."""
    if datatype == "BYTES":
        return _elements(raw, count, where)
    dtype = DTYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise RequestError(f"{len(raw)} bytes of binary data for {count} {datatype} value(s); expected "
                           f"{count * dtype.itemsize}", f"{where}.parameters.binary_data_size")
    values = np.frombuffer(raw, dtype)
    if datatype == "BOOL":
        if (values > 1).any():
            i = int(np.argmax(values > 1))
            raise RequestError(f"byte {values[i]} is not a BOOL (0 or 1)", f"{where}.data[{i}]")
        return values.astype(bool).tolist()
    return values.tolist()


def _elements(raw: memoryview, count: int, where: str) -> list[bytes]:
    elements, offset, end = [], 0, len(raw)
    while offset < end:
        start = offset + 4
        if start > end or (offset := start + _LENGTH.unpack_from(raw, start - 4)[0]) > end:
            raise RequestError(f"BYTES element {len(elements)} runs past the end of its binary data (each element "
                               "is a 4-byte little-endian length, then that many bytes)",
                               f"{where}.parameters.binary_data_size")
        elements.append(bytes(raw[start:offset]))
    if len(elements) != count:
        raise RequestError(f"the binary data holds {len(elements)} BYTES element(s); the shape says {count}",
                           f"{where}.shape")
    return elements


def encode(datatype: str, values: np.ndarray) -> bytes:
    """A tensor's values as the extension lays them out."""
    if datatype == "BYTES":
        items = [v if isinstance(v, bytes) else str(v).encode() for v in values.tolist()]
        return b"".join(_LENGTH.pack(len(item)) + item for item in items)
    return np.ascontiguousarray(values, dtype=DTYPES[datatype]).tobytes()
