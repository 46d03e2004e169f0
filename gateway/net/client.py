"""The gateway's one HTTP client for URLs it is given (webhook targets, media URLs).

:class:`GuardedClient` owns two ``aiohttp`` sessions with the same limits, one per trust level:

- **guarded** — for URLs a tenant set: its connector resolves through
  :class:`~gateway.net.resolver.GuardedResolver`, so only public addresses are ever connected to
  (and the address connected to is the one checked); literal IP hosts are checked here, since
  aiohttp does not ask a resolver about them;
- **trusted** — for the operator's own targets (``WEBHOOK_URL``) and when the operator allows
  private addresses (``WEBHOOK_ALLOW_PRIVATE``, ``MEDIA_FETCH_ALLOW_PRIVATE``).

Two sessions rather than a flag per request, so that a pooled connection or a cached DNS answer
obtained for a trusted target can never serve a guarded one.

Both: no proxies or settings from the environment, no cookies, no redirects (a caller that follows
them does so hop by hop, each hop through the guard again), response head bounded (line and field
sizes, header count), bodies read only as far as the caller asks (:meth:`post` reads at most
``max_body`` bytes and drops the connection rather than read more), no decompression (no
decompression bombs: ``Accept-Encoding: identity`` is asked for and nothing is inflated), TLS
certificates verified, a bounded keep-alive pool. No timeout of its own but :meth:`post`'s
``timeout_s``: callers bound the whole exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

import gateway
from gateway.net.addresses import host_refused
from gateway.net.errors import BadResponse, Blocked, BlockedAddress, ConnectFailed, InvalidUrl, NetError
from gateway.net.resolver import GuardedResolver

USER_AGENT = f"wa-gateway/{gateway.__version__}"
MAX_BODY = 64 * 1024  # a webhook receiver's answer is not read past this
MAX_LINE = 8190  # status line, and each header line
MAX_HEADERS = 128
KEEPALIVE_S = 4.0  # below common servers' keep-alive timeouts (uvicorn: 5 s)
_URL_CACHE = 10_000


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete answer to :meth:`GuardedClient.post` (the body, read up to the cap, is discarded)."""

    status: int
    headers: Mapping[str, str]


class Response:
    """A streamed answer (:meth:`GuardedClient.get`): status and headers now, the body as it comes."""

    def __init__(self, raw: aiohttp.ClientResponse) -> None:
        self._raw = raw
        self.status = raw.status
        self.headers: Mapping[str, str] = raw.headers

    async def chunks(self, size: int = 1 << 16) -> AsyncIterator[bytes]:
        """The body, in chunks of at most ``size`` bytes; :class:`BadResponse` if it breaks off."""
        with _translated():
            async for chunk in self._raw.content.iter_chunked(size):
                yield chunk


