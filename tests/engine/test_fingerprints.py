"""Keyed fingerprints: secret drift without secret values."""

from __future__ import annotations

from fleet.core.ids import key
from fleet.desired.fingerprints import Fingerprints, fingerprint, setting_path, short

KEY = b"k" * 32


def test_fingerprint_is_keyed_stable_and_hides_the_value() -> None:
    fp = fingerprint(KEY, "s3cret")
    assert fp.startswith("hmac-sha256:") and len(fp) == len("hmac-sha256:") + 32
    assert fp == fingerprint(KEY, "s3cret")
    assert fp != fingerprint(b"other-key", "s3cret")
    assert fp != fingerprint(KEY, "s3cret2")
    assert "s3cret" not in fp
    assert short(fp) == fp[: len("hmac-sha256:") + 8]
    assert short(None) is None


def test_setting_paths() -> None:
    assert setting_path("httpsKey") == "/properties/configurationProtectedSettings/httpsKey"
    assert setting_path("a/b") == "/properties/configurationProtectedSettings/a~1b"
    assert setting_path("/azureBlob/accountKey") == "/properties/azureBlob/accountKey"


def test_drift_only_when_both_sides_are_known_and_differ() -> None:
    rid = "/subscriptions/S/resourceGroups/RG/providers/X/y/z"
    fps = Fingerprints(
        desired={
            "env:A": fingerprint(KEY, "new"),
            "env:B": fingerprint(KEY, "same"),
            "env:C": None,
            "env:D": fingerprint(KEY, "d"),
        },
        applied={
            key(rid): {
                "a": fingerprint(KEY, "old"),
                "b": fingerprint(KEY, "same"),
                "c": fingerprint(KEY, "c"),
            }
        },
    )
    drift = fps.drift(rid.upper(), {"a": "env:A", "b": "env:B", "c": "env:C", "d": "env:D"})
    assert [(d.setting, d.ref) for d in drift] == [("a", "env:A")]
    assert drift[0].desired == fingerprint(KEY, "new")
    assert drift[0].applied == fingerprint(KEY, "old")
    # Never applied by fleet: unknown, not drift.
    assert fps.drift("/other", {"a": "env:A"}) == []
    assert Fingerprints().drift(rid, {"a": "env:A"}) == []
