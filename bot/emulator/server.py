"""A local Telegram Bot API server for tests and ``baocao demo``, plus a control API to act as users."""

# Bot API (what the bot talks to, same shapes and errors as api.telegram.org)::
#
#     GET|POST {url}/bot{token}/{method}        JSON body, urlencoded form, multipart or query string
#     GET      {url}/file/bot{token}/{file_path} download of a file from getFile
#
# Point PTB at it with ``Bot(token, base_url=f"{url}/bot", base_file_url=f"{url}/file/bot")``.
# Methods: getMe, logOut, close, getUpdates (real long polling), setWebhook, deleteWebhook,
# getWebhookInfo, sendMessage, sendDocument, sendPhoto, sendLocation, sendChatAction,
# editMessageText, editMessageCaption, editMessageReplyMarkup, deleteMessage, answerCallbackQuery,
# getFile, getChat, setMyCommands, getMyCommands, deleteMyCommands, set/getMyDescription,
# set/getMyShortDescription, set/getMyName, set/getChatMenuButton. Anything else is 404 Not Found.
# parse_mode HTML is parsed and validated like Telegram (see ``tghtml``); Markdown/MarkdownV2 texts
# are accepted as they are, without entity parsing. A webhook on this machine (127.0.0.0/8, ::1,
# localhost; plain http allowed there) is called like Telegram does: each pending update is POSTed as
# JSON, in order, with ``X-Telegram-Bot-Api-Secret-Token`` when a secret was set; a non-2xx answer or
# a connection error is kept as ``last_error_message`` (getWebhookInfo) and retried with backoff.
# By default one update is in flight at a time; with ``webhook_parallel = True`` (set before start)
# delivery is like Telegram's with several connections: up to the webhook's ``max_connections`` POSTs
# at once, but one chat's updates one at a time — a chat's next update is POSTed only after the
# previous one was answered 2xx (a failure holds that chat back and retries its update first).
# Webhooks elsewhere are stored, never called. While a webhook is set getUpdates answers 409.
#
# Control API (JSON; every answer is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": ...}``
# with status 400/404)::
#
#     GET    /_emu                              health: bot identity and url
#     POST   /_emu/users                        {user_id, first_name, last_name?, username?, language_code?}
#     GET    /_emu/users                        all users
#     POST   /_emu/groups                       {chat_id (<0), title, members: [user_id, ...]}
#     POST   /_emu/users/{user_id}/send         one of {text} {photo_b64, caption?} {document_b64, filename,
#                                               mime_type?, caption?} {location: {latitude, longitude}}
#                                               {sticker: {emoji}} {voice_b64, duration?}
#                                               {contact: {phone_number, first_name?, last_name?}};
#                                               optional chat_id (a group), date (unix time),
#                                               reply_to_message_id  -> delivery
#     POST   /_emu/users/{user_id}/edit         {message_id, text, chat_id?, date?} -> delivery
#     POST   /_emu/users/{user_id}/press        {message_id, data? | text?, chat_id?, force?} -> delivery
#                                               with callback_query_id
#     POST   /_emu/block/{user_id}              the user blocks the bot (DELETE, or POST /_emu/unblock/{id})
#     POST   /_emu/groups/{chat_id}/remove_bot  the bot is kicked from the group: sends get 403 (readd_bot undoes)
#     POST   /_emu/groups/{chat_id}/readd_bot   the bot is in the group again
#     POST   /_emu/groups/{chat_id}/upgrade     {new_chat_id}: the group becomes that supergroup; sends to the old
#                                               id get 400 with migrate_to_chat_id
#     GET    /_emu/chats/{chat_id}              chat info (type, members, current reply keyboard)
#     GET    /_emu/chats/{chat_id}/messages     ?after=<message_id>&since=<event seq>&wait=<s>&count=<n>
#                                               &all=1: bot messages with id > after, plus those edited or
#                                               deleted after event ``since``; long-polls until >= n
#                                               (all=1 also lists the users' messages)
#     GET    /_emu/chats/{chat_id}/events       ?after=<seq>&wait=<s>&count=<n>&types=sent,edited,...:
#                                               bot-side events (sent, edited, deleted, answer, action)
#     GET    /_emu/events                       the same over all chats
#     GET    /_emu/callbacks/{query_id}         ?wait=<s>: the callback query and the bot's answer
#     GET    /_emu/updates                      updates queued and not yet confirmed
#     POST   /_emu/updates/{update_id}/redeliver  enqueue the same update again
#     GET    /_emu/requests                     ?method=<name>&after=<index>: the bot's request log
#     GET    /_emu/webhook                      the webhook (secret hidden) and every POST made to it
#     GET    /_emu/stats                        counters (requests, statuses, 429s, faults, updates)
#     GET|POST /_emu/flood                      FloodLimits fields, or {"enabled": false}
#                                               (sends with allow_paid_broadcast: paid_per_second, counted
#                                               in the stats as "paid_broadcast", 0.1 Star each)
#     GET|POST /_emu/faults                     FaultPlan fields, or {"enabled": false}
#     GET    /_emu/commands                     everything setMyCommands stored (scope, language, commands)
#     GET    /_emu/files/{file_id}              the raw bytes of a stored file
#
# A "delivery" is ``{update_id, chat_id, message_id, callback_query_id, update}``; a message is the
# snapshot of ``EmulatorState.snapshot`` (text as sent, plain text, entities, buttons, files, edits).

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from bot.emulator.botapi import METHODS, canonical_method, check_api_error
from bot.emulator.limits import FLOOD_METHODS, FaultInjector, FaultPlan, FloodController, FloodLimits
from bot.emulator.state import (
    DEFAULT_ALLOWED_UPDATES,
    ApiError,
    Delivery,
    EmulatorState,
    Params,
    RequestRecord,
    UploadedFile,
    bad_request,
)

