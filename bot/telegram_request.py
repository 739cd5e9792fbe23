"""The Bot API's HTTP client: python-telegram-bot's `BaseRequest` on aiohttp (`AiohttpRequest`,
`tls_context`); `BAOCAO_HTTP_CLIENT=httpx` goes back to PTB's own.

Design notes: docs/design-notes.md#bottelegram_requestpy
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import certifi
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

POOL_TIMEOUT_MESSAGE = (
    "Pool timeout: All connections in the connection pool are occupied. Request was *not* sent to "
    "Telegram. Consider adjusting the connection pool size or the pool timeout."
)


class AiohttpRequest(BaseRequest):
    """A pool of `connection_pool_size` keep-alive connections to the Bot API server, on aiohttp."""

    def __init__(
        self,
        connection_pool_size: int = 8,
        *,
        read_timeout: float | None = 20.0,
        write_timeout: float | None = 20.0,
        connect_timeout: float | None = 10.0,
        pool_timeout: float | None = 5.0,
        media_write_timeout: float | None = 60.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}
        self._tls = tls

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout (PTB adds it to getUpdates' long-poll timeout)."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the connection pool (in the running event loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._size, ssl=self._tls or tls_context())
            # not trust_env=True: aiohttp would then read the environment and ~/.netrc on every call (+0.7 ms)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.USER_AGENT}
            )
            self._slots = asyncio.Semaphore(self._size)

    async def shutdown(self) -> None:
        """Close the pool; calling it twice is harmless."""
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """One HTTP request to the Bot API: (status, body), or TimedOut / NetworkError."""
        session, slots = self._session, self._slots  # this call's pool, even if it is reopened meanwhile
        if session is None or session.closed or slots is None:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        if isinstance(read_timeout, DefaultValue):
            read_timeout = self._read_timeout
        if isinstance(connect_timeout, DefaultValue):
            connect_timeout = self._connect_timeout
        if isinstance(pool_timeout, DefaultValue):
            pool_timeout = self._pool_timeout
        if isinstance(write_timeout, DefaultValue):
            write_timeout = self._media_write_timeout if files else self._write_timeout
        parts = (connect_timeout, write_timeout, read_timeout)
        timeout = aiohttp.ClientTimeout(
            total=None if None in parts else sum(parts),
            sock_connect=connect_timeout,
            sock_read=read_timeout,
        )
        if slots.locked():  # every connection busy: wait for one, at most pool_timeout
            try:
                async with asyncio.timeout(pool_timeout):
                    await slots.acquire()
            except TimeoutError as err:
                raise TimedOut(message=POOL_TIMEOUT_MESSAGE) from err
        else:
            await slots.acquire()  # free: returns at once
        try:
            async with session.request(
                method,
                url,
                data=_body(request_data),
                timeout=timeout,
                allow_redirects=False,
                proxy=self._proxy_for(url),
            ) as response:
                return response.status, await response.read()
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err
        finally:
            slots.release()

    def _proxy_for(self, url: str) -> str | None:
        """HTTPS_PROXY / HTTP_PROXY for this server unless NO_PROXY names it (as httpx), read once per server."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if key not in self._proxies:
            bypass = parts.hostname is not None and bool(urllib.request.proxy_bypass(parts.hostname))
            self._proxies[key] = None if bypass else urllib.request.getproxies().get(parts.scheme)
        return self._proxies[key]


def tls_context(ca_file: str | None = None, ca_dir: str | None = None) -> ssl.SSLContext:
    """The certificates a Bot API server is checked against, chosen as httpx chooses them.

    A PEM bundle (`ca_file`) or else a hashed directory (`ca_dir`) when given — a self-hosted
    `telegram-bot-api` behind a private CA — otherwise certifi's bundle. Verification and host-name checks
    are always on.
    """
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    if ca_dir:
        return ssl.create_default_context(capath=ca_dir)
    return ssl.create_default_context(cafile=certifi.where())


def _body(request_data: RequestData | None) -> Any:
    """Form fields, or a multipart form when the call uploads files (as HTTPXRequest sends them).

    The fields are url-encoded here, into the very bytes and content type aiohttp makes of a dict (its
    FormData), without FormData's machinery: a fifth less of the client's CPU a call (bench/http_client.py)."""
    if request_data is None:
        return None
    fields = request_data.json_parameters
    files = request_data.multipart_data
    if not files:
        return aiohttp.payload.BytesPayload(
            urlencode(fields).encode(), content_type="application/x-www-form-urlencoded"
        )
    form = aiohttp.FormData(quote_fields=False)  # file names as UTF-8, as httpx sends them ("Báo cáo….xlsx")
    for name, value in fields.items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in files.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form
