"""``POST /campaigns``'s body → what the campaigns service takes, checked in the contract's order.

MISSING_TOKEN / INVALID_PHONE (token) → INVALID_REQUEST (name) → INVALID_MESSAGE (content, one
field, its rules) → INVALID_MEDIA (an upload that is unknown or expired) → INVALID_REQUEST (pace,
startAt, the recipient source) → DEVICE_NOT_FOUND → the recipients themselves (a CSV without a
``phone`` column, an empty list: INVALID_REQUEST; a template variable they cannot fill: INVALID_MESSAGE).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from gateway.api import message_content as rules
from gateway.api.errors import ApiError, invalid
from gateway.api.models.campaigns import CampaignCreate, CampaignMessageIn
from gateway.api.routes.common import principal, token_from, visible_device
from gateway.api.routes.media import media_service
from gateway.api.routes.message_media import mention_jids, spec_of
from gateway.campaigns import recipients as sources
from gateway.campaigns.content import Content, MediaPart
from gateway.campaigns.model import MAX_NAME, parse_pace, parse_start
from gateway.campaigns.pacing import Pace
from gateway.campaigns.recipients import Recipients
from gateway.media.errors import MediaError
from gateway.runtime import runtime


@dataclass(frozen=True, slots=True)
class NewCampaign:
    owner_id: int | None  # the device's account: the campaign is theirs, whoever created it
    token: str
    name: str
    content: Content
    pace: Pace
    validate: bool
    start_at: float | None


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise invalid(f"'name' must be 1 to {MAX_NAME} characters")
    return value.strip()


def _content(request: Request, m: CampaignMessageIn | None) -> Content:
    if m is None:
        raise ApiError("INVALID_MESSAGE", "'message' is required: one of text, media, location, contacts or poll")
    kind = rules.one_content(m)
    mentions = mention_jids(request, m.mentions)
    if kind == "text":
        return Content(text=rules.text(m.text, "message.text"), mentions=mentions)
    if kind == "location" and m.location is not None:
        return Content(location=rules.location(m.location), mentions=mentions)
    if kind == "contacts" and m.contacts is not None:
        return Content(contacts=rules.contacts(m.contacts), mentions=mentions)
    if kind == "poll" and m.poll is not None:
        return Content(poll=rules.poll(m.poll), mentions=mentions)
    assert m.media is not None
    spec = spec_of(m.media)
    if spec.id is None or spec.url is not None or spec.data is not None:
        raise ApiError("INVALID_MEDIA", "a campaign's 'media' is an upload: {id} from POST /media (no url or data)")
    return Content(
        media=MediaPart(
            id=spec.id, type=spec.type, caption=spec.caption, filename=spec.filename, voice_note=spec.voice_note
        ),
        mentions=mentions,
    )


async def _check_upload(request: Request, upload_id: str, what: str) -> Any:
    p = principal(request)
    try:
        return await media_service(request).get(upload_id, p.account_id, p.is_admin)
    except MediaError as exc:
        raise ApiError(
            "INVALID_MEDIA", f"{what}: no upload {upload_id!r} (unknown, expired or another account's)"
        ) from exc


async def parse(request: Request, body: CampaignCreate) -> NewCampaign:
    token = token_from(body.token, request)
    name = _name(body.name)
    content = _content(request, body.message)
    if content.media is not None:
        await _check_upload(request, content.media.id, "'message.media.id'")
    pace = parse_pace(body.pace.as_dict() if body.pace is not None else None)
    start_at = parse_start(body.start_at, runtime(request).campaigns.clock.now())
    given = [n for n, v in (("recipients", body.recipients), ("recipientsCsv", body.recipients_csv),
                            ("contactsSource", body.contacts_source)) if v is not None]  # fmt: skip
    if len(given) != 1:
        raise invalid("give exactly one of 'recipients', 'recipientsCsv' or 'contactsSource'")
    if body.contacts_source is not None and body.contacts_source != "all":
        raise invalid("'contactsSource' must be \"all\"")
    owner_id = visible_device(request, token).row.owner_id
    validate = True if body.validate is None else body.validate
    return NewCampaign(owner_id, token, name, content, pace, validate, start_at)


async def recipients_of(request: Request, body: CampaignCreate, token: str) -> Recipients:
    cc = runtime(request).settings.default_country_code
    if body.recipients is not None:
        items = [{"phone": r.phone, "name": r.name, "vars": r.vars} for r in body.recipients]
        return sources.from_inline(items, cc)
    if body.recipients_csv is not None:
        row = await _check_upload(request, body.recipients_csv, "'recipientsCsv'")
        path = media_service(request).path(row)
        return await asyncio.to_thread(sources.from_csv, path, cc)
    rt, p = runtime(request), principal(request)
    owner = None if p.is_admin else p.account_id
    pairs: list[tuple[str, str | None]] = []
    async for batch in rt.store.iter_contact_tuples(token, None, 0, owner):
        pairs.extend((str(r[0]), r[1]) for r in batch)
    return sources.from_contacts(pairs, cc)
