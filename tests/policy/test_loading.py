"""Loading files and directories into a PolicySet: documents, origins, revision, warnings,
names across files, and hostile input (encodings, size, nesting, aliases)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from fleet.core.errors import PolicyLoadError
from fleet.policy.loading import MAX_FILE_BYTES, PolicyIssue, PolicySet, load, load_text
from tests.policy.helpers import TODAY, VALID, edit, errors_of, load_errors, load_ok, named

MINIMAL = """\
apiVersion: fleet/v1
kind: FluxPolicy
metadata:
  name: {name}
spec:
  extension: {{releaseTrain: Stable}}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- PolicyIssue and PolicyLoadError --------------------------------------------------------


def test_issue_format() -> None:
    assert str(PolicyIssue("a.yaml", 3, "spec.mode", "bad")) == "a.yaml:3: spec.mode: bad"
    assert str(PolicyIssue("a.yaml", 3, "", "bad")) == "a.yaml:3: bad"
    assert str(PolicyIssue("a.yaml", 0, "", "missing")) == "a.yaml: missing"
    warning = PolicyIssue("a.yaml", 9, "spec.x", "old", severity="warning")
    assert str(warning) == "a.yaml:9: spec.x: warning: old"


def test_load_error_lists_the_errors() -> None:
    with pytest.raises(PolicyLoadError) as info:
        load_text(edit("  mode: enforce\n", "  mode: x\n"), file="f.yaml", today=TODAY)
    assert [str(i) for i in info.value.issues] == [
        "f.yaml:7: spec.mode: expected 'audit' or 'enforce'"
    ]
    assert "1 error in policy files" in str(info.value)
    assert "f.yaml:7: spec.mode" in str(info.value)


# --- documents and files ------------------------------------------------------------------------


def test_valid_policy_loads_with_its_fields() -> None:
    policy_set = load_ok(VALID)
    (policy,) = policy_set.policies
    assert policy.name == "platform"
    assert policy.spec.mode == "enforce"
    assert policy.spec.extension is not None
    assert policy.spec.extension.configuration_settings == {"multiTenancy.enforce": "true"}
    config = policy.spec.flux_configurations[0]
    assert config.kustomizations is not None
    assert config.kustomizations["apps"].depends_on == ["infra"]
    assert policy.spec.exemptions[0].expires_on == date(2099, 12, 31)
    assert policy_set.warnings == ()
    assert policy_set.origins == {"platform": ("p.yaml", 1)}


def test_multi_document_file_and_empty_documents(tmp_path: Path) -> None:
    text = (
        "# only a comment\n---\n"
        + MINIMAL.format(name="one")
        + "---\n---\n# nothing here\n...\n---\n"
        + MINIMAL.format(name="two")
    )
    file = write(tmp_path / "many.yaml", text)
    policy_set = load([file], today=TODAY)
    assert policy_set.names == ("one", "two")
    assert policy_set.origins["one"] == (str(file), 3)
    assert policy_set.origins["two"] == (str(file), 14)


def test_errors_in_several_documents_are_all_reported(tmp_path: Path) -> None:
    bad = MINIMAL.replace("releaseTrain: Stable", "releaseTrain: 7")
    file = write(tmp_path / "p.yaml", bad.format(name="a") + "---\n" + bad.format(name="b"))
    assert load_errors([file]) == [
        f"{file}:6: spec.extension.releaseTrain: expected a string, got a number; quote it",
        f"{file}:13: spec.extension.releaseTrain: expected a string, got a number; quote it",
    ]


def test_documents_before_a_syntax_error_are_checked_too(tmp_path: Path) -> None:
    first = MINIMAL.format(name="a").replace("releaseTrain: Stable", "releaseTrain: [x]")
    file = write(tmp_path / "p.yaml", first + "---\nkind: [\n")
    assert load_errors([file]) == [
        f"{file}:6: spec.extension.releaseTrain: expected a string, got a list",
        f"{file}:9: YAML syntax error: expected the node content, but found '<stream end>'",
    ]


