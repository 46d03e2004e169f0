"""Campaigns (CONTRACT §13): the request body of ``POST /campaigns``, the campaign, its recipients, its event."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from gateway.api.models.base import MAX_TEXT, Body, Model, described, rules
from gateway.api.models.media import MediaIn
from gateway.api.models.messages import Contacts, LocationIn, Mentions, PollIn
from gateway.api.models.requests import Phone
from gateway.api.models.responses import Time
from gateway.campaigns.model import MAX_NAME, RECIPIENT_STATUSES, STATUSES
from gateway.campaigns.pacing import DEFAULT_JITTER_PCT, DEFAULT_PER_MINUTE, MAX_JITTER_PCT, MAX_PER_MINUTE

Status = Annotated[str, rules(enum=list(STATUSES))]
HHMM = Annotated[str, rules(pattern="^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["22:00"])]


class CampaignMessageIn(Body):
    """One content field of §11 (``reaction`` aside); ``text`` and ``media.caption`` may use ``{{variables}}``."""

    text: (
        Annotated[str, rules(minLength=1, maxLength=MAX_TEXT, examples=["Hi {{name}}, your order is ready"])] | None
    ) = None
    media: Annotated[MediaIn, described("an upload from POST /media: `{id, caption?, type?, filename?}`")] | None = None
    location: LocationIn | None = None
    contacts: Contacts | None = None
    poll: PollIn | None = None
    mentions: Mentions | None = None


class RecipientIn(Body):
    __required__: ClassVar[tuple[str, ...]] = ("phone",)
    phone: Phone | None = None
    name: str | None = None
    vars: Annotated[dict[str, str], described("values for `{{variables}}`")] | None = None


class QuietHoursIn(Body):
    __required__: ClassVar[tuple[str, ...]] = ("from", "to")
    start: HHMM | None = msgspec.field(default=None, name="from")
    end: HHMM | None = msgspec.field(default=None, name="to")
    tz: Annotated[str, described("IANA time zone (default UTC)", examples=["Asia/Kuala_Lumpur"])] | None = None


class PaceIn(Body):
    per_minute: Annotated[int, rules(minimum=1, maximum=MAX_PER_MINUTE, default=DEFAULT_PER_MINUTE)] | None = None
    jitter_pct: Annotated[int, rules(minimum=0, maximum=MAX_JITTER_PCT, default=DEFAULT_JITTER_PCT)] | None = None
    daily_cap: Annotated[int, rules(minimum=1)] | None = None
    quiet_hours: QuietHoursIn | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.per_minute is not None:
            out["perMinute"] = self.per_minute
        if self.jitter_pct is not None:
            out["jitterPct"] = self.jitter_pct
        if self.daily_cap is not None:
            out["dailyCap"] = self.daily_cap
        if self.quiet_hours is not None:
            q = self.quiet_hours
            out["quietHours"] = {"from": q.start, "to": q.end, "tz": q.tz or "UTC"}
        return out


class CampaignCreate(Body):
    """``POST /campaigns``: exactly one of ``recipients``, ``recipientsCsv`` or ``contactsSource``."""

    __required__: ClassVar[tuple[str, ...]] = ("token", "name", "message")
    token: Phone | None = None
    name: Annotated[str, rules(minLength=1, maxLength=MAX_NAME, examples=["March reminders"])] | None = None
    message: CampaignMessageIn | None = None
    recipients: list[RecipientIn] | None = None
    recipients_csv: (
        Annotated[str, described("a CSV upload's id from POST /media: a header row with a `phone` column")] | None
    ) = None
    contacts_source: Annotated[str, rules(enum=["all"])] | None = None
    pace: PaceIn | None = None
    validate: Annotated[bool, described("check each number is on WhatsApp first (default true)")] | None = None
    start_at: Annotated[str, described("RFC 3339; absent: now", format="date-time")] | None = None


# --- responses ---------------------------------------------------------------------------------------


class QuietHoursOut(Model):
    start: str = msgspec.field(name="from")
    end: str = msgspec.field(name="to")
    tz: str


class PaceOut(Model):
    per_minute: int
    jitter_pct: int
    daily_cap: int | None
    quiet_hours: QuietHoursOut | None


class Campaign(Model):
    id: str
    token: str
    name: str
    status: Status
    error: Annotated[str | None, described("why a `failed` campaign stopped")]
    total: Annotated[int, described("every recipient given, skipped ones included")]
    pending: int
    sent: Annotated[int, described("cumulative: delivered and read ones included")]
    delivered: int
    read: int
    failed: int
    skipped: int
    created_at: Time
    start_at: Time | None
    started_at: Time | None
    finished_at: Time | None
    eta_at: Annotated[Time | None, described("when the last send is expected at this pace; null unless running")]
    pace: PaceOut
    validate: bool
    message: dict[str, Any]


class CampaignList(Model):
    campaigns: list[Campaign]


class CampaignRecipient(Model):
    seq: int
    phone: str
    name: str | None
    status: Annotated[str, rules(enum=list(RECIPIENT_STATUSES))]
    reason: Annotated[str | None, described("why skipped (invalid_phone, duplicate, not_on_whatsapp) or failed")]
    message_id: str | None
    sent_at: Time | None
    status_at: Time | None


class CampaignRecipientPage(Model):
    recipients: list[CampaignRecipient]
    next_after: Annotated[int | None, described("pass as `after` for the next page; null at the end")]


class CampaignProgress(Model):
    id: str
    name: str
    status: Status
    total: int
    pending: int
    sent: int
    delivered: int
    read: int
    failed: int
    skipped: int
    error: str | None
