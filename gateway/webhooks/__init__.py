"""Webhooks: who gets an event (routing), signing, the retry schedule, the
dispatcher that delivers the outbox, URL rules, retention and the API views.

The names most callers need are re-exported here.
"""

from __future__ import annotations

from gateway.webhooks.dispatcher import Dispatcher, Outcome
from gateway.webhooks.routing import AccountTarget, WebhookRouter, new_webhook_id
from gateway.webhooks.schedule import backoff_s, retry_after_s
from gateway.webhooks.signing import Signer, standard_key
from gateway.webhooks.views import delivery_view

__all__ = [
    "AccountTarget",
    "Dispatcher",
    "Outcome",
    "Signer",
    "WebhookRouter",
    "backoff_s",
    "delivery_view",
    "new_webhook_id",
    "retry_after_s",
    "standard_key",
]