__all__ = ["EmulatorServer"]

TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]{20,}$")
_NOT_FOUND = ApiError(404, "Not Found")
_CONFLICT_WEBHOOK = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
_CONFLICT_POLL = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def update_chat_key(update_id: int, payload: dict[str, Any]) -> Any:
    """The chat an update belongs to (Telegram's per-chat webhook queue), else the update itself."""
    for name, value in payload.items():
        if name == "update_id" or not isinstance(value, dict):
            continue
        for holder in (value, value.get("message")):
            if isinstance(holder, dict) and isinstance(holder.get("chat"), dict):
                return ("chat", holder["chat"].get("id"))
        sender = value.get("from") or value.get("user")
        if isinstance(sender, dict):
            return ("chat", sender.get("id"))
    return ("update", update_id)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class _ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class EmulatorServer(EmulatorState):
    """The Bot API emulator on aiohttp; run it in the current loop or in a thread of its own."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = "baocao_demo_bot",
        bot_name: str = "Báo cáo thôn (demo)",
        token: str | None = None,
        flood_control: FloodLimits | None = None,
        faults: FaultPlan | None = None,
        *,
        callback_ttl: float | None = 15.0,
        strict_html: bool = True,
        max_poll_timeout: float = 50.0,
        first_update_id: int | None = None,
    ) -> None:
        """Configure; nothing listens until ``start()`` or ``start_in_thread()``."""
        if token is not None and not TOKEN_RE.match(token):
            raise ValueError("token must look like 123456:ABC... (digits, colon, 20+ [A-Za-z0-9_-])")
        super().__init__(
            bot_id=int(token.split(":")[0]) if token else 1,
            bot_username=bot_username,
            bot_name=bot_name,
            callback_ttl=callback_ttl,
            strict_html=strict_html,
            first_update_id=first_update_id,
        )
        self.host = host
        self.port = port
        self.token = token
        self.max_poll_timeout = max_poll_timeout
        self._flood = FloodController(flood_control) if flood_control else None
        self._faults = FaultInjector(faults) if faults else None
        self._latency: dict[str, float] = {}  # method (lower case) -> seconds its answer is held after it ran
        self._poll_generation = 0
        self._waiting_polls = 0
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._pusher: asyncio.Task[None] | None = None
        self.webhook_timeout = 10.0  # seconds a webhook POST may take before it counts as failed
        self.webhook_log: list[dict[str, Any]] = []  # every webhook POST: update_id, status, error, time
        self.webhook_parallel = False  # True: several POSTs at once, one per chat (like Telegram)

    # ------------------------------------------------------------------ configuration

    @property
    def url(self) -> str:
        """Root URL, e.g. http://127.0.0.1:43211 (valid once started)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as PTB's ``base_url``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """What to pass as PTB's ``base_file_url``."""
        return f"{self.url}/file/bot"

    @property
    def flood_limits(self) -> FloodLimits | None:
        """Active flood limits, None when off."""
        return self._flood.limits if self._flood else None

    @property
    def fault_plan(self) -> FaultPlan | None:
        """Active fault plan, None when off."""
        return self._faults.plan if self._faults else None

    def set_flood_control(self, limits: FloodLimits | None) -> None:
        """Turn flood control on with ``limits`` (fresh windows) or off with None."""
        with self._lock:
            self._flood = FloodController(limits) if limits else None

    def set_latency(self, method: str, seconds: float) -> None:
        """Hold every answer to `method` `seconds` after executing it (0 removes): sends in flight."""
        with self._lock:
            if seconds > 0:
                self._latency[method.lower()] = seconds
            else:
                self._latency.pop(method.lower(), None)

    def set_faults(self, plan: FaultPlan | None) -> None:
        """Install a fault plan (streams restart from the first call) or remove it with None."""
        with self._lock:
            self._faults = FaultInjector(plan) if plan else None

    @property
    def waiting_polls(self) -> int:
        """How many getUpdates requests are being held open right now."""
        with self._lock:
            return self._waiting_polls

    @property
    def polls_started(self) -> int:
        """How many getUpdates requests have arrived so far (a request is logged only when it returns: an idle
        bot's first long poll shows in `requests_for` after its whole timeout)."""
        with self._lock:
            return self._poll_generation

    def requests_for(self, method: str) -> list[RequestRecord]:
        """Logged requests of one method (case-insensitive)."""
        with self._lock:
            return [r for r in self.requests if r.method.lower() == method.lower()]

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen in the running event loop."""
        if self._runner is not None:
            raise RuntimeError("already started")
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._stopping = False
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self._add_routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._runner = runner
        self._pusher = asyncio.create_task(self._push_webhook(), name="emulator-webhook")

    async def stop(self) -> None:
        """Release long polls and held requests, then close the listener."""
        runner, self._runner = self._runner, None
        with self._lock:
            self._stopping = True
            self._changed()
        if self._stop_event is not None:
            self._stop_event.set()
        pusher, self._pusher = self._pusher, None
        if pusher is not None:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher
        if runner is not None:
            await runner.cleanup()

    def start_in_thread(self, timeout: float = 10.0) -> EmulatorServer:
        """Run in a daemon thread with its own loop; returns once listening."""
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as err:
                failure.append(err)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="telegram-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("emulator did not start")
        if failure:
            raise failure[0]
        return self

    def stop_thread(self, timeout: float = 10.0) -> None:
        """Stop a server started with ``start_in_thread`` and join its thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = None

    async def __aenter__(self) -> EmulatorServer:
        """``async with EmulatorServer() as server``: start in this loop."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop."""
        await self.stop()

    def __enter__(self) -> EmulatorServer:
        """``with EmulatorServer() as server``: start in a thread."""
        return self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        """Stop the thread."""
        self.stop_thread()

    async def _hold(self, seconds: float) -> None:
        """Keep a request open for ``seconds`` (shorter if the server stops)."""
        assert self._stop_event is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)

    # ------------------------------------------------------------------ Bot API

    def _check_token(self, token: str) -> ApiError | None:
        if not TOKEN_RE.match(token):
            return _NOT_FOUND
        if self.token is not None and token != self.token:
            return ApiError(401, "Unauthorized")
        if self.token is None:
            with self._lock:
                self.bot_id = int(token.split(":")[0])
        return None

    async def _read_params(self, request: web.Request) -> Params:
        values: dict[str, Any] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                raw = await request.read()
                if raw.strip():
                    try:
                        body = json.loads(raw)
                    except json.JSONDecodeError:
                        raise bad_request("can't parse JSON object") from None
                    if not isinstance(body, dict):
                        raise bad_request("JSON object expected")
                    values.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = UploadedFile(value.filename, value.content_type, value.file.read())
                    else:
                        values[key] = value
        return Params(values, files)

    def _log(
        self,
        method: str,
        params: Params | None,
        wall: float,
        started: float,
        status: int,
        description: str | None,
        fault: str | None,
    ) -> None:
        with self._lock:
            self.requests.append(
                RequestRecord(
                    method=method,
                    params=params.loggable() if params is not None else {},
                    time=wall,
                    status=status,
                    description=description,
                    fault=fault,
                    duration=time.monotonic() - started,
                )
            )
            self.counters["requests"] += 1
            self.counters[f"method:{method}"] += 1
            self.counters[f"status:{status}"] += 1
            if fault and fault != "flood":
                self.counters[f"fault:{fault}"] += 1
            self._changed()

    @staticmethod
    def _api_response(result: Any = None, error: ApiError | None = None) -> web.Response:
        if error is not None:
            return web.Response(
                text=_dumps(error.to_json()), status=error.code, content_type="application/json"
            )
        return web.Response(text=_dumps({"ok": True, "result": result}), content_type="application/json")

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        """Close the connection without an answer (what a timed-out request looks like)."""
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=499)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        started, wall = time.monotonic(), self.clock()
        raw_method = request.match_info["method"]
        method = canonical_method(raw_method) or raw_method
        error = self._check_token(request.match_info["token"])
        if error is None and canonical_method(raw_method) is None:
            error = _NOT_FOUND
        params: Params | None = None
        if error is None:
            try:
                params = await self._read_params(request)
            except ApiError as err:
                error = err
        if error is not None:
            self._log(method, params, wall, started, error.code, error.description, None)
            return self._api_response(error=error)
        assert params is not None

        fault = None
        if self._faults is not None:
            with self._lock:
                fault = self._faults.decide(method)
        if fault == "timeout":
            await self._hold(self._faults.plan.hold_seconds if self._faults else 0.0)
            self._log(method, params, wall, started, 0, "dropped (timeout fault)", fault)
            return self._drop(request)
        if fault in ("429", "500", "502"):
            if fault == "429":
                retry = self._faults.plan.retry_after if self._faults else 1
                error = ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
            elif fault == "500":
                error = ApiError(500, "Internal Server Error")
            else:
                error = ApiError(502, "Bad Gateway")
            self._log(method, params, wall, started, error.code, error.description, fault)
            return self._api_response(error=error)

        paid = method in FLOOD_METHODS and params.flag("allow_paid_broadcast")
        if self._flood is not None and method in FLOOD_METHODS:
            try:
                chat_id = params.integer("chat_id")
            except ApiError:
                chat_id = None
            with self._lock:
                retry_after = self._flood.check(
                    chat_id, is_group=chat_id is not None and chat_id < 0, paid=paid
                )
                if retry_after is not None:
                    self.counters["flood_429"] += 1
            if retry_after is not None:
                error = ApiError(
                    429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
                )
                self._log(method, params, wall, started, 429, error.description, "flood")
                return self._api_response(error=error)

        try:
            if method == "getUpdates":
                result = await self._get_updates(params)
            else:
                handler = METHODS[method.lower()][1]
                assert handler is not None
                with self._lock:
                    result = handler(self, params)
        except Exception as err:
            error = check_api_error(err)
            if request.transport is None or request.transport.is_closing():
                # e.g. a long poll superseded after its client went away: nobody reads this answer
                self._log(method, params, wall, started, 499, f"client gone ({error.description})", fault)
            else:
                self._log(method, params, wall, started, error.code, error.description, fault)
            return self._api_response(error=error)
        latency = self._latency.get(method.lower(), 0.0)
        if latency > 0:  # executed (the chat shows it); the answer comes later
            await self._hold(latency)
        if fault == "timeout_after":
            await self._hold(self._faults.plan.hold_seconds if self._faults else 0.0)
            self._log(
                method, params, wall, started, 0, "executed, answer dropped (timeout_after fault)", fault
            )
            return self._drop(request)
        if paid:  # Telegram charges a delivered paid broadcast 0.1 Star
            with self._lock:
                self.counters["paid_broadcast"] += 1
        self._log(method, params, wall, started, 200, None, fault)
        return self._api_response(result)

    async def _get_updates(self, p: Params) -> list[dict[str, Any]]:
        with self._lock:
            if self.webhook is not None:
                raise ApiError(409, _CONFLICT_WEBHOOK)
            offset = p.integer("offset")
            limit = max(1, min(100, p.integer("limit", 100) or 100))
            timeout = max(0.0, min(self.max_poll_timeout, p.number("timeout", 0.0) or 0.0))
            allowed = p.obj("allowed_updates")
            if isinstance(allowed, list):
                self.allowed_updates = [str(a) for a in allowed] or None
            self._confirm(offset)
            self._poll_generation += 1
            generation = self._poll_generation
            self._waiting_polls += 1
            self._changed()

        def ready() -> list[dict[str, Any]] | str | None:
            if self._poll_generation != generation:
                return "conflict"
            if self.webhook is not None:
                return "webhook"
            return self._take_updates(limit) or None

        try:
            result = await self.wait_for(ready, timeout)
        finally:
            with self._lock:
                self._waiting_polls -= 1
                self._changed()
        if result == "conflict":
            raise ApiError(409, _CONFLICT_POLL)
        if result == "webhook":
            raise ApiError(409, _CONFLICT_WEBHOOK)
        return result if isinstance(result, list) else []

    # ------------------------------------------------------------------ webhook delivery

    def _next_for_webhook(self) -> tuple[dict[str, Any], Any] | str | None:
        """(webhook, queued update) to POST next; "stop" when stopping (call with the lock held)."""
        if self._stopping:
            return "stop"
        hook = self.webhook
        if hook is None or not hook.get("push"):
            return None
        allowed = set(self.allowed_updates) if self.allowed_updates else DEFAULT_ALLOWED_UPDATES
        for queued in self._updates:
            if queued.kind in allowed:
                return hook, queued
        return None

    async def _push_webhook(self) -> None:
        """Deliver pending updates to a loopback webhook, one at a time and in order, like Telegram."""
        if self.webhook_parallel:
            await self._push_webhook_parallel()
            return
        failures = 0
        timeout = ClientTimeout(total=self.webhook_timeout)
        async with ClientSession(timeout=timeout) as http:
            while True:
                item = await self.wait_for(self._next_for_webhook, 3600.0)
                if item == "stop":
                    return
                if not item:
                    continue
                hook, queued = item
                status, error = await self._post_update(http, hook, queued.payload)
                with self._lock:
                    self.webhook_log.append(
                        {
                            "update_id": queued.update_id,
                            "status": status,
                            "error": error,
                            "time": self.clock(),
                        }
                    )
                    if error is None:
                        queued.delivered = True
                        self._updates = [u for u in self._updates if u is not queued]
                        self.counters["webhook_delivered"] += 1
                    else:
                        self.counters["webhook_errors"] += 1
                        if self.webhook is hook:
                            hook["last_error_date"] = int(self.clock())
                            hook["last_error_message"] = error
                    self._changed()
                if error is None:
                    failures = 0
                else:
                    failures += 1
                    await self._hold(min(5.0, 0.1 * 2 ** min(failures, 6)))

    def _next_parallel(self, busy: set[Any]) -> tuple[dict[str, Any], Any, Any] | str | None:
        """(webhook, update, chat key) of the oldest update whose chat has nothing in flight (lock held)."""
        if self._stopping:
            return "stop"
        hook = self.webhook
        if hook is None or not hook.get("push"):
            return None
        if len(busy) >= max(1, int(hook.get("max_connections") or 40)):
            return None
        allowed = set(self.allowed_updates) if self.allowed_updates else DEFAULT_ALLOWED_UPDATES
        for queued in self._updates:
            key = update_chat_key(queued.update_id, queued.payload)
            if queued.kind in allowed and key not in busy:
                return hook, queued, key
        return None

    async def _push_webhook_parallel(self) -> None:
        """Up to max_connections POSTs at once, each chat's updates one after the other."""
        busy: set[Any] = set()
        failures: dict[Any, int] = {}
        tasks: set[asyncio.Task[None]] = set()
        timeout = ClientTimeout(total=self.webhook_timeout)
        async with ClientSession(timeout=timeout) as http:
            try:
                while True:
                    item = await self.wait_for(lambda: self._next_parallel(busy), 3600.0)
                    if item == "stop":
                        return
                    if not item:
                        continue
                    hook, queued, key = item
                    busy.add(key)
                    task = asyncio.create_task(self._deliver_one(http, hook, queued, key, busy, failures))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            finally:
                for task in list(tasks):
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _deliver_one(
        self,
        http: ClientSession,
        hook: dict[str, Any],
        queued: Any,
        key: Any,
        busy: set[Any],
        failures: dict[Any, int],
    ) -> None:
        """POST one update; its chat stays busy until answered (and through the backoff after a failure)."""
        try:
            status, error = await self._post_update(http, hook, queued.payload)
            with self._lock:
                self.webhook_log.append(
                    {"update_id": queued.update_id, "status": status, "error": error, "time": self.clock()}
                )
                if error is None:
                    queued.delivered = True
                    self._updates = [u for u in self._updates if u is not queued]
                    self.counters["webhook_delivered"] += 1
                    failures.pop(key, None)
                else:
                    self.counters["webhook_errors"] += 1
                    failures[key] = failures.get(key, 0) + 1
                    if self.webhook is hook:
                        hook["last_error_date"] = int(self.clock())
                        hook["last_error_message"] = error
            if error is not None:
                await self._hold(min(5.0, 0.1 * 2 ** min(failures.get(key, 1), 6)))
        finally:
            with self._lock:
                busy.discard(key)
                self._changed()

    async def _post_update(
        self, http: ClientSession, hook: dict[str, Any], payload: dict[str, Any]
    ) -> tuple[int, str | None]:
        """POST one update; (HTTP status or 0, None on success else Telegram-like error text)."""
        headers = {"Content-Type": "application/json"}
        if hook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
        try:
            async with http.post(hook["url"], data=_dumps(payload).encode(), headers=headers) as answer:
                await answer.read()
                if 200 <= answer.status < 300:
                    return answer.status, None
                return answer.status, f"Wrong response from the webhook: {answer.status} {answer.reason}"
        except TimeoutError:
            return 0, "Read timeout expired"
        except ClientError as err:
            return 0, f"Connection failed: {type(err).__name__}"

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        error = self._check_token(request.match_info["token"])
        stored = self.file_by_path(request.match_info["path"]) if error is None else None
        if stored is None:
            return self._api_response(error=error or _NOT_FOUND)
        return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")

    async def _handle_unknown(self, request: web.Request) -> web.StreamResponse:
        return self._api_response(error=_NOT_FOUND)

    # ------------------------------------------------------------------ control API

    def _add_routes(self, app: web.Application) -> None:
        routes: list[tuple[str, str, Route]] = [
            ("*", "/bot{token}/{method}", self._handle_api),
            ("GET", "/file/bot{token}/{path:.+}", self._handle_file),
            ("GET", "/_emu", self._c(self._emu_info)),
            ("GET", "/_emu/users", self._c(self._emu_users)),
            ("POST", "/_emu/users", self._c(self._emu_add_user)),
            ("POST", "/_emu/groups", self._c(self._emu_add_group)),
            ("POST", "/_emu/groups/{chat_id}/{change}", self._c(self._emu_group_change)),
            ("POST", "/_emu/users/{user_id}/send", self._c(self._emu_send)),
            ("POST", "/_emu/users/{user_id}/edit", self._c(self._emu_edit)),
            ("POST", "/_emu/users/{user_id}/press", self._c(self._emu_press)),
            ("POST", "/_emu/block/{user_id}", self._c(self._emu_block)),
            ("DELETE", "/_emu/block/{user_id}", self._c(self._emu_unblock)),
            ("POST", "/_emu/unblock/{user_id}", self._c(self._emu_unblock)),
            ("GET", "/_emu/chats/{chat_id}", self._c(self._emu_chat)),
            ("GET", "/_emu/chats/{chat_id}/messages", self._c(self._emu_messages)),
            ("GET", "/_emu/chats/{chat_id}/events", self._c(self._emu_events)),
            ("GET", "/_emu/events", self._c(self._emu_events)),
            ("GET", "/_emu/callbacks/{query_id}", self._c(self._emu_callback)),
            ("GET", "/_emu/updates", self._c(self._emu_updates)),
            ("POST", "/_emu/updates/{update_id}/redeliver", self._c(self._emu_redeliver)),
            ("GET", "/_emu/requests", self._c(self._emu_requests)),
            ("GET", "/_emu/stats", self._c(self._emu_stats)),
            ("GET", "/_emu/webhook", self._c(self._emu_webhook)),
            ("GET", "/_emu/flood", self._c(self._emu_flood)),
            ("POST", "/_emu/flood", self._c(self._emu_flood)),
            ("GET", "/_emu/faults", self._c(self._emu_faults)),
            ("POST", "/_emu/faults", self._c(self._emu_faults)),
            ("GET", "/_emu/commands", self._c(self._emu_commands)),
            ("GET", "/_emu/files/{file_id}", self._emu_file),
        ]
        for verb, path, handler in routes:
            app.router.add_route(verb, path, handler)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)

    def _c(self, func: Callable[[web.Request, dict[str, Any]], Awaitable[Any]]) -> Route:
        """Wrap a control handler: JSON in, {"ok", "result"} out, errors as 400/404."""

        async def handler(request: web.Request) -> web.StreamResponse:
            body: dict[str, Any] = {}
            if request.method == "POST" and request.can_read_body:
                try:
                    loaded = await request.json()
                except json.JSONDecodeError:
                    return self._control_error(400, "body must be a JSON object")
                if loaded is not None and not isinstance(loaded, dict):
                    return self._control_error(400, "body must be a JSON object")
                body = loaded or {}
            try:
                result = await func(request, body)
            except _ControlError as err:
                return self._control_error(err.status, str(err))
            except KeyError as err:
                return self._control_error(404, f"not found: {err.args[0] if err.args else err}")
            except (ValueError, TypeError) as err:
                return self._control_error(400, str(err))
            return web.Response(text=_dumps({"ok": True, "result": result}), content_type="application/json")

        return handler

    @staticmethod
    def _control_error(status: int, message: str) -> web.Response:
        return web.Response(
            text=_dumps({"ok": False, "error": message}), status=status, content_type="application/json"
        )

    @staticmethod
    def _int(value: Any, name: str) -> int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an integer") from None

    @staticmethod
    def _query_float(request: web.Request, name: str, default: float) -> float:
        raw = request.query.get(name)
        try:
            return float(raw) if raw not in (None, "") else default
        except ValueError:
            raise ValueError(f"{name} must be a number") from None

    async def _emu_info(self, request: web.Request, body: dict[str, Any]) -> Any:
        return {
            "url": self.url,
            "bot": {"id": self.bot_id, "username": self.bot_username, "name": self.bot_name},
            "event_seq": self.event_seq,
        }

    async def _emu_users(self, request: web.Request, body: dict[str, Any]) -> Any:
        with self._lock:
            return [u.to_dict() for u in self.users.values()]

    async def _emu_add_user(self, request: web.Request, body: dict[str, Any]) -> Any:
        user_id = self._int(body.get("user_id", body.get("id")), "user_id")
        first_name = body.get("first_name")
        if not first_name:
            raise ValueError("first_name is required")
        user = self.add_user(
            user_id,
            str(first_name),
            body.get("last_name"),
            body.get("username"),
            body.get("language_code", "vi"),
        )
        return user.to_dict()

    async def _emu_add_group(self, request: web.Request, body: dict[str, Any]) -> Any:
        chat_id = self._int(body.get("chat_id"), "chat_id")
        members = [self._int(m, "members[]") for m in body.get("members", [])]
        self.add_group(chat_id, str(body.get("title") or f"Nhóm {chat_id}"), members)
        return self.chat_info(chat_id)

    @staticmethod
    def _date(body: dict[str, Any]) -> float | None:
        date = body.get("date")
        if date is None:
            return None
        if isinstance(date, str):
            return datetime.fromisoformat(date).timestamp()
        return float(date)

    @staticmethod
    def _b64(body: dict[str, Any], key: str) -> bytes:
        try:
            return base64.b64decode(body[key], validate=True)
        except (ValueError, TypeError):
            raise ValueError(f"{key} must be base64") from None

    async def _emu_send(self, request: web.Request, body: dict[str, Any]) -> Any:
        user_id = self._int(request.match_info["user_id"], "user_id")
        chat_id = body.get("chat_id")
        chat = self._int(chat_id, "chat_id") if chat_id is not None else None
        date = self._date(body)
        common: dict[str, Any] = {"chat_id": chat, "date": date}
        delivery: Delivery
        if "text" in body:
            reply_to = body.get("reply_to_message_id")
            delivery = self.send_text(
                user_id,
                str(body["text"]),
                reply_to_message_id=self._int(reply_to, "reply_to_message_id")
                if reply_to is not None
                else None,
                **common,
            )
        elif "photo_b64" in body:
            delivery = self.send_photo(
                user_id, self._b64(body, "photo_b64"), caption=body.get("caption"), **common
            )
        elif "document_b64" in body:
            delivery = self.send_document(
                user_id,
                self._b64(body, "document_b64"),
                str(body.get("filename") or "file.bin"),
                body.get("mime_type"),
                caption=body.get("caption"),
                **common,
            )
        elif "location" in body:
            loc = body["location"]
            delivery = self.send_location(user_id, float(loc["latitude"]), float(loc["longitude"]), **common)
        elif "sticker" in body:
            delivery = self.send_sticker(user_id, str((body["sticker"] or {}).get("emoji", "👍")), **common)
        elif "voice_b64" in body:
            delivery = self.send_voice(
                user_id, self._b64(body, "voice_b64"), int(body.get("duration", 1)), **common
            )
        elif "contact" in body:
            contact = body["contact"]
            delivery = self.send_contact(
                user_id,
                str(contact["phone_number"]),
                contact.get("first_name"),
                contact.get("last_name"),
                contact_user_id=contact.get("user_id"),
                **common,
            )
        else:
            raise ValueError(
                "nothing to send: give text, photo_b64, document_b64, location, sticker, voice_b64 or contact"
            )
        return delivery.to_dict()

    async def _emu_edit(self, request: web.Request, body: dict[str, Any]) -> Any:
        user_id = self._int(request.match_info["user_id"], "user_id")
        chat_id = body.get("chat_id")
        return self.edit_text(
            user_id,
            self._int(body.get("message_id"), "message_id"),
            str(body.get("text") or ""),
            chat_id=self._int(chat_id, "chat_id") if chat_id is not None else None,
            date=self._date(body),
        ).to_dict()

    async def _emu_press(self, request: web.Request, body: dict[str, Any]) -> Any:
        user_id = self._int(request.match_info["user_id"], "user_id")
        chat_id = body.get("chat_id")
        return self.press(
            user_id,
            self._int(body.get("message_id"), "message_id"),
            body.get("data"),
            text=body.get("text"),
            chat_id=self._int(chat_id, "chat_id") if chat_id is not None else None,
            force=bool(body.get("force", False)),
        ).to_dict()

    async def _emu_block(self, request: web.Request, body: dict[str, Any]) -> Any:
        user_id = self._int(request.match_info["user_id"], "user_id")
        self.block(user_id)
        return {"user_id": user_id, "blocked": True}

    async def _emu_unblock(self, request: web.Request, body: dict[str, Any]) -> Any:
        user_id = self._int(request.match_info["user_id"], "user_id")
        self.unblock(user_id)
        return {"user_id": user_id, "blocked": False}

    async def _emu_group_change(self, request: web.Request, body: dict[str, Any]) -> Any:
        chat_id = self._int(request.match_info["chat_id"], "chat_id")
        change = request.match_info["change"]
        if chat_id not in self.chats or not self.chats[chat_id].is_group:
            raise _ControlError(404, f"no group {chat_id}")
        if change == "remove_bot":
            self.remove_bot(chat_id)
        elif change == "readd_bot":
            self.readd_bot(chat_id)
        elif change == "upgrade":
            try:
                self.upgrade_group(chat_id, self._int(body.get("new_chat_id"), "new_chat_id"))
            except ValueError as err:
                raise _ControlError(400, str(err)) from err
        else:
            raise _ControlError(404, f"unknown change {change!r}")
        return self.chat_info(chat_id)

    async def _emu_chat(self, request: web.Request, body: dict[str, Any]) -> Any:
        return self.chat_info(self._int(request.match_info["chat_id"], "chat_id"))

    def _messages_view(self, chat_id: int, after: int, since: int | None, include_users: bool) -> list[dict]:
        with self._lock:
            chat = self.chats.get(chat_id)
            if chat is None:
                return []
            touched: set[int] = set()
            if since is not None:
                touched = {
                    e["message_id"]
                    for e in self.events(chat_id, since, ("edited", "deleted"))
                    if "message_id" in e
                }
            return [
                self.snapshot(m)
                for m in sorted(chat.messages.values(), key=lambda m: m.message_id)
                if (m.from_bot or include_users) and (m.message_id > after or m.message_id in touched)
            ]

    async def _emu_messages(self, request: web.Request, body: dict[str, Any]) -> Any:
        chat_id = self._int(request.match_info["chat_id"], "chat_id")
        query = request.query
        after = self._int(query.get("after", "0"), "after")
        since = self._int(query["since"], "since") if query.get("since") else None
        count = self._int(query.get("count", "1"), "count")
        include_users = query.get("all", "") in ("1", "true")
        wait = min(self._query_float(request, "wait", 0.0), 120.0)
        await self.wait_for(
            lambda: len([m for m in self._messages_view(chat_id, after, since, False)]) >= count, wait
        )
        messages = self._messages_view(chat_id, after, since, include_users)
        last = max((m["message_id"] for m in messages), default=after)
        return {"messages": messages, "last_message_id": last, "cursor": self.event_seq}

    async def _emu_events(self, request: web.Request, body: dict[str, Any]) -> Any:
        raw_chat = request.match_info.get("chat_id")
        chat_id = self._int(raw_chat, "chat_id") if raw_chat is not None else None
        query = request.query
        after = self._int(query.get("after", "0"), "after")
        count = self._int(query.get("count", "1"), "count")
        types = [t for t in query.get("types", "").split(",") if t] or None
        wait = min(self._query_float(request, "wait", 0.0), 120.0)
        events = await self.wait_events(chat_id, after, count, wait, types)
        cursor = max((e["seq"] for e in events), default=after)
        return {"events": events, "cursor": cursor}

    async def _emu_callback(self, request: web.Request, body: dict[str, Any]) -> Any:
        query_id = request.match_info["query_id"]
        if self.callback_answer(query_id) is None:
            raise KeyError(f"callback query {query_id}")
        wait = min(self._query_float(request, "wait", 0.0), 120.0)
        await self.wait_for(lambda: self.callbacks[query_id].answered, wait)
        record = self.callback_answer(query_id)
        assert record is not None
        return record.to_dict()

    async def _emu_updates(self, request: web.Request, body: dict[str, Any]) -> Any:
        return self.pending_updates()

    async def _emu_redeliver(self, request: web.Request, body: dict[str, Any]) -> Any:
        return self.redeliver(self._int(request.match_info["update_id"], "update_id")).to_dict()

    async def _emu_requests(self, request: web.Request, body: dict[str, Any]) -> Any:
        method = request.query.get("method", "").lower()
        after = self._int(request.query.get("after", "-1"), "after")
        with self._lock:
            return [
                {"index": i, **r.to_dict()}
                for i, r in enumerate(self.requests)
                if i > after and (not method or r.method.lower() == method)
            ]

    async def _emu_stats(self, request: web.Request, body: dict[str, Any]) -> Any:
        return self.stats()

    async def _emu_webhook(self, request: web.Request, body: dict[str, Any]) -> Any:
        with self._lock:
            hook = dict(self.webhook) if self.webhook else None
            if hook is not None:
                hook["has_secret_token"] = bool(hook.pop("secret_token", None))
            return {"webhook": hook, "deliveries": list(self.webhook_log)}

    async def _emu_flood(self, request: web.Request, body: dict[str, Any]) -> Any:
        if request.method == "POST":
            if body.get("enabled", True) is False:
                self.set_flood_control(None)
            else:
                self.set_flood_control(
                    FloodLimits.from_dict({k: v for k, v in body.items() if k != "enabled"})
                )
        limits = self.flood_limits
        return {"enabled": limits is not None, **(limits.to_dict() if limits else {})}

    async def _emu_faults(self, request: web.Request, body: dict[str, Any]) -> Any:
        if request.method == "POST":
            if body.get("enabled", True) is False:
                self.set_faults(None)
            else:
                self.set_faults(FaultPlan.from_dict({k: v for k, v in body.items() if k != "enabled"}))
        plan = self.fault_plan
        return {"enabled": plan is not None, **(plan.to_dict() if plan else {})}

    async def _emu_commands(self, request: web.Request, body: dict[str, Any]) -> Any:
        return self.stored_commands()

    async def _emu_file(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            stored = self.files.get(request.match_info["file_id"])
        if stored is None:
            return self._control_error(404, "no such file")
        return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")
