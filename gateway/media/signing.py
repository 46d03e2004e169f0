"""Signed, expiring media links: ``GET /media/{id}?exp=…&sig=…`` works without an API key.

``sig`` is HMAC-SHA256 over ``"{id}.{exp}"`` with a server secret, base64url without
padding. The secret is generated once into ``$DATA_DIR/media_url_secret`` (0600) so
links survive a restart; deleting that file revokes every link handed out. In a
cluster it lives beside the shared media files instead (MEDIA_DIR), so a link made
by one node opens on every other; the first node to start creates it, atomically
(a second one starting at the same moment reads the first one's). A tampered id,
expiry or signature, or an expiry in the past, does not verify.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import quote


def load_secret(directory: Path) -> bytes:
    path = directory / "media_url_secret"
    for _ in range(3):
        with contextlib.suppress(FileNotFoundError):
            raw = path.read_bytes().strip()
            if len(raw) >= 32:
                return raw
            path.unlink()  # too short to be ours: made again
        key = secrets.token_urlsafe(48).encode()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".media_url_secret-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(key + b"\n")
            try:
                os.link(tmp, path)  # create-if-absent: a node starting at the same moment wins or loses whole
            except FileExistsError:
                continue  # another node's: read it
            return key
        finally:
            os.unlink(tmp)
    raise OSError(f"could not create or read {path}")


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
