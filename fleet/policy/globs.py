"""Shell-style globs for names, resource groups, tag values and exemption ids.

``*`` matches any run of characters, ``?`` one character, ``[abc]``/``[a-z]``/``[!abc]`` a set.
Matching is case-insensitive (ARM names are). Globs are compiled once and cached; ``check``
rejects malformed ones at policy load time so that a typo never silently matches nothing.
"""

from __future__ import annotations

import re
from functools import lru_cache

_META = set("*?[")


class GlobError(ValueError):
    """A malformed glob."""


def is_glob(pattern: str) -> bool:
    return any(c in _META for c in pattern)


@lru_cache(maxsize=4096)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """Translate a glob to an anchored, case-insensitive regex (raises GlobError)."""
    if not pattern:
        raise GlobError("an empty pattern matches nothing")
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = pattern.find("]", i + 2 if i + 1 < n and pattern[i + 1] in "!^" else i + 1)
            if j < 0:
                raise GlobError(f"unclosed '[' at position {i + 1} in {pattern!r}")
            body = pattern[i + 1 : j]
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            if not body:
                raise GlobError(f"empty character set at position {i + 1} in {pattern!r}")
            for a, b in re.findall(r"(.)-(.)", body):
                if a > b:
                    raise GlobError(f"bad range {a}-{b} in {pattern!r}")
            escaped = body.replace("\\", "\\\\").replace("]", "\\]")
            out.append(f"[{'^' if negate else ''}{escaped}]")
            i = j
        elif c == "]":
            raise GlobError(f"unmatched ']' at position {i + 1} in {pattern!r}")
        elif ord(c) < 32:
            raise GlobError(f"control character at position {i + 1} in {pattern!r}")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def check(pattern: str) -> None:
    """Raise ValueError (with a readable message) when ``pattern`` is not a valid glob."""
    try:
        compile_glob(pattern)
    except GlobError as exc:
        raise ValueError(f"invalid glob: {exc}") from None


def match(pattern: str, value: str) -> bool:
    """True when ``value`` matches ``pattern`` (case-insensitive, whole string)."""
    if not is_glob(pattern):
        return pattern.lower() == value.lower()
    return compile_glob(pattern).fullmatch(value) is not None
