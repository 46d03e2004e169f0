"""Which secret signs a delivery (issue 13 §5).

Every outbox row records what kind of target it goes to (``target``):

- ``operator`` — the operator's ``WEBHOOK_URL``: signed with ``WEBHOOK_SECRET`` (unsigned without it);
- ``device`` — a device's own ``webhookUrl``: signed with the device's secret when it has one, else
  with its owner's: the account's secret, or for a device of the admin (no account) ``WEBHOOK_SECRET``;
- ``account`` — an account's own ``webhookUrl``: signed with the account's secret.

The secret is looked up when the attempt is made, so a retry after a rotation is signed with the
new secret. For :data:`ROTATION_GRACE_S` after an account rotates its secret, its deliveries carry
a second Standard Webhooks signature made with the previous one (``webhook-signature`` holds
several, space-separated); ``X-Webhook-Signature`` (one hex value) is made with the new secret only.
A tenant's secret never signs another tenant's delivery, and ``WEBHOOK_SECRET`` never signs a tenant's.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.webhooks.signing import Signer

TARGET_OPERATOR = "operator"
TARGET_DEVICE = "device"
TARGET_ACCOUNT = "account"
TARGETS = (TARGET_OPERATOR, TARGET_DEVICE, TARGET_ACCOUNT)

ROTATION_GRACE_S = 24 * 3600  # the previous account secret still signs (second signature) this long
SECRET_BYTES = 32
MIN_SECRET_CHARS = 16  # a device secret chosen by a user: at least this long
MAX_SECRET_CHARS = 256
MIN_KEY_BYTES = 16  # a whsec_ device secret must decode to at least this many bytes
_SIGNER_CACHE = 10_000


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks format: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@dataclass(frozen=True, slots=True)
class AccountSecret:
    """An account's signing secret, and the one it replaced while that is still honoured."""

    current: str
    previous: str | None = None
    previous_until: float | None = None  # unix seconds


class SigningKeys:
    """The secrets that sign deliveries, by target; kept current by the services that change them.

    ``accounts`` is filled by the accounts service (at start and on every rotation); a device's
    secret is read from the live device through ``device_secret`` (bound once the device manager
    exists: :meth:`bind_devices`).
    """

    def __init__(self, operator_secret: str | None, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.operator = Signer(operator_secret) if operator_secret else None
        self.accounts: dict[int, AccountSecret] = {}
        self._device_secret: Callable[[str], str | None] = lambda token: None
        self._signers: dict[str, Signer] = {}

    def bind_devices(self, device_secret: Callable[[str], str | None]) -> None:
        self._device_secret = device_secret

    def set_account(self, account_id: int, secret: AccountSecret) -> None:
        self.accounts[account_id] = secret

    def forget_account(self, account_id: int) -> None:
        self.accounts.pop(account_id, None)

    def signers(self, target: str | None, owner_id: int | None, token: str | None) -> list[Signer]:
        """The signers of a delivery, the current secret first (empty: unsigned)."""
        if target == TARGET_DEVICE and token is not None:
            own = self._device_secret(token)
            if own:
                return [self._signer(own)]
        if target in (TARGET_DEVICE, TARGET_ACCOUNT) and owner_id is not None:
            account = self.accounts.get(owner_id)
            if account is None:
                return []
            out = [self._signer(account.current)]
            until = account.previous_until
            if account.previous and until is not None and self.clock() < until:
                out.append(self._signer(account.previous))
            return out
        # The operator's own URL; or a device of the admin (no account) without a secret of its own.
        if target == TARGET_ACCOUNT:
            return []
        return [self.operator] if self.operator is not None else []

    def headers(
        self, target: str | None, owner_id: int | None, token: str | None, webhook_id: str, timestamp: int, body: bytes
    ) -> dict[str, str]:
        """The signature headers of one attempt (none when the target is unsigned)."""
        signers = self.signers(target, owner_id, token)
        if not signers:
            return {}
        headers = signers[0].headers(webhook_id, timestamp, body)
        if len(signers) > 1:
            headers["webhook-signature"] = " ".join(s.standard(webhook_id, timestamp, body) for s in signers)
        return headers

    def _signer(self, secret: str) -> Signer:
        signer = self._signers.get(secret)
        if signer is None:
            if len(self._signers) >= _SIGNER_CACHE:
                self._signers.clear()
            signer = self._signers[secret] = Signer(secret)
        return signer


def check_device_secret(value: str) -> str | None:
    """Why ``value`` cannot be a device's webhook secret (None when it can)."""
    if not MIN_SECRET_CHARS <= len(value) <= MAX_SECRET_CHARS:
        return f"'webhookSecret' must be {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} characters"
    if not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
        return "'webhookSecret' must be printable ASCII without spaces"
    if value.startswith("whsec_"):
        try:
            key = base64.b64decode(value[6:] + "=" * (-len(value[6:]) % 4), validate=True)
        except ValueError:
            return "'webhookSecret': a whsec_ secret must be base64 after the prefix"
        if len(key) < MIN_KEY_BYTES:
            return f"'webhookSecret': a whsec_ secret must decode to at least {MIN_KEY_BYTES} bytes"
    return None
