"""Signed, expiring media links: ``GET /media/{id}?exp=…&sig=…`` works without an API key.

``sig`` is HMAC-SHA256 over ``"{id}.{exp}"`` with a server secret, base64url without
padding. The secret is generated once into ``$DATA_DIR/media_url_secret`` (0600) so
links survive a restart; deleting that file revokes every link handed out. A
tampered id, expiry or signature, or an expiry in the past, does not verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from urllib.parse import quote


def load_secret(data_dir: Path) -> bytes:
    path = data_dir / "media_url_secret"
    if path.is_file():
        raw = path.read_bytes().strip()
        if len(raw) >= 32:
            return raw
    key = secrets.token_urlsafe(48).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    return key


class UrlSigner:
    def __init__(self, secret: bytes, base_url: str, ttl_s: int) -> None:
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self.ttl_s = ttl_s

    def signature(self, media_id: str, exp: int) -> str:
        mac = hmac.new(self._secret, f"{media_id}.{exp}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def url(self, media_id: str, now: float) -> str:
        exp = int(now) + self.ttl_s
        return f"{self.base_url}/media/{quote(media_id, safe='')}?exp={exp}&sig={self.signature(media_id, exp)}"

    def verify(self, media_id: str, exp: str | None, sig: str | None, now: float) -> bool:
        if not exp or not sig or len(exp) > 12 or not exp.isdigit():
            return False
        expires = int(exp)
        if expires < now:
            return False
        return hmac.compare_digest(sig.encode(), self.signature(media_id, expires).encode())