def test_directory_is_searched_recursively_in_sorted_order(tmp_path: Path) -> None:
    write(tmp_path / "b.yaml", MINIMAL.format(name="bravo"))
    write(tmp_path / "a" / "z.yml", MINIMAL.format(name="alpha"))
    write(tmp_path / "a" / "notes.txt", "not a policy")
    write(tmp_path / ".hidden" / "c.yaml", "this: [is not loaded")
    write(tmp_path / ".dot.yaml", "neither: [is this")
    policy_set = load([tmp_path], today=TODAY)
    assert policy_set.names == ("alpha", "bravo")
    assert policy_set.origins["alpha"] == (os.path.join(str(tmp_path), "a", "z.yml"), 1)


def test_file_names_keep_the_spelling_of_the_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "policies" / "p.yaml", MINIMAL.format(name="x").replace("Stable", "[1]"))
    monkeypatch.chdir(tmp_path)
    assert load_errors(["policies/"]) == [
        "policies/p.yaml:6: spec.extension.releaseTrain: expected a string, got a list"
    ]


def test_the_same_file_twice_is_loaded_once(tmp_path: Path) -> None:
    file = write(tmp_path / "p.yaml", MINIMAL.format(name="x"))
    assert load([file, tmp_path, str(file)], today=TODAY).names == ("x",)


