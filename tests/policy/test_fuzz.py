"""Fuzzing the loader: whatever the input, it loads or raises PolicyLoadError whose issues
name the file and a line, one line each; never another exception, never a traceback."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from fleet.core.errors import PolicyLoadError
from fleet.policy.loading import PolicySet, load, load_text
from tests.policy.helpers import TODAY, VALID

FILE = "fuzz.yaml"

text_st = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    text_st,
    st.sampled_from(
        [
            "fleet/v1",
            "FluxPolicy",
            "enforce",
            "*",
            "rg-[",
            "5%",
            "0 */6 * * *",
            "2027-01-31",
            "GitRepository",
            "https://example.com/x.git",
        ]
    ),
)
keys = st.one_of(
    text_st,
    st.sampled_from(
        [
            "apiVersion",
            "kind",
            "metadata",
            "spec",
            "name",
            "targets",
            "extension",
            "fluxConfigurations",
            "kustomizations",
            "dependsOn",
            "gitRepository",
            "configurationProtectedSettings",
            "fromEnv",
            "waves",
            "percent",
        ]
    ),
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)
    ),
    max_leaves=25,
)


def check(load_it: Any, file: str = FILE) -> None:
    try:
        result = load_it()
    except PolicyLoadError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.file == file
            assert issue.line >= 1, str(issue)
            assert "\n" not in str(issue)
            assert issue.message
        return
    assert isinstance(result, PolicySet)


def dump(value: Any) -> str:
    stream = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.dump(value, stream)
    return stream.getvalue()


@settings(max_examples=200, deadline=None)
@given(trees)
def test_random_structures(tree: Any) -> None:
    check(lambda: load_text(dump(tree), file=FILE, today=TODAY))


@settings(max_examples=100, deadline=None)
@given(st.lists(trees, min_size=1, max_size=3))
def test_random_multi_document_json(documents: list[Any]) -> None:
    # JSON is YAML too, and flow style exercises other parser paths.
    text = "\n---\n".join(json.dumps(d, ensure_ascii=False) for d in documents)
    check(lambda: load_text(text, file=FILE, today=TODAY))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


BASE = YAML(typ="safe", pure=True).load(VALID)
BASE_PATHS = _paths(BASE)[1:]


def _replace(tree: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(tree, dict):
        return {k: (_replace(v, rest, value) if k == head else v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [(_replace(v, rest, value) if i == head else v) for i, v in enumerate(tree)]
    return tree  # an earlier change replaced the container: nothing left to change here


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(BASE_PATHS), trees), min_size=1, max_size=3))
def test_valid_policy_with_random_parts_replaced(
    changes: list[tuple[tuple[Any, ...], Any]],
) -> None:
    tree = BASE
    for path, value in changes:
        tree = _replace(tree, path, value)
    check(lambda: load_text(dump(tree), file=FILE, today=TODAY))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    check(lambda: load_text(text, file=FILE, today=TODAY))


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, len(VALID)), st.text(st.sampled_from("[]{}:-,&*!|>'\"#%@`\t\n ?"), max_size=8)
)
def test_valid_policy_with_yaml_punctuation_inserted(at: int, noise: str) -> None:
    check(lambda: load_text(VALID[:at] + noise + VALID[at:], file=FILE, today=TODAY))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_random_bytes_in_a_file(tmp_path: Path, data: bytes) -> None:
    file = tmp_path / "fuzz.yaml"
    file.write_bytes(data)
    check(lambda: load([file], today=TODAY), file=str(file))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 400), st.sampled_from(["[", "{a: ", "- ", "a:\n  "]))
def test_deep_nesting(depth: int, opener: str) -> None:
    closer = {"[": "]", "{a: ": "}"}.get(opener, "")
    check(lambda: load_text(opener * depth + "x" + closer * depth, file=FILE, today=TODAY))
