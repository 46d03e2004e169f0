"""schemathesis against the real server process (sandbox driver), every operation.

Each operation gets up to ``MAX_EXAMPLES`` generated requests (plus the spec's
examples). Every response must be documented for that operation (status,
content type, headers, body schema); no 5xx other than the WhatsApp-side codes;
every error in the envelope. Generation is derandomized so the suite is
repeatable; raise ``FUZZ_EXAMPLES`` locally to dig deeper.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.pytest._test_builder import build_operation_test
from schemathesis.python._constants.orchestrator import make_constants_value_source
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.api.openapi import document
from tests.support.constants import API_KEY, TOKEN
from tests.support.proc import ServerProcess

pytestmark = pytest.mark.e2e  # schemathesis against the real server process

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
WHATSAPP_SIDE = {"DEVICE_NOT_CONNECTED", "CONNECTION_FAILED", "SEND_FAILED", "VALIDATION_FAILED"}

schema = schemathesis.openapi.from_dict(document(sandbox=True))
OPERATIONS = [result.ok().label for result in schema.get_all_operations()]


def ensure_connected_device(http: httpx.Client) -> None:
    """A connected device under the spec's example token, so generated sends reach the sandbox."""
    r = http.get(f"/devices/{TOKEN}")
    if r.status_code == 200 and r.json()["data"]["status"] == "connected":
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        http.post("/devices", json={"token": TOKEN})
        r = http.post(f"/sandbox/devices/{TOKEN}/scan")
        state = http.get(f"/devices/{TOKEN}").json().get("data") or {}
        if state.get("status") == "connected":
            return
    raise AssertionError(f"could not pair {TOKEN}: {r.text}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, httpx.Client]]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("fuzz"),
        LOG_LEVEL="warning",
        SANDBOX_RECONNECT_MS="20",
        SANDBOX_RECEIPT_DELAY_MS="20",
        ALLOW_SIGNUP="true",
    ).start()
    try:
        with proc.client() as http:
            yield proc, http
    finally:
        proc.signal()
        proc.wait()
        proc.kill()
    unhandled = [line for line in proc.log().splitlines() if "http.unhandled" in line]
    assert not unhandled, "\n".join(unhandled[:5])


def no_server_error(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """5xx only for the WhatsApp-side codes (and NOT_READY on /health/ready)."""
    if response.status_code < 500:
        return None
    code = _error_code(response)
    allowed = WHATSAPP_SIDE | ({"NOT_READY"} if case.path == "/health/ready" else set())
    assert code in allowed, f"{response.status_code} {code}: {response.text[:300]}"
    return True


def error_envelope(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """Every 4xx/5xx is ``{"success": false, "error": {code, message}, "meta": {timestamp, requestId}}``."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert body.get("success") is False, response.text[:300]
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
    assert body["meta"]["requestId"] == response.headers["x-request-id"][0]
    return True


def _error_code(response: schemathesis.Response) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except Exception:
        return None


CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    no_server_error,
    error_envelope,
]


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def answers_as_documented(case: schemathesis.Case, server: tuple[ServerProcess, httpx.Client]) -> None:
    """Generated requests get documented responses: no stray 5xx, errors in the envelope."""
    proc, http = server
    if case.path.startswith(("/devices/{token}", "/messages", "/validate", "/sandbox/", "/contacts/")):
        ensure_connected_device(http)
    case.call_and_validate(base_url=proc.base, headers={"X-API-Key": API_KEY}, checks=CHECKS, timeout=15)


@functools.cache
def _feedback() -> FeedbackSources:
    return FeedbackSources(constants_value_source=make_constants_value_source(schema))


@pytest.mark.parametrize("operation", OPERATIONS)
def test_operation_answers_as_documented(operation: str, server: tuple[ServerProcess, httpx.Client]) -> None:
    """Every operation's cases (the spec's examples, the coverage phase's boundary and invalid cases, and
    ``MAX_EXAMPLES`` generated ones) answer as documented.

    The cases are built here, as ``@schema.parametrize()`` builds them at collection and with the same
    builder: at collection, every xdist worker built all 68 operations' cases (3.6 s of CPU each), though
    each worker runs a quarter of them. The builder is schemathesis' own (``build_operation_test``), so the
    version is pinned in pyproject.toml."""
    hypothesis_test = build_operation_test(
        config=schema.config,
        operation=schema.find_operation_by_label(operation),
        test_func=answers_as_documented,
        given_kwargs={},
        feedback=_feedback(),
    )
    hypothesis_test(server=server)