def test_duplicate_names_across_files_name_both_places(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", MINIMAL.format(name="same"))
    b = write(tmp_path / "b.yaml", "# another team\n" + MINIMAL.format(name="same"))
    assert load_errors([tmp_path]) == [
        f"{b}:5: metadata.name: duplicate policy name 'same'; also defined at {a}:4"
    ]


def test_missing_paths_and_empty_directories(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    missing = tmp_path / "nope.yaml"
    assert load_errors([missing, tmp_path / "empty"]) == [
        f"{missing}: no such file or directory",
        f"{tmp_path / 'empty'}: no policy files (*.yaml, *.yml) in this directory",
    ]
    assert load_errors([]) == ["fleet: no policy files or directories given"]


def test_all_files_are_checked_before_failing(tmp_path: Path) -> None:
    write(tmp_path / "1.yaml", MINIMAL.format(name="a").replace("Stable", "[x]"))
    write(tmp_path / "2.yaml", MINIMAL.format(name="b"))
    write(tmp_path / "3.yaml", "apiVersion: [")
    issues = load_errors([tmp_path])
    assert [i.split(":")[0].rsplit("/", 1)[1] for i in issues] == ["1.yaml", "3.yaml"]


# --- PolicySet ----------------------------------------------------------------------------------


def test_policy_set_api(tmp_path: Path) -> None:
    write(tmp_path / "team" / "t.yaml", MINIMAL.format(name="team"))
    write(tmp_path / "base.yaml", MINIMAL.format(name="base"))
    policy_set = load([tmp_path], today=TODAY)
    assert [p.name for p in policy_set] == ["base", "team"]
    assert len(policy_set) == 2
    assert policy_set.by_name("team").name == "team"
    assert policy_set.base_dir("team") == (tmp_path / "team").resolve()
    assert policy_set.base_dir("base") == tmp_path.resolve()
    with pytest.raises(KeyError):
        policy_set.by_name("nope")
    with pytest.raises(KeyError):
        policy_set.base_dir("nope")
    with pytest.raises(AttributeError):
        policy_set.revision = "x"  # type: ignore[misc]


def test_base_dir_of_a_policy_not_from_a_file_is_the_working_directory() -> None:
    policy_set = load_ok(VALID)
    assert policy_set.base_dir("platform") == Path.cwd()


def test_revision_ignores_order_comments_and_formatting(tmp_path: Path) -> None:
    both = MINIMAL.format(name="a") + "---\n" + MINIMAL.format(name="b")
    one = write(tmp_path / "1" / "a.yaml", both)
    write(tmp_path / "2" / "x.yaml", "# reordered\n" + MINIMAL.format(name="b"))
    write(
        tmp_path / "2" / "y.yaml",
        "apiVersion: 'fleet/v1'\nkind: FluxPolicy\nspec:\n  extension:\n"
        "    releaseTrain: Stable   # same\nmetadata: {name: a}\n",
    )
    first = load([one], today=TODAY)
    second = load([tmp_path / "2"], today=TODAY)
    assert first.revision == second.revision
    assert len(first.revision) == 16
    assert int(first.revision, 16) >= 0
    assert PolicySet.from_policies(reversed(first.policies)).revision == first.revision


def test_revision_changes_with_content() -> None:
    base = load_ok(VALID).revision
    assert load_ok(edit("  priority: 100\n", "  priority: 101\n")).revision != base
    # A default written out is the same policy as the default left out.
    explicit = edit(
        '    schedule: "0 */6 * * *"\n', '    schedule: "0 */6 * * *"\n    deleteUnmanaged: false\n'
    )
    assert load_ok(explicit).revision == base


def test_from_policies_sorts_and_keeps_origins() -> None:
    policies = load_ok(VALID).policies + load_ok(named("another")).policies
    built = PolicySet.from_policies(policies, origins={"another": ("/x/p.yaml", 1)})
    assert built.names == ("another", "platform")
    assert built.base_dir("another") == Path("/x")


# --- warnings ---------------------------------------------------------------------------------


def test_expired_exemption_is_a_warning() -> None:
    text = edit("      expiresOn: 2099-12-31\n", "      expiresOn: 2026-11-24\n")
    policy_set = load_ok(text)
    assert [str(w) for w in policy_set.warnings] == [
        "p.yaml:18: spec.exemptions[0].expiresOn: warning: "
        "exemption expired on 2026-11-24; the cluster is judged again"
    ]
    # The last day itself is still in force.
    assert load_ok(edit("2099-12-31", "2026-11-25")).warnings == ()


def test_policy_declaring_nothing_is_a_warning() -> None:
    text = "apiVersion: fleet/v1\nkind: FluxPolicy\nmetadata: {name: empty}\nspec:\n  mode: audit\n"
    policy_set = load_ok(text)
    assert [str(w) for w in policy_set.warnings] == [
        "p.yaml:4: spec: warning: the policy declares neither an extension nor fluxConfigurations"
    ]


def test_warnings_come_with_errors_in_the_load_error() -> None:
    expired = edit("      expiresOn: 2099-12-31\n", "      expiresOn: 2020-01-01\n")
    broken = edit("  mode: enforce\n", "  mode: x\n", named("other"))
    with pytest.raises(PolicyLoadError) as info:
        load_text(expired + "---\n" + broken, file="p.yaml", today=TODAY)
    assert [(i.line, i.severity) for i in info.value.issues] == [(18, "warning"), (51, "error")]
    assert "1 error in policy files" in str(info.value)


# --- YAML features --------------------------------------------------------------------------------


def test_anchors_and_merge_keys() -> None:
    text = """\
apiVersion: fleet/v1
kind: FluxPolicy
metadata: {name: merged}
spec:
  fluxConfigurations:
    - &base
      name: one
      gitRepository: {url: https://example.com/a.git, repositoryRef: {branch: main}}
      kustomizations:
        apps: &apps {path: ./apps, prune: true}
    - <<: *base
      name: two
      kustomizations:
        apps: {<<: *apps, path: ./other}
"""
    (policy,) = load_ok(text).policies
    one, two = policy.spec.flux_configurations
    assert two.name == "two"
    assert two.git_repository == one.git_repository
    assert two.kustomizations is not None
    assert two.kustomizations["apps"].path == "./other"
    assert two.kustomizations["apps"].prune is True


def test_errors_inside_merged_values_point_at_the_anchor() -> None:
    text = """\
apiVersion: fleet/v1
kind: FluxPolicy
metadata: {name: merged}
spec:
  extension: &ext
    releaseTrain: 7
  fluxConfigurations: []
"""
    assert errors_of(text) == [
        "p.yaml:6: spec.extension.releaseTrain: expected a string, got a number; quote it"
    ]


def test_bad_merge_value() -> None:
    text = "apiVersion: fleet/v1\nkind: FluxPolicy\nmetadata:\n  <<: 3\n  name: x\nspec: {}\n"
    assert errors_of(text) == [
        "p.yaml:4: metadata.<<: a merge key (<<) takes a mapping or a list of mappings"
    ]


def test_keys_that_would_break_the_line_format_are_quoted() -> None:
    text = edit("    tags: {env: prod}\n", '    tags: {"env\\nx": [1]}\n')
    assert errors_of(text) == [
        'p.yaml:12: spec.targets.tags."env\\nx": expected a string, got a list'
    ]


# --- hostile input --------------------------------------------------------------------------------


def test_not_utf8(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_bytes(b"apiVersion: fleet/v1\nkind: FluxPolicy\n# caf\xe9\n")
    assert load_errors([file]) == [f"{file}:3: not valid UTF-8 text (byte offset 43)"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_byte_order_marks_are_understood(tmp_path: Path, encoding: str) -> None:
    file = tmp_path / "p.yaml"
    file.write_bytes(VALID.encode(encoding))
    assert load([file], today=TODAY).names == ("platform",)


def test_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    file = tmp_path / "big.yaml"
    file.write_bytes(b"# " + b"x" * MAX_FILE_BYTES + b"\n")
    assert load_errors([file]) == [
        f"{file}: file too large ({MAX_FILE_BYTES + 3} bytes; the limit is {MAX_FILE_BYTES})"
    ]


def test_deep_flow_nesting() -> None:
    text = "apiVersion: fleet/v1\nkind: FluxPolicy\nmetadata:\n  name: " + "[" * 3000 + "]" * 3000
    assert errors_of(text) == ["p.yaml:4: nested deeper than 64 levels"]


def test_deep_block_nesting() -> None:
    lines = ["apiVersion: fleet/v1", "spec:"]
    lines += [" " * (2 * i) + f"k{i}:" for i in range(1, 80)]
    assert errors_of("\n".join(lines) + " x\n") == ["p.yaml:67: nested deeper than 64 levels"]


def test_alias_bomb() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    text = "\n".join(lines) + "\n"
    assert errors_of(text) == [
        "p.yaml:1: document too large: more than 100000 values (after expanding aliases)"
    ]


def test_recursive_alias() -> None:
    assert errors_of("apiVersion: fleet/v1\nspec: &s\n  again: *s\n") == [
        "p.yaml:2: recursive alias: a value contains itself"
    ]


def test_undefined_alias() -> None:
    assert errors_of("apiVersion: fleet/v1\nspec: *nothing\n") == [
        "p.yaml:2: YAML syntax error: found undefined alias 'nothing'"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[1, 2]\n",
            "p.yaml:1: a policy document must be a mapping with apiVersion, kind, "
            "metadata and spec",
        ),
        (
            "just text\n",
            "p.yaml:1: a policy document must be a mapping with apiVersion, kind, "
            "metadata and spec",
        ),
        ("? [a, b]\n: 1\n", "p.yaml:1: ?: complex (non-scalar) mapping keys are not supported"),
        ("!!set {a, b}\n", "p.yaml:1: unsupported YAML tag 'tag:yaml.org,2002:set'"),
    ],
)
def test_odd_documents(text: str, expected: str) -> None:
    assert errors_of(text)[0] == expected


def test_issue_lines_are_never_zero_for_content_problems() -> None:
    for text in ["a: b: c", "\x00", "- [", "{", "a: 'x", "%YAML 9.9\n---\na: 1\n", "a: !!int x"]:
        issues = errors_of(text)
        assert issues, text
        assert all(i.startswith("p.yaml:") and i.split(":")[1].isdigit() for i in issues), issues


def test_very_deep_block_nesting_is_caught_even_past_the_parser_recursion_limit() -> None:
    text = "a:\n" + "".join(" " * i + "- \n" for i in range(1000))
    assert errors_of(text) == ["p.yaml:66: nested deeper than 64 levels"]


def test_brackets_inside_text_do_not_count_as_nesting() -> None:
    text = edit("  description: test policy\n", "  description: see x" + "[" * 100 + "\n")
    assert load_ok(text).policies[0].metadata.description == "see x" + "[" * 100
    quoted = edit("  description: test policy\n", "  description: '" + "{" * 100 + "'\n")
    assert load_ok(quoted).policies[0].metadata.description == "{" * 100


def test_policy_sets_hash_by_revision() -> None:
    a, b = load_ok(VALID), load_ok(VALID)
    assert a == b and hash(a) == hash(b)
    assert len({a, b, load_ok(named("other"))}) == 2
