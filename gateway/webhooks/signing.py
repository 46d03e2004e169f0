"""Webhook signatures: the legacy hex HMAC header and Standard Webhooks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


def standard_key(secret: str) -> bytes:
    """The Standard Webhooks HMAC key: the base64-decoded rest of a ``whsec_`` secret, else its UTF-8 bytes.

    Decoded like the ``standardwebhooks`` libraries do (missing padding tolerated);
    ``ValueError`` if a ``whsec_`` secret is not base64 or decodes to nothing.
    """
    if not secret.startswith("whsec_"):
        return secret.encode()
    try:
        key = base64.b64decode(secret[len("whsec_") :] + "==", validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a whsec_ secret must be base64 after the prefix") from exc
    if not key:
        raise ValueError("a whsec_ secret must not be empty after the prefix")
    return key


class Signer:
    """Both signatures of one body: ``X-Webhook-Signature`` (hex HMAC-SHA256 of the body,
    key = the secret's UTF-8 bytes) and Standard Webhooks (``webhook-id`` /
    ``webhook-timestamp`` / ``webhook-signature: v1,<base64 HMAC of "id.ts.body">``)."""

    def __init__(self, secret: str) -> None:
        # Keyed HMAC objects are copied per message: the key schedule is done once.
        self._legacy = hmac.new(secret.encode(), digestmod=hashlib.sha256)
        self._standard = hmac.new(standard_key(secret), digestmod=hashlib.sha256)

    def legacy(self, body: bytes) -> str:
        mac = self._legacy.copy()
        mac.update(body)
        return mac.hexdigest()

    def standard(self, webhook_id: str, timestamp: int, body: bytes) -> str:
        mac = self._standard.copy()
        mac.update(f"{webhook_id}.{timestamp}.".encode())
        mac.update(body)
        return "v1," + base64.b64encode(mac.digest()).decode()

    def headers(self, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        return {
            "X-Webhook-Signature": self.legacy(body),
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": self.standard(webhook_id, timestamp, body),
        }
