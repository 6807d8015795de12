"""Fuzzing the policy loader where tests/policy/test_fuzz.py does not reach: YAML escapes in
double-quoted scalars and keys (``\\u``, ``\\U``, ``\\x``, ``\\0``, ``\\N``, lone surrogates),
which produce characters no plain text generator does.

A lone surrogate such as ``"\\ud800"`` must not pass validation (it cannot be hashed into the
policy revision): it is a ``FILE:LINE: path: not valid Unicode`` issue.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.core.errors import PolicyLoadError
from fleet.policy.loading import PolicySet, load_text
from tests.fuzz import EXAMPLES
from tests.policy.helpers import TODAY, VALID

FILE = "fuzz.yaml"

escapes = st.one_of(
    st.integers(0, 0x10FFFF).map(lambda c: f"\\U{c:08x}"),
    st.integers(0, 0xFFFF).map(lambda c: f"\\u{c:04x}"),
    st.integers(0, 0xFF).map(lambda c: f"\\x{c:02x}"),
    st.sampled_from(
        [
            "\\0",
            "\\a",
            "\\b",
            "\\t",
            "\\n",
            "\\e",
            "\\N",
            "\\_",
            "\\L",
            "\\P",
            "\\\\",
            '\\"',
            "\\/",
            "\\ ",
            "\\ud800",
            "\\udfff",
            "\\q",
        ]
    ),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters='"\\'), max_size=3),
)
quoted = st.lists(escapes, max_size=6).map(lambda parts: '"' + "".join(parts) + '"')

#: Places in VALID a double-quoted scalar or key may go (the text they replace).
PLACES = ["test policy", "rg-prod-*", "aks-legacy-*", "platform", "prod", "env"]


def check(text: str) -> None:
    try:
        result = load_text(text, file=FILE, today=TODAY)
    except PolicyLoadError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.file == FILE and issue.line >= 1, str(issue)
            assert "\n" not in str(issue)
        return
    assert isinstance(result, PolicySet)
    json.dumps([p.model_dump(mode="json") for p in result.policies]).encode("utf-8")
    result.revision.encode()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PLACES), quoted)
def test_double_quoted_escapes_anywhere(place: str, value: str) -> None:
    check(
        VALID.replace(place, value, 1)
        if place != "test policy"
        else VALID.replace("description: test policy", f"description: {value}", 1)
    )


def test_a_lone_surrogate_escape_is_an_issue_not_a_traceback() -> None:
    text = VALID.replace("description: test policy", 'description: "\\ud800"', 1)
    try:
        load_text(text, file=FILE, today=TODAY)
    except PolicyLoadError as exc:
        assert [str(i) for i in exc.issues] == [
            f"{FILE}:5: metadata.description: not valid Unicode (a lone surrogate escape, "
            "\\uD800-\\uDFFF)"
        ]
    else:
        raise AssertionError("loaded a policy holding a lone surrogate")
    key = VALID.replace("tags: {env: prod}", 'tags: {"\\udfff": prod}', 1)
    try:
        load_text(key, file=FILE, today=TODAY)
    except PolicyLoadError as exc:
        assert any("not valid Unicode" in str(i) for i in exc.issues)
    else:
        raise AssertionError("loaded a policy with a lone surrogate key")
