"""A body that is not JSON (cut short, a proxy's HTML page) is a retryable ``MalformedResponse``.

The failure the fault suite found: such an answer was reported as ``HTTP 200
HttpResponseError: OK`` (a useless READ_ERROR reason), was not retried although it is
transport weather, and azure-core's message quotes the body after ``Content:``, which fleet
must never keep (bodies can echo request content).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleet.azure import retrying
from fleet.azure.errors import describe
from tests.faults.test_retrying import cluster, read, session_for

__all__ = ["cluster"]  # the fixture


@pytest.mark.parametrize("mode", ["truncated", "not_json"])
def test_a_body_that_is_not_json_is_a_retryable_malformed_response(
    mode: str, emulator_factory: Any, cluster: Any, tmp_path: Path
) -> None:
    emu = emulator_factory().running
    session = session_for(emu, tmp_path)
    emu.admin.add_fault(action="malformed", mode=mode, pathPrefix=cluster.id, count=1)
    with pytest.raises(Exception) as caught:
        read(session, cluster)()
    failure = describe(caught.value)
    assert failure.code == "MalformedResponse" and failure.retryable
    assert failure.message.startswith("the response is not valid JSON")
    assert "Content" not in failure.message and "Bad gateway" not in failure.message
    assert cluster.name not in failure.message  # nothing of the body is kept
    # the next attempt gets the whole answer
    emu.admin.add_fault(action="malformed", mode=mode, pathPrefix=cluster.id, count=1)
    found = retrying.call(read(session, cluster), attempts=2, what="read", sleep=lambda s: None)
    assert found.id.lower() == cluster.id.lower()
