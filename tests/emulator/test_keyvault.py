"""The emulator's Key Vault data plane, through the real ``azure-keyvault-secrets`` client.

The SDK runs its challenge-based authentication against the emulator: its first request goes
without a token, the 401 names the tenant and the vault resource, and the SDK asks the
credential for a token of that scope before it sends the request again. Secrets, their versions
and a rotation (a new version through the admin API) read as Key Vault would serve them; values
never appear in a dump of the emulator's state.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.keyvault.secrets import SecretClient

from fleet.azure.credentials import EmulatorCredential
from fleet.emulator.snapshot import SnapshotError, load
from fleet.emulator.testing import AdminError, RunningEmulator, running_emulator
from tests.emulator.conftest import FAST, build_fleet

VAULT = "kv-platform"
V1, V2 = "a" * 32, "b" * 32


def with_vaults() -> dict[str, Any]:
    doc = build_fleet()
    doc["vaults"] = [
        {
            "name": VAULT,
            "secrets": [
                {
                    "name": "git-token",
                    "versions": [
                        {"version": V1, "value": "token-one", "created": "2026-01-01T00:00:00Z"},
                        {"version": V2, "value": "token-two", "contentType": "text/plain"},
                    ],
                },
                {"name": "no-id", "versions": [{"value": "derived"}]},
            ],
        }
    ]
    return doc


class Recording(EmulatorCredential):
    """fleet's emulator credential, remembering every scope it was asked for."""

    def __init__(self, principal: str = "kv-reader") -> None:
        super().__init__(principal)
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return super().get_token(*scopes, **kwargs)


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    with running_emulator(with_vaults(), **FAST) as running:
        yield running


def client(emu: RunningEmulator, credential: Any = None, vault: str = VAULT) -> SecretClient:
    return SecretClient(
        emu.keyvault_url.replace("{vault}", vault),
        credential or Recording(),
        connection_verify=str(emu.ca_bundle),
        verify_challenge_resource=False,
    )


def test_the_sdk_answers_the_challenge_and_reads_the_current_version(emu: RunningEmulator) -> None:
    credential = Recording()
    secret = client(emu, credential).get_secret("git-token")
    assert (secret.value, secret.properties.version) == ("token-two", V2)
    assert secret.properties.content_type == "text/plain"
    assert secret.properties.enabled is True
    assert credential.scopes == ["https://vault.azure.net/.default"]
    log = emu.admin.vaults()["requests"]
    assert [(r["status"], r["audience"]) for r in log] == [
        (401, None),
        (200, "https://vault.azure.net"),
    ]
    assert log[1]["principal"] == "kv-reader"
    assert all(r["path"] == f"/vaults/{VAULT}/secrets/git-token" for r in log)


def test_pinned_versions_listing_and_derived_ids(emu: RunningEmulator) -> None:
    kv = client(emu)
    assert kv.get_secret("git-token", V1).value == "token-one"
    versions = [p.version for p in kv.list_properties_of_secret_versions("git-token")]
    assert versions == [V1, V2]
    assert sorted(p.name for p in kv.list_properties_of_secrets()) == ["git-token", "no-id"]
    derived = kv.get_secret("no-id")
    assert derived.value == "derived" and len(derived.properties.version or "") == 32
    # the same snapshot gives the same derived id
    with running_emulator(with_vaults(), **FAST) as again:
        assert client(again).get_secret("no-id").properties.version == derived.properties.version


def test_listing_pages_follow_next_links(emu: RunningEmulator) -> None:
    for i in range(30):
        emu.admin.add_secret_version(VAULT, "busy", f"value-{i}")
    kv = client(emu)
    pages = kv.list_properties_of_secret_versions("busy", max_page_size=7).by_page()
    sizes = [len(list(page)) for page in pages]
    assert sizes == [7, 7, 7, 7, 2]


def test_a_rotation_is_a_new_current_version(emu: RunningEmulator) -> None:
    kv = client(emu)
    before = emu.admin.clock()
    emu.admin.advance_clock(3600)
    version = emu.admin.add_secret_version(VAULT, "git-token", "token-three")
    assert version not in (V1, V2) and len(version) == 32
    secret = kv.get_secret("git-token")
    assert (secret.value, secret.properties.version) == ("token-three", version)
    created = secret.properties.created_on
    assert created is not None and created.timestamp() >= before.timestamp() + 3500
    assert kv.get_secret("git-token", V2).value == "token-two"
    # a secret and a vault that did not exist are created by their first version
    emu.admin.add_secret_version("kv-new", "fresh", "v")
    assert client(emu, vault="kv-new").get_secret("fresh").value == "v"


