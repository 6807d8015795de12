"""The JSON-pointer diff: unit cases and hypothesis invariants."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.core.diffing import (
    Difference,
    diff,
    escape,
    is_under,
    overlaps,
    pointer,
    resolve,
    split_pointer,
    unescape,
)

_MISSING = object()


def test_escaping_follows_rfc6901() -> None:
    assert escape("a/b~c") == "a~1b~0c"
    assert unescape("a~1b~0c") == "a/b~c"
    # "~1" literally in a key must survive a round trip (escape ~ first, unescape it last).
    assert unescape(escape("~1")) == "~1"
    assert pointer("properties", "configurationSettings", "a/b") == (
        "/properties/configurationSettings/a~1b"
    )
    assert split_pointer("/x/a~1b/~0") == ["x", "a/b", "~"]
    assert split_pointer("") == []


def test_nested_difference_and_one_sided_keys() -> None:
    desired = {"properties": {"git": {"branch": "main", "url": "u"}, "only": 1}}
    actual = {"properties": {"git": {"branch": "dev", "url": "u"}, "extra": [1]}}
    assert diff(desired, actual) == [
        Difference("/properties/extra", None, [1]),
        Difference("/properties/git/branch", "main", "dev"),
        Difference("/properties/only", 1, None),
    ]


def test_lists_are_compared_whole_and_base_prefixes_paths() -> None:
    assert diff({"l": [1, 2]}, {"l": [2, 1]}, base="/properties") == [
        Difference("/properties/l", [1, 2], [2, 1])
    ]
    assert diff({"a": 1}, {"a": 1}) == []


def test_type_mismatch_is_one_difference_at_that_path() -> None:
    assert diff({"k": {"a": 1}}, {"k": "garbage"}) == [Difference("/k", {"a": 1}, "garbage")]
    assert diff("x", None) == [Difference("", "x", None)]


def test_key_with_null_value_differs_from_absent_key() -> None:
    # diff(a, b) == [] exactly when a == b; {"x": None} != {}.
    assert diff({"x": None}, {}) == [Difference("/x", None, None)]


def test_pointer_helpers() -> None:
    doc = {"a": {"b/c": {"d": 1}}}
    assert resolve(doc, "/a/b~1c/d") == 1
    assert resolve(doc, "/a/nope", "default") == "default"
    assert resolve(doc, "") is doc
    assert is_under("/a/b", "/a") and is_under("/a", "/a") and not is_under("/ab", "/a")
    assert overlaps("/a", "/a/b") and overlaps("/a/b", "/a") and not overlaps("/a/b", "/a/c")


# --- properties --------------------------------------------------------------------------

_keys = st.text(alphabet="ab/~.x", min_size=0, max_size=4)
_scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.text(alphabet="xyz", max_size=2)
_json: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)
_docs = st.dictionaries(_keys, _json, max_size=5)


def _lookup(doc: Any, path: str) -> Any:
    node = doc
    for token in split_pointer(path):
        if not isinstance(node, dict) or token not in node:
            return _MISSING
        node = node[token]
    return node


@settings(max_examples=150, deadline=None)
@given(_docs)
def test_diff_of_a_value_with_itself_is_empty(a: dict[str, Any]) -> None:
    assert diff(a, a) == []


@settings(max_examples=150, deadline=None)
@given(_docs, _docs)
def test_diff_is_empty_exactly_when_equal(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert (diff(a, b) == []) == (a == b)


@settings(max_examples=150, deadline=None)
@given(_docs, _docs)
def test_paths_are_unique_and_resolve(a: dict[str, Any], b: dict[str, Any]) -> None:
    found = diff(a, b)
    paths = [d.path for d in found]
    assert len(paths) == len(set(paths))
    for d in found:
        in_a, in_b = _lookup(a, d.path), _lookup(b, d.path)
        assert in_a is not _MISSING or in_b is not _MISSING
        # The reported values are what the documents hold there (None when absent).
        assert d.desired == (None if in_a is _MISSING else in_a)
        assert d.actual == (None if in_b is _MISSING else in_b)
        assert in_a != in_b


@settings(max_examples=150, deadline=None)
@given(_docs, _docs)
def test_diff_is_symmetric_in_paths(a: dict[str, Any], b: dict[str, Any]) -> None:
    forward = diff(a, b)
    backward = diff(b, a)
    assert [d.path for d in forward] == [d.path for d in backward]
    assert [(d.desired, d.actual) for d in forward] == [(d.actual, d.desired) for d in backward]


@settings(max_examples=100, deadline=None)
@given(_docs, _docs)
def test_diff_is_deterministic_and_sorted_per_level(a: dict[str, Any], b: dict[str, Any]) -> None:
    first = diff(a, b)
    assert first == diff(dict(reversed(list(a.items()))), dict(reversed(list(b.items()))))
    top = [split_pointer(d.path)[0] for d in first]
    assert top == sorted(top)
