"""Request bodies that carry media: a streamed ``multipart/form-data`` reader and a raw-body reader.

Both write the file's bytes straight into a spool (gateway.media.storage) as they
arrive — hashed on the way, never held whole in memory — so a 50 MB upload costs
a 64 KiB buffer. Text fields of a multipart body are small and capped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from gateway.api.errors import ApiError, invalid
from gateway.media.storage import Spool

MAX_FIELD = 64 * 1024  # a caption of 65,536 characters fits (JSON's text limit)
MAX_FIELDS = 32
FILE_FIELD = "file"


@dataclass(slots=True)
class Multipart:
    fields: dict[str, str] = field(default_factory=dict)
    has_file: bool = False
    filename: str | None = None
    content_type: str | None = None


def content_type(request: Request) -> tuple[str, dict[bytes, bytes]]:
    raw = request.headers.get("content-type", "")
    kind, params = parse_options_header(raw)
    return kind.decode("latin-1").lower(), params


def is_multipart(request: Request) -> bool:
    """On every send: the media type alone, compared without parsing the header's parameters."""
    return request.headers.get("content-type", "").partition(";")[0].strip().lower() == "multipart/form-data"


async def read_multipart(request: Request, spool: Spool) -> Multipart:
    """Parse the body; the ``file`` part goes into ``spool``. INVALID_REQUEST on a malformed body;
    a second ``file`` part is INVALID_MEDIA (one source per message)."""
    _kind, params = content_type(request)
    boundary = params.get(b"boundary")
    if not boundary:
        raise invalid("multipart body without a boundary")
    out = Multipart()
    state: dict[str, object] = {}
    headers: dict[bytes, bytes] = {}
    header_field = bytearray()
    header_value = bytearray()
    value = bytearray()

    def on_part_begin() -> None:
        headers.clear()
        value.clear()
        state.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers[bytes(header_field).lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _disp, opts = parse_options_header(headers.get(b"content-disposition", b""))
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        state["name"] = name
        if name == FILE_FIELD:
            if out.has_file:
                raise ApiError("INVALID_MEDIA", "only one 'file' part is allowed")
            out.has_file = True
            filename = opts.get(b"filename")
            out.filename = filename.decode("utf-8", "replace") if filename else None
            ctype = headers.get(b"content-type")
            out.content_type = ctype.decode("latin-1") if ctype else None
        elif len(out.fields) >= MAX_FIELDS:
            raise invalid("too many multipart fields")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state.get("name") == FILE_FIELD:
            spool.write(memoryview(data)[start:end])
        else:
            value.extend(data[start:end])
            if len(value) > MAX_FIELD:
                raise invalid(f"multipart field '{state.get('name')}' is over {MAX_FIELD} bytes")

    def on_part_end() -> None:
        name = state.get("name")
        if isinstance(name, str) and name and name != FILE_FIELD:
            try:
                out.fields[name] = value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise invalid(f"multipart field '{name}' is not UTF-8") from exc

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except (ApiError, ValueError) as exc:
        if isinstance(exc, ApiError):
            raise
        raise invalid(f"malformed multipart body: {exc}") from exc
    return out


async def read_raw(request: Request, spool: Spool) -> None:
    async for chunk in request.stream():
        if chunk:
            spool.write(chunk)
