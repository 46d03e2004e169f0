"""A client generated from the live OpenAPI document by ``openapi-python-client`` drives the sandbox.

The integrator's first hour (issue 18): generate a client, pair a device, scan, send, validate,
list contacts, download the contacts CSV and the QR PNG — every call through generated code,
every answer parsed into generated models. Generation runs offline, once per session.
"""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
import zxingcpp
from PIL import Image

from gateway.api.openapi import document
from tests.support.constants import API_KEY, OTHER, TOKEN
from tests.support.gateway import Gateway
from tests.support.poll import until

PACKAGE = "wa_gateway_client"
# openapi-python-client reads only JSON, text/* and octet-stream bodies; images are files to it.
CONFIG = """\
post_hooks: []
content_type_overrides:
  image/png: application/octet-stream
  image/svg+xml: application/octet-stream
"""


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, dict[str, Any]]:
    """The generated package (imported) and the document it was generated from."""
    root = tmp_path_factory.mktemp("generated")
    spec = document(sandbox=True)
    (root / "openapi.json").write_bytes(orjson.dumps(spec))
    (root / "config.yaml").write_text(CONFIG)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(root / "openapi.json"),
            "--config",
            str(root / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(root / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Warning" not in output, output  # every operation and schema understood
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(PACKAGE), spec
    finally:
        sys.path.remove(str(root))


def api(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def models() -> Any:
    return importlib.import_module(f"{PACKAGE}.models")


def test_every_operation_becomes_a_named_function(generated: tuple[ModuleType, dict[str, Any]]) -> None:
    """Functions are named after the operationIds (not paths), and errors share one Error class."""
    _, spec = generated
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values() if isinstance(op, dict)]
    assert len(ids) == len(set(ids))
    for path, item in spec["paths"].items():
        for op in item.values():
            module = api(op["tags"][0] + "." + _snake(op["operationId"]))
            assert callable(module.asyncio_detailed), path
    assert hasattr(models(), "Error") and not hasattr(models(), "PairDeviceResponse400")


async def test_sandbox_flow_through_the_generated_client(
    gw: Gateway, generated: tuple[ModuleType, dict[str, Any]]
) -> None:
    """Pair, scan, send, validate, list contacts, download CSV and QR PNG — all generated code."""
    package, spec = generated
    assert (await gw.anon.get("/openapi.json")).json() == spec  # generated from the live document
    m = models()
    client = package.AuthenticatedClient(base_url=gw.base, token=API_KEY)
    # The generated code over the gateway's own transport (in-process, or a socket when live).
    client.set_async_httpx_client(gw.client(headers={"Authorization": f"Bearer {API_KEY}"}))
    opened = await api("devices.pair_device").asyncio(client=client, body=m.DeviceCreate(token=TOKEN))
    assert isinstance(opened, m.DeviceOpenedEnvelope) and opened.success
    assert opened.data.status == m.DeviceStatus.PAIRING

    qr = await _wait_for_qr(client, m)
    png = await api("devices.get_device_qr_png").asyncio(TOKEN, client=client)
    image = png.payload.read()
    assert image.startswith(b"\x89PNG")
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(image)))
    assert [d.text for d in decoded] == [qr]

    scanned = await api("sandbox.sandbox_scan").asyncio(TOKEN, client=client)
    assert scanned.data.status == m.DeviceStatus.CONNECTED and scanned.data.ready

    sent = await api("messages.send_message").asyncio(
        client=client, body=m.SendMessage(token=TOKEN, to=OTHER, text="Hello from a generated client")
    )
    assert isinstance(sent, m.MessageSentEnvelope), sent
    assert sent.data.message_id.startswith("3EB0")

    checked = await api("messages.validate_phone").asyncio(
        client=client, body=m.ValidatePhone(token=TOKEN, phone=OTHER)
    )
    assert checked.data.is_on_whats_app is True and checked.data.phone == OTHER

    incoming = await api("sandbox.sandbox_incoming").asyncio(
        TOKEN, client=client, body=m.SandboxIncoming(from_=OTHER, name="Ola", text="hi")
    )
    assert incoming.data.from_ == OTHER

    # The sandbox answers once the message is handed to the device; its pump stores the contact just after.
    async def stored() -> Any:
        page = await api("contacts.list_contacts").asyncio(TOKEN, client=client, limit=100)
        assert isinstance(page, m.ContactPageEnvelope), page
        return page if page.data.total else None

    page = await until(stored, 10, "the contact stored")
    assert page.data.limit == 100 and page.data.total == 1
    assert [(c.phone, c.name) for c in page.data.contacts] == [(OTHER, "Ola")]

    csv = await api("contacts.export_contacts_csv").asyncio(TOKEN, client=client, limit="all")
    lines = csv.splitlines()
    assert lines[0] == "phone,name,source,first_seen,last_seen"
    assert lines[1].startswith(f"{OTHER},Ola,message,")

    missing = await api("devices.get_device").asyncio("60171222333", client=client)
    assert isinstance(missing, m.Error) and missing.error.code == m.ErrorCode.DEVICE_NOT_FOUND


async def _wait_for_qr(client: Any, m: Any) -> str:
    async def qr() -> str | None:
        got = await api("devices.get_device_qr").asyncio(TOKEN, client=client)
        assert isinstance(got, m.QrCodeEnvelope), got
        return str(got.data.qr) if got.data.has_qr else None

    return str(await until(qr, 10, "a QR code"))


def _snake(name: str) -> str:
    out = "".join("_" + c.lower() if c.isupper() else c for c in name)
    return out.lstrip("_")


def test_generated_package_is_importable(generated: tuple[ModuleType, dict[str, Any]]) -> None:
    package, _ = generated
    assert Path(package.__file__).parent.name == PACKAGE
