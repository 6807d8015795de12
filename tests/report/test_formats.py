"""Every report format rendered from a recorded sweep that holds every state and finding code,
and checked with the consumer's own tools: json, csv (the csv module), Markdown, PolicyReport
(the published CRD schema), JUnit (junitparser), Prometheus (prometheus_client's parser)."""

from __future__ import annotations

import copy
import csv
import html
import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from junitparser import Error, Failure, JUnitXml, Skipped
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from fleet.core.vocabulary import Code, State
from fleet.report.common import Context
from fleet.report.policyreport import object_name
from fleet.report.render import FORMATS, render, render_text
from fleet.report.tabular import COLUMNS
from tests.report.conftest import NOW, Recorded
from tests.report.sample import HOSTILE, SWEEP_IDS

#: The published wgpolicyk8s.io CRDs, vendored in the repository (a copy of the reference set).
CRD_DIR = Path(__file__).resolve().parents[1] / "policyreport-crd"


def clusters_by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["clusters"]}


def test_the_sample_covers_every_state_and_code(recorded: Recorded) -> None:
    clusters = recorded.report["clusters"]
    assert {c["state"] for c in clusters} == {s.value for s in State}
    assert {f["code"] for c in clusters for f in c["findings"]} == {c.value for c in Code}
    assert len(clusters) == 30


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_streams_from_a_one_pass_iterator(recorded: Recorded, fmt: str) -> None:
    """``fleet report`` hands renderers a database cursor: one pass, no len(), no indexing."""
    as_list = render_text(fmt, recorded.report, recorded.context)
    streamed = {**recorded.report, "clusters": iter(recorded.report["clusters"])}
    assert render_text(fmt, streamed, recorded.context) == as_list
    assert as_list.strip()


# --- json --------------------------------------------------------------------------------


def test_json_is_the_report_as_recorded(recorded: Recorded) -> None:
    text = render_text("json", recorded.report)
    assert json.loads(text) == recorded.report
    assert text == json.dumps(recorded.report, indent=2, ensure_ascii=False) + "\n"
    empty = {**recorded.report, "clusters": []}
    assert json.loads(render_text("json", empty)) == empty


# --- csv ---------------------------------------------------------------------------------


def test_csv_one_row_per_cluster_and_finding(recorded: Recorded) -> None:
    rows = list(csv.DictReader(io.StringIO(render_text("csv", recorded.report))))
    clusters = recorded.report["clusters"]
    assert list(rows[0]) == list(COLUMNS)
    assert len(rows) == sum(max(1, len(c["findings"])) for c in clusters)
    healthy = [r for r in rows if r["cluster_name"] == "aks-006"]
    assert (
        len(healthy) == 1
        and healthy[0]["finding_code"] == ""
        and healthy[0]["cluster_state"] == "compliant"
    )
    drift = [r for r in rows if r["cluster_name"] == "aks-cfg-drift"]
    assert [r["finding_path"] for r in drift] == [
        "/properties/gitRepository/repositoryRef/branch",
        "/properties/kustomizations/apps/path",
    ]
    assert json.loads(drift[1]["finding_actual"]) == "./apps/staging </script><b>x</b>"
    assert json.loads(drift[0]["finding_desired"]) == "main"  # JSON: strings keep their quotes
    prune = next(r for r in rows if r["finding_path"] == "/properties/kustomizations/infra/prune")
    assert (prune["finding_desired"], prune["finding_actual"]) == ("true", "false")
    ungoverned = next(r for r in rows if r["cluster_name"] == "aks-unmanaged-ungoverned")
    assert ungoverned["finding_counts"] == "false" and ungoverned["finding_policy"] == ""
    assert {r["cluster_state"] for r in rows} == {s.value for s in State}


