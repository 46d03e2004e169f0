"""Webhook signatures: the seed's hex HMAC header and Standard Webhooks, as receivers verify them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import time
from types import SimpleNamespace

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from gateway.settings import Settings, SettingsError
from gateway.webhooks.signing import Signer, standard_key

BODY = b'{"event":"message.received","token":"60123456789","data":{"text":"caf\xc3\xa9 \xf0\x9f\x98\x80"},"timestamp":"2026-02-17T10:30:00.000Z"}'
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

# The receiver-side check from API.md, for Node (run when `node` is installed).
NODE_VERIFY = r"""
const crypto = require("crypto");

function safeEqual(a, b) {
  const x = Buffer.from(a || ""), y = Buffer.from(b || "");
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

// rawBody: a Buffer of the exact bytes received; headers: lower-case names.
function verifyWebhook(secret, headers, rawBody) {
  const hex = crypto.createHmac("sha256", secret).update(rawBody).digest("hex");
  const legacyOk = safeEqual(hex, headers["x-webhook-signature"]);

  const key = secret.startsWith("whsec_") ? Buffer.from(secret.slice(6), "base64") : Buffer.from(secret, "utf8");
  const id = headers["webhook-id"], ts = headers["webhook-timestamp"];
  const fresh = Math.abs(Date.now() / 1000 - Number(ts)) <= 300;
  const expected = crypto.createHmac("sha256", key).update(`${id}.${ts}.`).update(rawBody).digest("base64");
  const standardOk = fresh && (headers["webhook-signature"] || "").split(" ")
    .some((s) => s.startsWith("v1,") && safeEqual(s.slice(3), expected));
  return legacyOk && standardOk;
}

const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(verifyWebhook(input.secret, input.headers, Buffer.from(input.body, "base64"))));
"""


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_hex_signature_passes_the_seed_python_snippet() -> None:
    """X-Webhook-Signature passes the seed doc's Python check, run as written."""
    webhook_secret = "s3cret-ü"
    headers = Signer(webhook_secret).headers("msg_1", int(time.time()), BODY)
    request = SimpleNamespace(body=BODY, headers=headers)
    # --- the seed snippet, verbatim ---
    expected = hmac.new(webhook_secret.encode(), request.body, hashlib.sha256).hexdigest()

    assert request.headers["X-Webhook-Signature"] == expected


def test_hex_signature_is_the_php_and_go_computation() -> None:
    """PHP hash_hmac('sha256', body, secret) and Go hmac.New(sha256.New, []byte(secret)) give lower-case hex of the same MAC."""
    sig = Signer("k").legacy(BODY)
    assert sig == hmac.new(b"k", BODY, hashlib.sha256).hexdigest()
    assert len(sig) == 64 and sig == sig.lower()


def test_standard_signature_verifies_with_whsec_secret() -> None:
    """A whsec_ secret: standardwebhooks' Webhook(secret).verify accepts the headers and returns the body."""
    headers = Signer(WHSEC).headers("msg_abc", int(time.time()), BODY)
    assert Webhook(WHSEC).verify(BODY, headers) == json.loads(BODY)


def test_standard_signature_matches_the_spec_test_vector() -> None:
    """The Standard Webhooks reference vector (svix) is reproduced exactly."""
    sig = Signer(WHSEC).standard("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_plain_secret_uses_its_utf8_bytes_as_the_standard_key() -> None:
    """A non-whsec secret keys both signatures with its UTF-8 bytes (verify with base64 of those bytes)."""
    secret = "plain-secret-é"
    headers = Signer(secret).headers("msg_x", int(time.time()), BODY)
    assert standard_key(secret) == secret.encode()
    Webhook(base64.b64encode(secret.encode()).decode()).verify(BODY, headers)
    assert headers["X-Webhook-Signature"] == hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()


def test_wrong_secret_or_altered_body_fails_verification() -> None:
    """Another secret, or one changed byte of the body, is rejected by both checks."""
    headers = Signer(WHSEC).headers("msg_abc", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"other-key").decode()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(WHSEC).verify(BODY.replace(b"60123", b"60124"), headers)
    assert headers["X-Webhook-Signature"] != Signer("other").legacy(BODY)


def test_id_is_signed_and_timestamp_is_per_attempt() -> None:
    """Same id, later timestamp → a different v1 signature; both verify; the hex one does not change."""
    signer, now = Signer(WHSEC), int(time.time())
    first, second = signer.headers("msg_same", now - 60, BODY), signer.headers("msg_same", now, BODY)
    assert first["webhook-id"] == second["webhook-id"]
    assert first["webhook-signature"] != second["webhook-signature"]
    assert first["X-Webhook-Signature"] == second["X-Webhook-Signature"]
    for headers in (first, second):
        Webhook(WHSEC).verify(BODY, headers)
    forged = {**second, "webhook-id": "msg_other"}
    with pytest.raises(WebhookVerificationError):
        Webhook(WHSEC).verify(BODY, forged)


def test_unpadded_whsec_secret_decodes_like_the_libraries() -> None:
    """A whsec_ secret without base64 padding still decodes (as standardwebhooks does)."""
    secret = "whsec_" + base64.b64encode(b"sixteen-byte-key!").decode().rstrip("=")
    headers = Signer(secret).headers("msg_p", int(time.time()), BODY)
    Webhook(secret).verify(BODY, headers)


@pytest.mark.parametrize("secret", ["whsec_", "whsec_abcde"])
def test_bad_whsec_secret_stops_startup(secret: str) -> None:
    """WEBHOOK_SECRET=whsec_<not base64> is a configuration error naming the variable."""
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        Settings.from_env({"WEBHOOK_SECRET": secret}, dotenv=False)
    with pytest.raises(ValueError):
        standard_key(secret)


@pytest.mark.parametrize("secret", [WHSEC, "plain-secret-é"])
def test_node_snippet_from_api_docs_verifies_both_signatures(secret: str) -> None:
    """The Node verification code given in API.md accepts a real signed body, and rejects a tampered one."""
    assert shutil.which("node"), "node is missing: `make test` installs it (apt-get install -y nodejs)"
    headers = _lower(Signer(secret).headers("msg_node", int(time.time()), BODY))

    def run(body: bytes) -> bool:
        payload = json.dumps({"secret": secret, "headers": headers, "body": base64.b64encode(body).decode()})
        out = subprocess.run(["node", "-e", NODE_VERIFY], input=payload, capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        return bool(json.loads(out.stdout))

    assert run(BODY) is True
    assert run(BODY + b" ") is False
