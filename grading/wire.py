"""The wire between the trusted side and the learner's worker: plain data only.

A message is one frame: an 8-byte length, a JSON document, and the raw bytes of any
arrays it carries. Decoding builds nothing but builtins, numpy arrays of a numeric dtype,
numpy scalars and dtypes, slices, paths, copies of numpy random generators (their state is
numbers) and `Ref`s (a number naming an object that lives on the other side). Nothing is unpickled, evaluated or imported, so a hostile worker can send
wrong numbers but never code.

    send(stream, {"op": "call", "ref": 3, "args": [array]})
    message = receive(stream)
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, BinaryIO

import numpy as np

MAX_FRAME = 1 << 30  # 1 GiB: more than any check or milestone sends at once
# dtypes allowed across the wire: numbers and booleans. Never object, void or structured.
DTYPES = frozenset(np.dtype(t).str.lstrip("<>|=") for t in (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64, np.complex64, np.complex128))
REF_KINDS = ("list", "dict", "generator")
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
_HEADER = struct.Struct(">II")  # (json length, number of buffers); each buffer is prefixed by >Q


class WireError(ValueError):
    """A frame that is not valid plain data (too big, malformed, a forbidden dtype...)."""


@dataclass(frozen=True)
class Ref:
    """An object that lives on the other side, named by a number that side chose."""

    id: int
    type_id: int = 0  # the reference of the object's class, when the sender tells
    kind: str = ""  # "list", "dict" or "generator": the builtin the object is (the receiver may mimic it)


def _dtype(text: str) -> np.dtype:
    if not isinstance(text, str) or text.lstrip("<>|=") not in DTYPES:
        raise WireError(f"dtype {text!r} may not cross the wire")
    return np.dtype(text)


class _Encoder:
    def __init__(self, ref_of):
        self.buffers: list[bytes] = []
        self.ref_of = ref_of  # object -> Ref | None, for things that are not plain data

    def encode(self, value: Any) -> Any:
        kind = type(value)
        if value is None or kind in (bool, str):
            return value
        if kind is int:
            return value if -(1 << 62) < value < (1 << 62) else {"$int": str(value)}
        if kind is float:
            return value if value == value and abs(value) != float("inf") else {"$f": repr(value)}
        if kind is np.ndarray and value.dtype.str.lstrip("<>|=") in DTYPES:
            data = value if value.flags.c_contiguous else value.copy(order="C")
            self.buffers.append(data.tobytes())
            return {"$nd": [data.dtype.str, list(data.shape), len(self.buffers) - 1]}
        if isinstance(value, np.generic) and kind is not np.object_ and value.dtype.str.lstrip("<>|=") in DTYPES:
            self.buffers.append(np.asarray(value).tobytes())
            return {"$ns": [value.dtype.str, len(self.buffers) - 1]}
        if isinstance(value, np.dtype) and value.str.lstrip("<>|=") in DTYPES:
            return {"$dt": value.str}
        if isinstance(value, type) and issubclass(value, np.generic) and np.dtype(value).str.lstrip("<>|=") in DTYPES:
            return {"$dtt": np.dtype(value).str}
        if kind is bytes:
            self.buffers.append(value)
            return {"$b": len(self.buffers) - 1}
        if kind is complex:
            return {"$c": [self.encode(value.real), self.encode(value.imag)]}
        if kind is tuple:
            return {"$t": [self.encode(v) for v in value]}
        if kind is list:
            return [self.encode(v) for v in value]
        if kind is dict:
            return {"$d": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        if kind is slice:
            return {"$sl": [self.encode(value.start), self.encode(value.stop), self.encode(value.step)]}
        if value is Ellipsis:
            return {"$el": 1}
        if isinstance(value, PurePath):
            return {"$path": str(value)}
        if kind is np.random.Generator and type(value.bit_generator).__name__ in BIT_GENERATORS:
            # a copy of the generator, state included: both sides draw the same numbers from here on
            state = value.bit_generator.state
            return {"$rng": [type(value.bit_generator).__name__, self.encode(state)]}
        if kind is not Ref:
            value = self.ref_of(value)
            if value is None:
                raise TypeError(f"a {kind.__name__} cannot cross to the other side (only plain data and references)")
        return {"$r": [value.id, value.type_id, value.kind]}


def _decode(node: Any, buffers: list[bytes], depth: int = 0) -> Any:
    if depth > 64:
        raise WireError("nested too deeply")
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, buffers, depth + 1) for v in node]
    if not isinstance(node, dict) or len(node) != 1:
        raise WireError("malformed value")
    (tag, body), = node.items()
    if tag == "$nd":
        dtype, shape, index = _dtype(body[0]), tuple(int(s) for s in body[1]), int(body[2])
        raw = buffers[index]
        if any(s < 0 for s in shape) or int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != len(raw):
            raise WireError("array shape does not match its bytes")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    if tag == "$ns":
        dtype, raw = _dtype(body[0]), buffers[int(body[1])]
        if len(raw) != dtype.itemsize:
            raise WireError("scalar size does not match its dtype")
        return np.frombuffer(raw, dtype=dtype)[0]
    if tag == "$dt":
        return _dtype(body)
    if tag == "$dtt":
        return _dtype(body).type
    if tag == "$b":
        return bytes(buffers[int(body)])
    if tag == "$int":
        return int(str(body)[:400])
    if tag == "$f":
        if body not in ("nan", "inf", "-inf"):
            raise WireError("bad special float")
        return float(body)
    if tag == "$c":
        return complex(float(_decode(body[0], buffers, depth + 1)), float(_decode(body[1], buffers, depth + 1)))
    if tag == "$t":
        return tuple(_decode(v, buffers, depth + 1) for v in body)
    if tag == "$d":
        out = {}
        for key, value in body:
            key = _decode(key, buffers, depth + 1)
            try:
                hash(key)
            except TypeError:
                raise WireError("unhashable dict key") from None
            out[key] = _decode(value, buffers, depth + 1)
        return out
    if tag == "$sl":
        return slice(*(_decode(v, buffers, depth + 1) for v in body))
    if tag == "$el":
        return Ellipsis
    if tag == "$path":
        return Path(str(body))
    if tag == "$rng":
        name, state = str(body[0]), _decode(body[1], buffers, depth + 1)
        if name not in BIT_GENERATORS or not isinstance(state, dict):
            raise WireError("bad random generator")
        bit_generator = getattr(np.random, name)()
        try:
            bit_generator.state = state
        except (TypeError, ValueError, KeyError):
            raise WireError("bad random generator state") from None
        return np.random.Generator(bit_generator)
    if tag == "$r":
        kind = str(body[2]) if len(body) > 2 else ""
        return Ref(int(body[0]), int(body[1]), kind if kind in REF_KINDS else "")
    raise WireError(f"unknown tag {tag!r}")


def dumps(message: Any, ref_of=lambda obj: None) -> bytes:
    encoder = _Encoder(ref_of)
    document = json.dumps(encoder.encode(message), separators=(",", ":")).encode()
    parts = [_HEADER.pack(len(document), len(encoder.buffers)), document]
    for buffer in encoder.buffers:
        parts += [struct.pack(">Q", len(buffer)), buffer]
    body = b"".join(parts)
    if len(body) > MAX_FRAME:
        raise WireError(f"message of {len(body)} bytes is over the {MAX_FRAME}-byte limit")
    return struct.pack(">Q", len(body)) + body


def loads(body: bytes) -> Any:
    """Decode one frame body (without its length prefix) into plain data."""
    try:
        json_len, count = _HEADER.unpack_from(body, 0)
        offset = _HEADER.size
        document = json.loads(body[offset:offset + json_len])
        offset += json_len
        buffers = []
        for _ in range(count):
            (size,) = struct.unpack_from(">Q", body, offset)
            offset += 8
            if offset + size > len(body):
                raise WireError("truncated buffer")
            buffers.append(body[offset:offset + size])
            offset += size
        return _decode(document, buffers)
    except WireError:
        raise
    except (struct.error, ValueError, TypeError, IndexError, KeyError, OverflowError) as err:
        raise WireError(f"malformed frame: {type(err).__name__}") from None


def _read_exactly(stream: BinaryIO, count: int) -> bytes:
    chunks, remaining = [], count
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def send(stream: BinaryIO, message: Any, ref_of=lambda obj: None) -> None:
    stream.write(dumps(message, ref_of))
    stream.flush()


def receive(stream: BinaryIO) -> Any:
    (size,) = struct.unpack(">Q", _read_exactly(stream, 8))
    if size > MAX_FRAME:
        raise WireError(f"frame of {size} bytes is over the {MAX_FRAME}-byte limit")
    return loads(_read_exactly(stream, size))
