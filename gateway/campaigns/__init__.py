"""Campaigns (CONTRACT §13): durable, paced bulk sends that do not get a number banned.

One module per concept: :mod:`~gateway.campaigns.model` (statuses, pace and
start checks, the API view), :mod:`~gateway.campaigns.recipients` (inline,
CSV, contacts), :mod:`~gateway.campaigns.template` (``{{variables}}``),
:mod:`~gateway.campaigns.content` (the message), :mod:`~gateway.campaigns.pacing`
(the rules as pure functions), :mod:`~gateway.campaigns.pacer` (one pace per
device), :mod:`~gateway.campaigns.runner` (the durable loop),
:mod:`~gateway.campaigns.progress` (the event throttle),
:mod:`~gateway.campaigns.clock` and :mod:`~gateway.campaigns.service`.
"""

from gateway.campaigns.service import Campaigns

__all__ = ["Campaigns"]