def test_csv_quotes_and_defuses_formulas(recorded: Recorded) -> None:
    report = copy.deepcopy(recorded.report)
    victim = report["clusters"][0]
    victim["findings"] = [
        {
            "code": "FLUX_CONFIG_DRIFT",
            "policy": '=HYPERLINK("http://evil")',
            "resource": victim["id"],
            "path": "/p",
            "desired": -1,
            "actual": "-x",
            "message": HOSTILE,
            "severity": "medium",
        }
    ]
    row = next(
        r for r in csv.DictReader(io.StringIO(render_text("csv", report))) if r["finding_code"]
    )
    assert row["finding_message"] == HOSTILE  # commas, quotes, newlines survive the round trip
    assert row["finding_policy"] == '\'=HYPERLINK("http://evil")'
    assert row["finding_desired"] == "-1"  # a negative number is not a formula
    assert row["finding_actual"] == '"-x"'


# --- markdown ----------------------------------------------------------------------------


def test_markdown_has_every_section(recorded: Recorded) -> None:
    md = render_text("md", recorded.report, recorded.context)
    assert md.startswith("# Fleet compliance: 50.0%")
    for heading in (
        "## States",
        "## What changed",
        "### New findings",
        "### Fixed",
        "### New clusters",
        "### Gone clusters",
        "### State changes",
        "## Top findings",
        "## Extension versions (N-2 window)",
        "## Policies",
        "## Subscriptions",
        "## Worst clusters",
    ):
        assert f"\n{heading}\n" in md, heading
    assert "+5.6 points since" in md
    assert "| ✗ noncompliant | 12 | 40.0% |" in md
    assert "| `1.15.2` | 1 | out of window |" in md
    assert "### aks-read-error — ! error" in md  # the worst cluster comes first
    assert (
        md.index("### aks-read-error")
        < md.index("### aks-conflict")
        < md.index("### aks-cfg-drift")
    )
    assert "**1** new findings, **1** fixed, **2** new clusters, **1** gone" in md
    for code in Code:
        assert f"`{code.value}`" in md


def test_markdown_escapes_everything_from_the_fleet(recorded: Recorded) -> None:
    md = render_text("md", recorded.report, recorded.context)
    outside_code = re.sub(r"(`+)(?:(?!\1).)*?\1", "", md)
    outside_code = re.sub(r"^> ", "", outside_code, flags=re.M)  # our own blockquotes
    assert "<" not in outside_code and ">" not in outside_code
    # Table rows keep their column count whatever the cells hold.
    for table in re.findall(r"(?:^\|.*\|\n)+", md, flags=re.M):
        lines = table.splitlines()
        widths = {len(re.findall(r"(?<!\\)\|", line)) for line in lines}
        assert len(widths) == 1, lines


def test_markdown_without_history(recorded: Recorded) -> None:
    md = render_text("md", recorded.report)
    assert "No earlier sweep to compare with." in md


# --- PolicyReport ------------------------------------------------------------------------


def _crd_schema(kind_file: str, version: str) -> dict[str, Any]:
    path = CRD_DIR / kind_file
    crd = YAML(typ="safe", pure=True).load(path.read_text())
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return dict(v["schema"]["openAPIV3Schema"])
    raise AssertionError(f"{version} not in {path}")