class GuardedClient:
    """See the module docstring. Build it inside the running loop; :meth:`close` it at shutdown."""

    def __init__(
        self,
        *,
        limit: int = 256,
        limit_per_host: int = 0,
        keepalive_s: float = KEEPALIVE_S,
        max_body: int = MAX_BODY,
        resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.max_body = max_body
        tls = ssl_context if ssl_context is not None else ssl.create_default_context()

        def session(resolver: AbstractResolver | None, dns_cache: bool) -> aiohttp.ClientSession:
            connector = aiohttp.TCPConnector(
                limit=limit,
                limit_per_host=limit_per_host,
                keepalive_timeout=keepalive_s,
                resolver=resolver,
                use_dns_cache=dns_cache,
                ssl=tls,
            )
            return aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None),
                max_line_size=MAX_LINE,
                max_field_size=MAX_LINE,
                max_headers=MAX_HEADERS,
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
                raise_for_status=False,
            )

        # The guarded side resolves every new connection afresh (no DNS cache): what is checked is
        # what is connected to, and no answer outlives the connection it was checked for.
        self._guard = GuardedResolver(resolver)
        self._guarded = session(self._guard, dns_cache=False)
        self._trusted = session(resolver, dns_cache=True)  # None: the connector's own default resolver
        self._urls: dict[str, URL] = {}

    async def close(self) -> None:
        await self._guarded.close()
        await self._trusted.close()
        await self._guard.close()  # a resolver handed to a connector is not closed by it

    # --- requests ------------------------------------------------------------------------

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, guarded: bool, timeout_s: float
    ) -> Reply:
        """POST ``body`` and read the answer (at most ``max_body`` bytes of it), all within ``timeout_s``.

        Returns only a complete answer: a body cut short by a closed connection raises
        :class:`BadResponse`, never a :class:`Reply`. Raises ``TimeoutError`` or a :class:`NetError`.
        """
        session, target = self._prepare(url, guarded)
        async with asyncio.timeout(timeout_s):
            with _translated():
                async with session.post(target, data=body, headers=headers, allow_redirects=False) as raw:
                    left = self.max_body
                    while left > 0:  # read what the receiver sent, up to the cap; past it, drop the connection
                        chunk = await raw.content.read(left)
                        if not chunk:
                            break
                        left -= len(chunk)
                    return Reply(raw.status, raw.headers)

    @contextlib.asynccontextmanager
    async def get(
        self, url: str, *, guarded: bool, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[Response]:
        """GET ``url`` (no redirect followed); the body streams from :meth:`Response.chunks`.
        The caller bounds the time (``asyncio.timeout`` around the whole use)."""
        session, target = self._prepare(url, guarded)
        with _translated():
            async with session.get(target, headers=headers, allow_redirects=False) as raw:
                yield Response(raw)

    def _prepare(self, url: str, guarded: bool) -> tuple[aiohttp.ClientSession, URL]:
        target = self._urls.get(url)
        if target is None:
            try:
                target = URL(url)
            except (ValueError, TypeError) as exc:
                raise InvalidUrl("not a valid URL") from exc
            if target.scheme not in ("http", "https") or not target.host:
                raise InvalidUrl("not an http(s) URL")
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()
            self._urls[url] = target
        if not guarded:
            return self._trusted, target
        assert target.host is not None
        if host_refused(target.host):  # a literal address or a local name: no resolver is asked
            raise Blocked(f"{target.host} is a loopback, private or otherwise non-public address")
        return self._guarded, target


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """aiohttp's exceptions → :class:`NetError` subclasses (and ``TimeoutError``), with short messages."""
    try:
        yield
    except aiohttp.ClientConnectorDNSError as exc:
        if isinstance(exc.os_error, BlockedAddress):
            raise Blocked(str(exc.os_error)) from exc
        raise ConnectFailed(f"{exc.host} does not resolve") from exc
    except aiohttp.ClientConnectorCertificateError as exc:
        raise ConnectFailed(f"TLS certificate of {exc.host} refused: {exc.certificate_error}") from exc
    except aiohttp.ClientConnectorSSLError as exc:
        raise ConnectFailed(f"TLS with {exc.host} failed") from exc
    except aiohttp.ClientConnectorError as exc:
        raise ConnectFailed(f"{exc.host}:{exc.port}: {exc.strerror or exc.os_error}") from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise BadResponse("the connection closed before a complete response") from exc
    except aiohttp.ClientPayloadError as exc:
        raise BadResponse("the response body broke off before its end") from exc
    except aiohttp.ClientResponseError as exc:  # the head could not be parsed, or was too large
        raise BadResponse(f"malformed response: {exc.message}") from exc
    except aiohttp.ClientOSError as exc:
        raise BadResponse(f"connection error: {exc.strerror or exc}") from exc
    except aiohttp.InvalidURL as exc:
        raise InvalidUrl("not a valid URL") from exc
    except aiohttp.ClientError as exc:
        raise NetError(f"{type(exc).__name__}: {exc}") from exc
