"""The media failures a client sees, by their §11 code (the API layer turns them into envelopes).

Kept apart from ``gateway.api.errors`` so this service never imports the HTTP layer.
"""

from __future__ import annotations

from typing import Literal

MediaCode = Literal["INVALID_MEDIA", "MEDIA_TOO_LARGE", "MEDIA_FETCH_FAILED", "NOT_FOUND"]


class MediaError(Exception):
    def __init__(self, code: MediaCode, message: str) -> None:
        super().__init__(message)
        self.code: MediaCode = code
        self.message = message


def invalid_media(reason: str) -> MediaError:
    return MediaError("INVALID_MEDIA", reason)


def too_large(limit: int) -> MediaError:
    return MediaError("MEDIA_TOO_LARGE", f"media is over MEDIA_MAX_BYTES ({limit} bytes)")


def fetch_failed(reason: str) -> MediaError:
    return MediaError("MEDIA_FETCH_FAILED", reason)