def _strict(schema: Any) -> Any:
    """The schema as the API server applies it: unknown fields are pruned, so a field the CRD
    does not declare would be silently lost. Refuse them instead."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def crd_schemas() -> dict[str, dict[str, Any]]:
    if not CRD_DIR.exists():
        pytest.fail(f"the published PolicyReport CRDs are expected in {CRD_DIR}")
    return {
        "ClusterPolicyReport": _strict(
            _crd_schema("wgpolicyk8s.io_clusterpolicyreports.yaml", "v1alpha2")
        ),
        "PolicyReport": _strict(_crd_schema("wgpolicyk8s.io_policyreports.yaml", "v1alpha2")),
    }


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in YAML(typ="safe", pure=True).load_all(text) if d is not None]


def test_policyreports_validate_against_the_published_crd(
    recorded: Recorded, crd_schemas: dict[str, Any]
) -> None:
    for namespace in (None, "fleet-reports"):
        ctx = Context(now=NOW, policyreport_namespace=namespace)
        docs = _docs(render_text("policyreport", recorded.report, ctx))
        assert len(docs) == len(recorded.report["clusters"])
        for doc in docs:
            assert doc["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
            jsonschema.validate(doc, crd_schemas[doc["kind"]])
            assert doc["kind"] == ("PolicyReport" if namespace else "ClusterPolicyReport")
            assert doc["metadata"].get("namespace") == namespace
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
            assert len(doc["metadata"]["name"]) <= 63
            assert all(r["source"] == "fleet" for r in doc["results"])
            assert doc["summary"] == dict(
                Counter(r["result"] for r in doc["results"])
                | {
                    k: 0
                    for k in ("pass", "fail", "warn", "error", "skip")
                    if k not in {r["result"] for r in doc["results"]}
                }
            )
        assert len({d["metadata"]["name"] for d in docs}) == len(docs)


def test_policyreport_result_mapping(recorded: Recorded) -> None:
    docs = {d["scope"]["name"]: d for d in _docs(render_text("policyreport", recorded.report))}

    def results(name: str) -> list[tuple[str, str, str]]:
        return sorted((r["policy"], r["rule"], r["result"]) for r in docs[name]["results"])

    assert results("aks-006") == [("platform-baseline", "compliance", "pass")]
    assert results("aks-cfg-drift") == [("platform-baseline", "FLUX_CONFIG_DRIFT", "fail")] * 2
    assert results("aks-conflict") == [
        ("platform-baseline", "POLICY_CONFLICT", "fail"),
        ("team-apps", "POLICY_CONFLICT", "fail"),
    ]
    assert results("aks-read-error") == [("platform-baseline", "READ_ERROR", "error")]
    assert results("aks-stopped") == [("platform-baseline", "CLUSTER_STOPPED", "skip")]
    assert results("arc-offline") == [
        ("platform-baseline", "CLUSTER_UNREACHABLE", "skip"),
        ("platform-baseline", "FLUX_CONFIG_DRIFT", "warn"),
        ("platform-baseline", "FLUX_STATUS_STALE", "skip"),  # state unknown: skip
    ]
    assert results("aks-lab") == [("platform-baseline", "exemption", "skip")]
    assert results("aks-unmanaged-ungoverned") == [
        ("(unowned)", "FLUX_CONFIG_UNMANAGED", "warn"),
        ("platform-baseline", "compliance", "pass"),
    ]
    assert results("aks-two-policies") == [
        ("platform-baseline", "EXTENSION_DRIFT", "fail"),
        ("platform-baseline", "FLUX_CONFIG_DRIFT", "fail"),
        ("team-apps", "compliance", "pass"),
    ]
    drift = next(
        r for r in docs["aks-cfg-drift"]["results"] if r["properties"]["path"].endswith("branch")
    )
    assert drift["properties"]["desired"] == '"main"' and drift["properties"]["actual"] == '"dev"'
    assert drift["severity"] == "medium" and drift["category"] == "Flux configuration"
    assert drift["resources"] == [{"kind": "FluxConfiguration", "name": "cluster-config"}]
    warn = next(r for r in docs["arc-offline"]["results"] if r["result"] == "warn")
    assert warn["scored"] is False and warn["severity"] == "info"
    lab = docs["aks-lab"]["results"][0]
    assert "lab cluster, see TICKET-42" in lab["message"] and "2027-01-31" in lab["message"]
    arm = docs["aks-arm64"]
    assert arm["scope"] == {"kind": "ManagedCluster", "name": "aks-arm64"}
    assert arm["metadata"]["annotations"]["fleet/cluster-id"].endswith("/managedClusters/aks-arm64")
    assert arm["metadata"]["labels"]["fleet/state"] == "noncompliant"
    assert docs["arc-offline"]["scope"]["kind"] == "ConnectedCluster"
    assert {r["severity"] for r in arm["results"]} == {"high", "medium"}


def test_openreports_api(recorded: Recorded, crd_schemas: dict[str, Any]) -> None:
    docs = _docs(
        render_text(
            "policyreport", recorded.report, Context(policyreport_api="openreports.io/v1alpha1")
        )
    )
    assert {d["kind"] for d in docs} == {"ClusterReport"}
    assert all(
        d["apiVersion"] == "openreports.io/v1alpha1" and d["source"] == "fleet" for d in docs
    )
    # openreports.io/v1alpha1 is wgpolicyk8s.io/v1alpha2 plus a report-level ``source`` and
    # ``configuration`` (openreports/reports-api); its CRD is not vendored here.
    schema = copy.deepcopy(crd_schemas["ClusterPolicyReport"])
    schema["properties"]["source"] = {"type": "string"}
    for doc in docs:
        jsonschema.validate(doc, schema)
    namespaced = _docs(
        render_text(
            "policyreport",
            recorded.report,
            Context(policyreport_api="openreports.io/v1alpha1", policyreport_namespace="ops"),
        )
    )
    assert {d["kind"] for d in namespaced} == {"Report"}


def test_object_names_are_unique_per_cluster_id() -> None:
    a = {
        "id": "/subscriptions/1/resourceGroups/a/providers/X/managedClusters/Same_Name",
        "name": "Same_Name",
    }
    b = {
        "id": "/subscriptions/1/resourceGroups/b/providers/X/managedClusters/Same_Name",
        "name": "Same_Name",
    }
    assert object_name(a) != object_name(b)
    assert re.fullmatch(r"fleet-same-name-[0-9a-f]{10}", object_name(a))


# --- JUnit -------------------------------------------------------------------------------


def outcome_of(cases: dict[tuple[str, str], Any], policy: str, cluster: str) -> str:
    result = cases[(policy, cluster)].result
    return type(result[0]).__name__ if result else "passed"


def test_junit_parses_and_maps_states(recorded: Recorded, tmp_path: Path) -> None:
    path = tmp_path / "fleet.xml"
    path.write_text(render_text("junit", recorded.report), encoding="utf-8")
    xml = JUnitXml.fromfile(str(path))
    suites = {s.name: s for s in xml}
    assert set(suites) == {"platform-baseline", "team-apps", "(unowned)"}
    cases = {(c.classname, c.name): c for s in xml for c in s}
    # one case per (policy, cluster), plus one "(unowned)" case per cluster with findings no
    # policy owns (an ungoverned unmanaged configuration, an UNRECOGNISED_SHAPE note)
    unowned = [
        c for c in recorded.report["clusters"] if any(f["policy"] is None for f in c["findings"])
    ]
    assert len(unowned) == 2
    expected = sum(len(c["policies"]) for c in recorded.report["clusters"]) + len(unowned)
    assert len(cases) == expected and xml.tests == expected
    assert outcome_of(cases, "(unowned)", "arc-cfg-noncompliant") == "passed"  # a note only

    def outcome(policy: str, cluster: str) -> str:
        result = cases[(policy, cluster)].result
        return type(result[0]).__name__ if result else "passed"

    assert outcome("platform-baseline", "aks-006") == "passed"
    assert outcome("platform-baseline", "aks-cfg-drift") == "Failure"
    assert outcome("platform-baseline", "aks-conflict") == "Failure"
    assert outcome("team-apps", "aks-conflict") == "Failure"
    assert outcome("platform-baseline", "aks-read-error") == "Error"
    assert outcome("platform-baseline", "arc-offline") == "Skipped"
    assert outcome("platform-baseline", "aks-lab") == "Skipped"
    assert outcome("team-apps", "aks-two-policies") == "passed"
    assert outcome("(unowned)", "aks-unmanaged-ungoverned") == "passed"  # a warning does not fail
    failure = cases[("platform-baseline", "aks-cfg-drift")].result[0]
    assert isinstance(failure, Failure) and failure.type == "noncompliant"
    assert "FLUX_CONFIG_DRIFT" in failure.message
    assert "/properties/kustomizations/apps/path" in failure.text
    assert '"./apps/staging </script><b>x</b>"' in failure.text
    assert isinstance(cases[("platform-baseline", "aks-read-error")].result[0], Error)
    skipped = cases[("platform-baseline", "aks-lab")].result[0]
    assert isinstance(skipped, Skipped) and "TICKET-42" in skipped.message
    by_state = recorded.report["summary"]["byPolicy"]["platform-baseline"]
    baseline = suites["platform-baseline"]
    assert baseline.failures == by_state["noncompliant"] + by_state["conflicting"]
    assert baseline.errors == by_state["error"]
    assert baseline.skipped == by_state["unknown"] + by_state["exempt"]
    assert cases[("platform-baseline", "aks-cfg-drift")].system_out.startswith(
        "cluster: /subscriptions/"
    )


def test_junit_disambiguates_repeated_cluster_names(recorded: Recorded) -> None:
    report = copy.deepcopy(recorded.report)
    twin = copy.deepcopy(report["clusters"][0])
    twin["id"] = twin["id"].replace(twin["resourceGroup"], "rg-twin")
    twin["resourceGroup"] = "rg-twin"
    report["clusters"].append(twin)
    xml = render_text("junit", report)
    name = twin["name"]
    assert (
        f'name="rg-twin/{name}"' in xml
        and f'name="{report["clusters"][0]["resourceGroup"]}/{name}"' in xml
    )


# --- Prometheus --------------------------------------------------------------------------


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_prometheus_metrics_parse_and_add_up(recorded: Recorded) -> None:
    text = render_text("prometheus", recorded.report, recorded.context)
    samples = _samples(text)
    summary = recorded.report["summary"]
    for state, n in summary["byState"].items():
        assert samples[("fleet_clusters", (("state", state),))] == n
    for code in Code:
        assert samples[("fleet_findings", (("code", code.value),))] == summary["findingsTotal"].get(
            code.value, 0
        )
        assert samples[("fleet_clusters_with_finding", (("code", code.value),))] == summary[
            "byFinding"
        ].get(code.value, 0)
    assert samples[("fleet_compliance_percent", ())] == 50.0
    assert samples[("fleet_sweep_duration_seconds", ())] == 44.5
    assert samples[("fleet_sweep_age_seconds", ())] == 2 * 3600.0
    assert samples[("fleet_sweep_complete", ())] == 1
    assert samples[("fleet_extension_version_clusters", (("version", "1.15.2"),))] == 1
    assert samples[("fleet_extension_window_clusters", (("window", "outOfWindow"),))] == 2
    assert (
        samples[("fleet_policy_clusters", (("policy", "team-apps"), ("state", "conflicting")))] == 1
    )
    assert samples[("fleet_policy_compliance_percent", (("policy", "platform-baseline"),))] == 50.0
    sub = "00000000-0000-0000-0000-000000000002"
    assert (
        samples[("fleet_subscription_clusters", (("state", "error"), ("subscription_id", sub)))]
        == 1
    )
    assert samples[("fleet_sweep_requests", (("class", "reads"), ("status", "429")))] == 2
    info = next(k for k in samples if k[0] == "fleet_sweep_info")
    assert ("sweep_id", SWEEP_IDS[2]) in info[1]


def test_prometheus_escapes_label_values(recorded: Recorded) -> None:
    report = copy.deepcopy(recorded.report)
    report["summary"]["byPolicy"] = {'we"ird\\policy\nname': {"compliant": 1}}
    samples = _samples(render_text("prometheus", report, recorded.context))
    assert (
        samples[("fleet_policy_compliance_percent", (("policy", 'we"ird\\policy\nname'),))] == 100.0
    )


# --- HTML (structure; behaviour in a browser: test_browser.py) ---------------------------


def test_html_is_self_contained_and_escaped(recorded: Recorded) -> None:
    import base64
    import hashlib

    page = render_text("html", recorded.report, recorded.context)
    assert page.startswith("<!doctype html>")
    # Nothing is fetched: no external src/href, no @import, no url() in the styles.
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    # The CSP pins the one script and the one style by hash.
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None
    policy = html.unescape(csp.group(1))
    script = re.search(r"<script>(.*?)</script>", page, re.S)
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    assert script is not None and style is not None
    for body in (script.group(1), style.group(1)):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy
    # The embedded data cannot end its script element early, and parses back.
    data = re.search(r'<script type="application/json" id="fleet-data">(.*?)</script>', page, re.S)
    assert data is not None and "<" not in data.group(1)
    packed = json.loads(data.group(1))
    assert len(packed["rows"]) == 30 and HOSTILE in packed["s"]
    assert "./apps/staging </script><b>x</b>" in json.dumps(packed["s"])
    # Hostile text only ever appears escaped in the markup.
    assert "<script>alert" not in page and "<b>x</b>" not in page
    assert "&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in page  # in "what changed", escaped


def test_html_sections(recorded: Recorded) -> None:
    page = render_text("html", recorded.report, recorded.context)
    for section in (
        "states",
        "trend",
        "changes",
        "findings",
        "versions",
        "policies",
        "subscriptions",
        "clusters",
    ):
        assert f'id="{section}"' in page
    assert "50.0%" in page and "+5.6 points" in page
    assert page.count('<svg class="chart trend"') == 1 and page.count('<svg class="spark"') >= 4
    assert 'data-filter="code" data-value="POLICY_CONFLICT"' in page
    assert 'data-cluster="/subscriptions/' in page  # "what changed" links into the drill-down
    alone = render_text("html", recorded.report, Context(now=NOW))
    assert "No earlier sweep to compare with." in alone and "Only one complete sweep" in alone


def test_incomplete_sweep_is_flagged_everywhere(recorded: Recorded) -> None:
    report = copy.deepcopy(recorded.report)
    report["sweep"].update(complete=False, interrupted=True, targets=45)
    assert "Incomplete sweep" in render_text("html", report, recorded.context)
    assert "Incomplete sweep" in render_text("md", report, recorded.context)
    samples = _samples(render_text("prometheus", report, recorded.context))
    assert samples[("fleet_sweep_complete", ())] == 0


def test_unknown_format_is_refused(recorded: Recorded) -> None:
    with pytest.raises(ValueError, match="unknown report format"):
        render("xml", recorded.report, io.StringIO())


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_sparse_summary_from_an_older_recorder_still_renders(
    recorded: Recorded, fmt: str
) -> None:
    report = copy.deepcopy(recorded.report)
    report["summary"] = {"clusters": 30, "byState": {"compliant": 29, "error": 1}}
    assert render_text(fmt, report, recorded.context).strip()


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_empty_sweep_renders(recorded: Recorded, fmt: str) -> None:
    from fleet.report.model import SweepInfo, build_report

    info = SweepInfo(id="empty", started_at=NOW, finished_at=NOW, policy_revision="r")
    text = render_text(fmt, build_report(info, []), Context(now=NOW))
    # each format says "no clusters" in its own terms, and is still well-formed
    if fmt == "policyreport":  # one object per cluster: none at all
        assert _docs(text) == []
        return
    assert text.strip(), fmt
    if fmt == "json":
        data = json.loads(text)
        assert data["clusters"] == [] and data["summary"]["clusters"] == 0
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        assert len(rows) == 1 and rows[0] == list(COLUMNS)
    elif fmt == "junit":
        assert sum(1 for suite in JUnitXml.fromstring(text) for _ in suite) == 0
    elif fmt == "prometheus":
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert families, text
    elif fmt == "html":
        assert "<html" in text.lower() and "empty" in text
    elif fmt == "md":
        assert "empty" in text and "0" in text
    else:  # a new format must say how an empty sweep looks in it
        raise AssertionError(f"no check for {fmt}")
