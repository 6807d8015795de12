"""The N-2 window, counted per release, and the ARM64 floor."""

from __future__ import annotations

import pytest

from fleet.core.vocabulary import Code
from fleet.evaluate.versions import Catalog, judge, parse_version
from tests.engine.fixtures import CATALOG

OUT = Code.EXTENSION_VERSION_OUT_OF_WINDOW
ARCH = Code.EXTENSION_VERSION_UNSUPPORTED_ARCH


def test_parse_semver() -> None:
    v = parse_version("1.18.0-preview.1")
    assert v is not None and v.prerelease and v.release == (1, 18, 0)
    assert parse_version("1.17.3+build.5") == parse_version("1.17.3")
    assert parse_version("1.17") is None
    assert parse_version("01.2.3") is None
    a, b, c = (parse_version(t) for t in ("1.7.0-rc.1", "1.7.0", "1.10.0"))
    assert a is not None and b is not None and c is not None
    assert a < b < c  # numeric, not lexical; pre-release before its release


def test_window_counts_releases_not_minor_lines() -> None:
    catalog = Catalog.from_mapping({"Stable": ["1.16.3", "1.17.2", "1.16.12", "1.17.3"]})
    assert catalog.window("Stable", 2) == ("1.17.3", "1.17.2", "1.16.12")
    assert judge("1.16.12", catalog=catalog, train="Stable", window=2).in_window is True
    result = judge("1.16.3", catalog=catalog, train="Stable", window=2)
    assert result.in_window is False and result.codes == (OUT,)
    assert "stuck on 1.16.3" in result.message and "auto-upgrade is on" in result.message


def test_window_zero_and_wider_than_the_catalogue() -> None:
    assert judge("1.17.2", catalog=CATALOG, train="Stable", window=0).in_window is False
    assert judge("1.17.3", catalog=CATALOG, train="Stable", window=0).in_window is True
    assert judge("1.6.1", catalog=CATALOG, train="Stable", window=20).in_window is True


def test_newer_than_the_catalogue_is_in_window() -> None:
    result = judge("1.18.1", catalog=CATALOG, train="Stable", window=2)
    assert result.in_window is True and result.codes == ()
    assert "newer than the newest known" in result.message


def test_pre_release_is_out_of_window() -> None:
    result = judge("1.18.0-preview.1", catalog=CATALOG, train="Preview", window=2)
    assert result.in_window is False and result.codes == (OUT,)
    assert "pre-release" in result.message


@pytest.mark.parametrize("garbage", ["", "latest", "1.17", "1.17.3.4", "v", "1.x.3", "🙂"])
def test_garbage_is_out_of_window_not_a_crash(garbage: str) -> None:
    result = judge(garbage, catalog=CATALOG, train="Stable", window=2, arm64=True)
    assert result.in_window is False and result.codes == (OUT,)
    assert "is not a version" in result.message


def test_unknown_version_inside_the_range_is_out() -> None:
    result = judge("1.17.1", catalog=CATALOG, train="Stable", window=2)
    assert result.in_window is False and "not a known Stable release" in result.message


def test_none_is_not_judged() -> None:
    result = judge(None, catalog=CATALOG, train="Stable", window=2, arm64=True)
    assert result.in_window is None and result.codes == ()


def test_pinned_outside_the_window_says_so() -> None:
    result = judge("1.15.2", catalog=CATALOG, train="Stable", window=2, pinned=True)
    assert result.in_window is False and "pinned to 1.15.2" in result.message


def test_arm64_floor() -> None:
    result = judge("1.6.3", catalog=CATALOG, train="Stable", window=2, arm64=True)
    assert set(result.codes) == {OUT, ARCH} and "ARM64" in result.message
    inside = judge("1.6.3", catalog=CATALOG, train="Stable", window=20, arm64=True)
    assert inside.in_window is True and inside.codes == (ARCH,)
    assert judge("1.7.0", catalog=CATALOG, train="Stable", window=20, arm64=True).codes == ()
    assert judge("1.6.3", catalog=CATALOG, train="Stable", window=20, arm64=False).codes == ()


def test_train_is_case_insensitive_and_unknown_trains_fall_back_to_stable() -> None:
    assert judge("1.17.3", catalog=CATALOG, train="STABLE", window=2).in_window is True
    result = judge("1.15.2", catalog=CATALOG, train="Nightly", window=2)
    assert result.in_window is False and "judged against Stable" in result.message
    assert judge("1.17.2", catalog=CATALOG, train=None, window=1).in_window is True


def test_catalogue_ignores_order_duplicates_and_junk() -> None:
    catalog = Catalog.from_mapping(
        {"stable": ["1.2.0", "junk", "1.10.0", "1.10.0", "1.11.0-rc.1", "1.9.9"]}
    )
    assert catalog.window("Stable", 1) == ("1.10.0", "1.9.9")


def test_empty_catalogue_cannot_judge_the_window() -> None:
    result = judge("1.17.3", catalog=Catalog.from_mapping({}), train="Stable", window=2)
    assert result.in_window is None and result.codes == ()
    arm = judge("1.6.3", catalog=Catalog.from_mapping({}), train="Stable", window=2, arm64=True)
    assert arm.codes == (ARCH,)
