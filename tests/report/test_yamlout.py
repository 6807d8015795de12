"""The YAML emitter behind ``--format policyreport``: whatever the text, a YAML 1.2 parser
(ruamel.yaml) and a YAML 1.1 parser (PyYAML, when installed) read back exactly what was
written, and plain scalars are used only where no parser could misread them."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from fleet.report import yamlout

try:
    import yaml as pyyaml
except ImportError:  # pragma: no cover - PyYAML is optional here
    pyyaml = None


def dumped(value: Any) -> str:
    buf = io.StringIO()
    yamlout.dump(value, buf)
    return buf.getvalue()


def parsers(text: str) -> list[Any]:
    out = [YAML(typ="safe", pure=True).load(text)]
    if pyyaml is not None:
        out.append(pyyaml.safe_load(text))
    return out


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(min_size=1, max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), json_values, min_size=1, max_size=5))
def test_any_json_document_round_trips(document: dict[str, Any]) -> None:
    text = dumped(document)
    for parsed in parsers(text):
        assert parsed == document, text


@pytest.mark.parametrize(
    "text",
    [
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "null",
        "~",
        "true",
        "1.17.3",
        "0x1f",
        "1e3",
        "-",
        "- x",
        ": x",
        "a: b",
        "#x",
        "x #y",
        "&a",
        "*a",
        "!tag",
        "%x",
        "@x",
        "`x",
        "'x'",
        '"x"',
        "[a]",
        "{a}",
        "",
        " lead",
        "trail ",
        "\ufeffbom",
        "a\u2028b",
        "a\x85b",
        "tab\there",
        "multi\nline",
        "\U0001f600",
        "\ud800",
        "</script>",
        "2026-11-25",
        "12:30",
        "00000000-0000-0000-0000-000000000001",
    ],
)
def test_tricky_scalars(text: str) -> None:
    for parsed in parsers(dumped({"k": text, text or "empty": [text]})):
        assert parsed == {"k": text, text or "empty": [text]}


def test_plain_only_when_unambiguous() -> None:
    assert yamlout.scalar("ClusterPolicyReport") == "ClusterPolicyReport"
    assert yamlout.scalar("wgpolicyk8s.io/v1alpha2") == "wgpolicyk8s.io/v1alpha2"
    assert yamlout.scalar("yes") == '"yes"'
    assert yamlout.scalar("1.17.3") == '"1.17.3"'
    assert dumped({"a": [], "b": {}, "c": [{"d": 1, "e": [True, None]}]}) == (
        "a: []\nb: {}\nc:\n- d: 1\n  e:\n  - true\n  - null\n"
    )
    with pytest.raises(TypeError):
        yamlout.scalar(object())
    with pytest.raises(ValueError):
        yamlout.scalar(float("nan"))
