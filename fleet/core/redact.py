"""A process-wide registry of secret values to mask wherever text leaves fleet.

fleet reads a secret only to send it to ARM (and to fingerprint it). At that moment the value is
registered here; logs (``fleet.core.logs``), error messages stored in the history database,
reports and task messages pass their text through ``text()``, which replaces every registered
value with ``***``. Short values (under 6 characters) are not registered: masking them would
mangle ordinary words, and such values are not credentials worth the name.

The registry is bounded (``MAX_VALUES``, least recently registered dropped first): a long-lived
worker resolves every secret again at each write, which re-registers it, so what falls out is a
value nobody has read for thousands of registrations (a secret rotated away long ago).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

MASK = "***"
_MIN_LEN = 6
#: How many values the registry keeps at most.
MAX_VALUES = 4096

_lock = threading.Lock()
_values: OrderedDict[str, None] = OrderedDict()
_pattern: re.Pattern[str] | None = None


def register(value: str) -> None:
    """Remember a secret value (and its stripped form) so that it is masked from now on."""
    global _pattern
    candidates = {value, value.strip()}
    with _lock:
        added = False
        for v in candidates:
            if len(v) < _MIN_LEN:
                continue
            if v in _values:
                _values.move_to_end(v)
                continue
            _values[v] = None
            added = True
        while len(_values) > MAX_VALUES:
            _values.popitem(last=False)
            added = True
        if added:
            # Longest first, so a value containing another is masked whole.
            ordered = sorted(_values, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(v) for v in ordered))


def size() -> int:
    """How many values are registered."""
    return len(_values)


def active() -> bool:
    return _pattern is not None


def text(value: str) -> str:
    """``value`` with every registered secret replaced by ``***``."""
    pattern = _pattern
    if pattern is None or not value:
        return value
    return pattern.sub(MASK, value)


def clear() -> None:
    """Forget every registered value (tests only)."""
    global _pattern
    with _lock:
        _values.clear()
        _pattern = None
