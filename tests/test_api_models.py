"""The API models: one decoder for every body (types → INVALID_REQUEST, naming the field), absent vs
null kept apart, and response models that refuse a shape they do not know."""

from __future__ import annotations

import msgspec
import pytest

from gateway.api.errors import ApiError
from gateway.api.models.decode import decode
from gateway.api.models.requests import DeviceCreate, DeviceUpdate, SandboxHistory, SendMessage
from gateway.api.models.responses import Contact, DeviceState, of


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "request body must be a JSON object"),
        (b"  \n", "request body must be a JSON object"),
        (b"not json", "request body is not valid JSON"),
        (b'{"token": "1"', "request body is not valid JSON"),
        (b'{"token": "\xff"}', "request body is not valid JSON"),
        (b'{"token": "\\ud800"}', "request body is not valid JSON"),  # a lone surrogate never reaches a route
        (b"[1, 2]", "request body must be a JSON object"),
        (b'"string"', "request body must be a JSON object"),
        (b"null", "request body must be a JSON object"),
        (b'{"token": 60123456789}', "'token' must be a string"),
        (b'{"token": true}', "'token' must be a string"),
        (b'{"text": ["x"]}', "'text' must be a string"),
        (b'{"to": {"a": 1}}', "'to' must be a string"),
    ],
)
def test_a_body_that_is_not_an_object_with_the_right_types_is_invalid_request(raw: bytes, message: str) -> None:
    with pytest.raises(ApiError) as err:
        decode(raw, SendMessage)
    assert (err.value.code, err.value.message) == ("INVALID_REQUEST", message)


def test_nested_type_errors_name_the_path() -> None:
    with pytest.raises(ApiError, match=r"'contacts\[1\]\.phone' must be a string"):
        decode(b'{"contacts": [{"phone": "60123456789"}, {"phone": 5}]}', SandboxHistory)
    with pytest.raises(ApiError, match=r"'contacts\[0\]' must be an object"):
        decode(b'{"contacts": [1]}', SandboxHistory)
    with pytest.raises(ApiError, match=r"'webhookEvents\[0\]' must be a string"):
        decode(b'{"webhookEvents": [1]}', DeviceCreate)


def test_missing_values_decode_so_the_ordered_checks_can_name_them() -> None:
    """A missing or null token is not a decoding error: MISSING_TOKEN comes later, in §2 order."""
    assert decode(b"{}", SendMessage) == SendMessage()
    assert decode(b'{"token": null, "to": null}', SendMessage) == SendMessage()
    assert decode(b'{"token": "6012", "unknown": [1, {"x": 2}]}', SendMessage).token == "6012"  # extra fields ignored


def test_absent_and_null_stay_different_where_null_means_clear() -> None:
    absent = decode(b'{"name": "Support"}', DeviceUpdate)
    assert absent.webhook_url is msgspec.UNSET and absent.webhook_events is msgspec.UNSET
    cleared = decode(b'{"webhookUrl": null, "webhookEvents": null}', DeviceUpdate)
    assert cleared.webhook_url is None and cleared.webhook_events is None and cleared.name is msgspec.UNSET


def test_camel_case_on_the_wire() -> None:
    body = decode(
        b'{"token": "6012", "webhookUrl": "https://x.example/h", "webhookEvents": ["contacts.new"]}', DeviceCreate
    )
    assert (body.webhook_url, body.webhook_events) == ("https://x.example/h", ["contacts.new"])


def test_response_models_refuse_a_shape_they_do_not_describe() -> None:
    """A service dict with a field the model lacks fails loudly (in the suite) instead of drifting."""
    contact = {"phone": "6012", "name": None, "source": "message", "firstSeen": "t", "lastSeen": "t"}
    assert of(Contact, contact).first_seen == "t"
    with pytest.raises(msgspec.ValidationError, match="unknown field `extra`"):
        of(Contact, {**contact, "extra": 1})
    with pytest.raises(msgspec.ValidationError):
        of(DeviceState, {"token": "6012"})


def test_response_models_encode_camel_case() -> None:
    contact = of(Contact, {"phone": "6012", "name": "Ola", "source": "history", "firstSeen": "a", "lastSeen": "b"})
    assert msgspec.to_builtins(contact) == {
        "phone": "6012",
        "name": "Ola",
        "source": "history",
        "firstSeen": "a",
        "lastSeen": "b",
    }