def test_errors_are_key_vaults(emu: RunningEmulator) -> None:
    kv = client(emu)
    with pytest.raises(ResourceNotFoundError) as missing:
        kv.get_secret("nope")
    assert missing.value.error is not None and missing.value.error.code == "SecretNotFound"
    with pytest.raises(ResourceNotFoundError):
        kv.get_secret("git-token", "c" * 32)
    emu.admin.set_secret_enabled(VAULT, "git-token", V2, False)
    with pytest.raises(HttpResponseError) as disabled:
        kv.get_secret("git-token")
    assert disabled.value.status_code == 403
    assert kv.get_secret("git-token", V1).value == "token-one"
    with pytest.raises(ResourceNotFoundError):
        client(emu, vault="kv-absent").get_secret("git-token")
    with pytest.raises(AdminError):
        emu.admin.set_secret_enabled(VAULT, "git-token", "d" * 32, True)


def test_an_arm_token_is_refused_with_the_challenge(emu: RunningEmulator) -> None:
    class ArmOnly(EmulatorCredential):
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return super().get_token("https://management.azure.com/.default")

    with pytest.raises(ClientAuthenticationError):
        client(emu, ArmOnly()).get_secret("git-token")
    statuses = {r["status"] for r in emu.admin.vaults()["requests"]}
    assert statuses == {401}


def test_roles_govern_the_data_actions(emu: RunningEmulator) -> None:
    emu.admin.set_role("kv-reader", ["Microsoft.KeyVault/vaults/secrets/readMetadata/action"])
    kv = client(emu)
    with pytest.raises(HttpResponseError) as refused:
        kv.get_secret("git-token")
    assert refused.value.status_code == 403
    assert "ForbiddenByRbac" in str(refused.value)
    assert [p.version for p in kv.list_properties_of_secret_versions("git-token")] == [V1, V2]
    emu.admin.set_role("kv-reader", ["Microsoft.KeyVault/vaults/secrets/*"])
    assert kv.get_secret("git-token").value == "token-two"


def test_injected_faults_and_api_versions(emu: RunningEmulator) -> None:
    emu.admin.add_fault(
        action="error",
        pathPrefix=f"/vaults/{VAULT}/secrets/git-token",
        status=500,
        code="InternalServerError",
        message="injected",
        count=1,
    )
    kv = SecretClient(
        emu.keyvault_url.replace("{vault}", VAULT),
        Recording(),
        connection_verify=str(emu.ca_bundle),
        verify_challenge_resource=False,
        retry_total=0,
    )
    with pytest.raises(HttpResponseError) as failed:
        kv.get_secret("git-token")
    assert failed.value.status_code == 500
    assert kv.get_secret("git-token").value == "token-two"
    old = SecretClient(
        emu.keyvault_url.replace("{vault}", VAULT),
        Recording(),
        connection_verify=str(emu.ca_bundle),
        verify_challenge_resource=False,
        api_version="7.4",
    )
    assert old.get_secret("git-token").value == "token-two"


def test_a_dump_keeps_versions_but_never_values(emu: RunningEmulator) -> None:
    emu.admin.add_secret_version(VAULT, "git-token", "token-rotated")
    dumped = emu.admin.snapshot()
    text = str(dumped) + str(emu.admin.vaults())
    for value in ("token-one", "token-two", "token-rotated", "derived"):
        assert value not in text
    [vault] = dumped["vaults"]
    [token, _] = vault["secrets"]
    assert [v["version"] for v in token["versions"]][:2] == [V1, V2]
    assert len(token["versions"]) == 3
    reloaded = load(copy.deepcopy(dumped))
    assert reloaded["vaults"] == dumped["vaults"]


def test_a_bad_vaults_section_is_refused_with_its_place() -> None:
    doc = with_vaults()
    doc["vaults"][0]["name"] = "x"
    doc["vaults"][0]["secrets"][0]["versions"][0]["enabled"] = "yes"
    with pytest.raises(SnapshotError) as bad:
        load(doc, "s.json")
    text = str(bad.value)
    assert "s.json: vaults[0].name: must be a Key Vault name" in text
    assert "s.json: vaults[0].secrets[0].versions[0].enabled: must be true or false" in text
