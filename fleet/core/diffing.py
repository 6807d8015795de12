"""Structural diff of two JSON-like values, reported as JSON pointers (RFC 6901).

Evaluation compares the *essence* of a desired body with the essence of what ARM returned
(``fleet.observe.essence``); this module only says where two such values differ. Mappings are
walked key by key; every other value, lists included, is compared as a whole, because a list
in an ARM body (``dependsOn``, ``substituteFrom``) is replaced as a whole by a PUT, so a
partial list diff would describe a change nobody can make. Essence normalisation decides when
order does not matter (``dependsOn`` is sorted there, not here).

The output is deterministic (keys in sorted order) so that reports and plans are stable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

#: ``isinstance(x, MAPPING)`` is a fast exact check for the dicts JSON parses to (an ABC check
#: costs ~8x more) and still accepts any other Mapping. Used by every module of the engine.
MAPPING = (dict, Mapping)
_MAP = MAPPING


class Difference(NamedTuple):
    """One place where two values differ.

    ``path`` is a JSON pointer relative to the compared roots (``""`` is the root itself).
    A key present on only one side is reported with ``None`` on the other side.
    """

    path: str
    desired: Any
    actual: Any


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-like data (mappings, lists, scalars), several times faster than
    ``copy.deepcopy``. The engine hands out copies wherever a value would otherwise be shared
    with the cached desired state or the observation (finding values, plan bodies)."""
    if isinstance(value, MAPPING):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [copy_json(v) for v in value]
    return value


def escape(token: object) -> str:
    """Escape one reference token (RFC 6901: ``~`` -> ``~0``, then ``/`` -> ``~1``)."""
    text = token if isinstance(token, str) else str(token)
    if "~" in text or "/" in text:
        return text.replace("~", "~0").replace("/", "~1")
    return text


def unescape(token: str) -> str:
    """Inverse of :func:`escape`."""
    return token.replace("~1", "/").replace("~0", "~")


def pointer(*tokens: object) -> str:
    """Build a JSON pointer from unescaped tokens: ``pointer("a/b", "c") == "/a~1b/c"``."""
    return "".join("/" + escape(t) for t in tokens)


def split_pointer(path: str) -> list[str]:
    """The unescaped tokens of a JSON pointer (``""`` -> ``[]``)."""
    if not path:
        return []
    if not path.startswith("/"):
        raise ValueError(f"not a JSON pointer: {path!r}")
    return [unescape(t) for t in path[1:].split("/")]


_MISSING = object()


def resolve(document: Any, path: str, default: Any = None) -> Any:
    """The value at ``path`` in ``document`` (mappings only), or ``default`` when absent."""
    node = document
    for token in split_pointer(path):
        if not isinstance(node, _MAP):
            return default
        value = node.get(token, _MISSING)
        if value is _MISSING:
            # Keys that are not strings (only in hand-made data) are found by their text.
            value = next((v for k, v in node.items() if str(k) == token), _MISSING)
            if value is _MISSING:
                return default
        node = value
    return node


def is_under(path: str, prefix: str) -> bool:
    """True when ``path`` equals ``prefix`` or lies inside it (token-wise, not string-wise)."""
    return path == prefix or path.startswith(prefix + "/") or prefix == ""


def overlaps(path: str, prefix: str) -> bool:
    """True when one of two pointers contains the other (a change at one touches the other)."""
    return is_under(path, prefix) or is_under(prefix, path)


def _sort_key(key: object) -> tuple[int, str]:
    # Strings first, in their natural order; anything else (hand-made data only) by its text,
    # so that mixed key types never make sorting raise.
    return (0, key) if isinstance(key, str) else (1, str(key))


def diff(desired: Any, actual: Any, *, base: str = "") -> list[Difference]:
    """Every place where ``desired`` and ``actual`` differ, as :class:`Difference` items.

    ``diff(a, b) == []`` exactly when ``a == b``. Paths are unique, sorted by key at each level,
    and prefixed with ``base`` (an already escaped JSON pointer).
    """
    if desired == actual:
        return []
    out: list[Difference] = []
    _walk(desired, actual, base, out)
    return out


def _walk(desired: Any, actual: Any, path: str, out: list[Difference]) -> None:
    if not (isinstance(desired, _MAP) and isinstance(actual, _MAP)):
        out.append(Difference(path, desired, actual))
        return
    keys = set(desired)
    keys.update(actual)
    for key in sorted(keys, key=_sort_key):
        child = path + "/" + escape(key)
        d = desired.get(key, _MISSING)
        a = actual.get(key, _MISSING)
        if d is _MISSING:
            out.append(Difference(child, None, a))
        elif a is _MISSING:
            out.append(Difference(child, d, None))
        elif d == a:
            continue
        elif isinstance(d, _MAP) and isinstance(a, _MAP):
            _walk(d, a, child, out)
        else:
            out.append(Difference(child, d, a))
