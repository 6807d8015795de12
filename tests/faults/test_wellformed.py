"""Malformed ARM answers are read errors, never verdicts (``fleet.observe.wellformed``).

Judged as it seems, an extension list whose items lost their ``properties`` (or carry
``null``s or wrong types) would read as "no Flux extension" (``EXTENSION_MISSING``, and
remediation would install one over the existing one). Such a cluster is ``READ_ERROR`` with the
reason, and remediation leaves it for a retry. An enum value fleet does not know is novelty, not
damage: it is an ``UNRECOGNISED_SHAPE`` note and the cluster is judged (issue 13, item 5;
tests/faults/test_unknown_shapes.py).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from fleet.core.vocabulary import Code, State
from fleet.emulator.faults import malform
from fleet.evaluate.evaluate import evaluate
from fleet.observe.observed import ObservedCluster
from fleet.observe.wellformed import checked, problems
from fleet.plan.planning import plan
from tests.engine import fixtures as fx

F = fx.aks()


def observed(**parts: Any) -> ObservedCluster:
    return ObservedCluster(
        facts=parts.pop("facts", F),
        extensions=parts.pop("extensions", (fx.extension_json(F.id),)),
        flux_configurations=parts.pop("flux", (fx.flux_json(F.id, fx.CLUSTER_CONFIG),)),
        **parts,
    )


def damaged(resource: dict[str, Any], mode: str) -> dict[str, Any]:
    """The resource as the emulator's ``malformed`` fault would serve it."""
    page = orjson.loads(malform(orjson.dumps({"value": [resource]}), mode))
    item: dict[str, Any] = page["value"][0]
    return item


def test_a_well_formed_observation_passes() -> None:
    good = observed()
    assert problems(good) == []
    assert checked(good) is good
    result = fx.judged(good, fx.baseline(), fx.cluster_config())
    assert result.verdict.state == State.COMPLIANT


@pytest.mark.parametrize("mode", ["missing_fields", "nulls", "wrong_types"])
@pytest.mark.parametrize("which", ["extension", "flux"])
def test_a_damaged_child_makes_the_cluster_a_read_error(mode: str, which: str) -> None:
    parts: dict[str, Any] = {}
    if which == "extension":
        parts["extensions"] = (damaged(fx.extension_json(F.id), mode),)
    else:
        parts["flux"] = (damaged(fx.flux_json(F.id, fx.CLUSTER_CONFIG), mode),)
    bad = observed(**parts)
    result = fx.judged(bad, fx.baseline(), fx.cluster_config())
    assert result.verdict.state == State.ERROR
    codes = {f.code for f in result.verdict.findings}
    assert codes == {Code.READ_ERROR}
    message = result.verdict.findings[0].message
    assert "malformed ARM response" in message and (
        "extensions[0]" in message or "fluxConfigurations[0]" in message
    )
    # nothing is planned for it: remediation lists it for retry instead of writing
    assert result.plan.actions == []
    # evaluate and plan on their own agree with judge
    alone = evaluate(bad, result.desired, catalog=fx.CATALOG, now=fx.NOW)
    assert alone.to_report() == result.verdict.to_report()
    assert plan(bad, result.desired, alone) == result.plan


def test_missing_properties_never_look_like_a_missing_extension() -> None:
    """A damaged list is not read as an empty one (no EXTENSION_MISSING over a real one)."""
    bad = observed(extensions=(damaged(fx.extension_json(F.id), "missing_fields"),))
    result = fx.judged(bad, fx.baseline())
    assert Code.EXTENSION_MISSING not in {f.code for f in result.verdict.findings}


@pytest.mark.parametrize("value", ["Accepted", "Running", "succeeded", "DELETING"])
def test_documented_states_in_any_case_are_well_formed(value: str) -> None:
    ext = fx.extension_json(F.id)
    ext["properties"]["provisioningState"] = value
    assert problems(observed(extensions=(ext,))) == []


@pytest.mark.parametrize("which", ["extension", "flux"])
def test_unknown_enum_values_are_notes_and_the_cluster_is_judged(which: str) -> None:
    parts: dict[str, Any] = {}
    if which == "extension":
        parts["extensions"] = (damaged(fx.extension_json(F.id), "unknown_enum"),)
    else:
        parts["flux"] = (damaged(fx.flux_json(F.id, fx.CLUSTER_CONFIG), "unknown_enum"),)
    odd = observed(**parts)
    assert problems(odd) == []
    result = fx.judged(odd, fx.baseline(), fx.cluster_config())
    assert result.verdict.state == State.COMPLIANT
    notes = [f for f in result.verdict.findings if f.code is Code.UNRECOGNISED_SHAPE]
    assert notes and {f.code for f in result.verdict.findings} == {Code.UNRECOGNISED_SHAPE}
    assert all(f.severity == "info" and f.policy is None for f in notes)
    assert any("provisioningState" in f.message and "does not know" in f.message for f in notes)
    assert result.plan.actions == []


def test_unknown_cluster_states_are_notes_not_damage() -> None:
    assert problems(observed(facts=fx.aks(power="Hibernating"))) == []
    result = fx.judged(
        observed(facts=fx.aks(power="Hibernating")), fx.baseline(), fx.cluster_config()
    )
    assert result.verdict.state == State.COMPLIANT
    [note] = result.verdict.findings
    assert note.code is Code.UNRECOGNISED_SHAPE and "'Hibernating'" in note.message
    assert problems(observed(facts=fx.arc(status="Zombie"), extensions=(), flux=())) == []
    assert problems(observed(facts=fx.arc(status="Offline"), extensions=(), flux=())) == []


def test_children_that_are_not_objects_and_bad_kustomizations() -> None:
    config = fx.flux_json(F.id, fx.CLUSTER_CONFIG)
    config["properties"]["kustomizations"] = {"infra": "./infrastructure"}
    found = problems(observed(extensions=(None,), flux=(config,)))
    assert found == [
        "extensions[0] is null, not a resource",
        "fluxConfigurations[0].properties.kustomizations.infra is a string",
    ]


def test_the_reason_is_bounded() -> None:
    many = tuple(damaged(fx.extension_json(F.id), "wrong_types") for _ in range(10))
    result = checked(observed(extensions=many))
    assert result.read_error is not None
    assert result.read_error.startswith("malformed ARM response: ")
    assert "more)" in result.read_error and len(result.read_error) < 400
