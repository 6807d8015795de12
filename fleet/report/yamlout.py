"""A small, fast YAML emitter for JSON-shaped data (the PolicyReport documents).

Why not ruamel.yaml's dumper: without its C extension it takes ~3 ms per PolicyReport, so
50,000 clusters took minutes. The documents here are plain JSON data (dicts with string keys,
lists, strings, integers, booleans, None), for which block-style YAML is simple to write
correctly:

- a string is written plain only when it is unambiguous in YAML 1.1 *and* 1.2 (starts with a
  letter, only ``[A-Za-z0-9_./-]``, not a boolean/null word); anything else is double-quoted
  with every character a YAML parser could misread escaped (control characters, C1, BOM,
  line and paragraph separators, lone surrogates), so the text comes back identical from any
  conforming parser (tests round-trip it through ruamel.yaml and PyYAML with random strings);
- numbers are only Python ints (and finite floats); anything else is a programming error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_./-]*")
#: Words YAML 1.1 reads as booleans or null (1.2 is a subset): never plain.
_RESERVED = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def _safe_char(ch: str) -> bool:
    code = ord(ch)
    if 0x20 <= code <= 0x7E:
        return ch not in '"\\'
    # Printable per YAML: not C0/DEL/C1, not the BOM, not U+2028/2029 (line breaks in 1.1),
    # not surrogates or the non-characters U+FFFE/U+FFFF.
    return (
        code >= 0xA0
        and code not in (0xFEFF, 0x2028, 0x2029, 0xFFFE, 0xFFFF)
        and not 0xD800 <= code <= 0xDFFF
    )


def quote(text: str) -> str:
    """``text`` as a YAML double-quoted scalar."""
    if all(_safe_char(ch) for ch in text):
        return f'"{text}"'
    out = []
    for ch in text:
        if _safe_char(ch):
            out.append(ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        return repr(value)
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and value.lower() not in _RESERVED:
            return value
        return quote(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _emit(value: Any, indent: str, out: list[str]) -> None:
    """Write a non-empty mapping or sequence whose first line continues the current one."""
    if isinstance(value, Mapping):
        first = True
        for key, item in value.items():
            prefix = "" if first else indent
            first = False
            _entry(f"{prefix}{scalar(str(key))}:", item, indent, out)
    else:
        first = True
        for item in value:
            prefix = "" if first else indent
            first = False
            if _nested(item):
                out.append(f"{prefix}- ")
                _emit(item, indent + "  ", out)
            else:
                out.append(f"{prefix}- {_flow(item)}\n")


def _nested(value: Any) -> bool:
    return isinstance(value, (Mapping, list, tuple)) and len(value) > 0


def _flow(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, (list, tuple)):
        return "[]"
    return scalar(value)


def _entry(head: str, item: Any, indent: str, out: list[str]) -> None:
    if not _nested(item):
        out.append(f"{head} {_flow(item)}\n")
    elif isinstance(item, Mapping):
        out.append(f"{head}\n{indent}  ")
        _emit(item, indent + "  ", out)
    else:
        # Sequences in a mapping: "- " at the key's indentation (kubectl's own style).
        out.append(f"{head}\n{indent}")
        _emit(item, indent, out)


def dump(document: Mapping[str, Any] | Sequence[Any], out: TextIO) -> None:
    """Write one document (block style, no leading ``---``)."""
    if not _nested(document):
        out.write(_flow(document) + "\n")
        return
    parts: list[str] = []
    _emit(document, "", parts)
    out.write("".join(parts))
