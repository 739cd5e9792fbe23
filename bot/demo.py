"""`baocao demo`: the real bot against the local Bot API emulator, with a terminal chat."""

# Everything runs on 127.0.0.1 and in a data folder of its own (SQLite): the example commune is
# loaded, an invite is issued, and you chat as a village head (or as police with `--as police`).

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path

from bot.app import build_application
from bot.auth import load_actor
from bot.clock import system_clock
from bot.config import Settings
from bot.emulator.client import EmulatorClient
from bot.emulator.server import EmulatorServer
from bot.emulator.terminal import run_terminal_chat
from bot.services.accounts import create_invite
from bot.services.forms import store_setup_forms
from bot.services.setup import apply_setup
from bot.setup_file import load_setup
from bot.texts.templates import templates_dir
from storage.db import make_engine, session_scope, upgrade
from storage.models import Role

DEMO_TOKEN = "123456789:DEMOdemoDEMOdemoDEMOdemoDEMOdemo123"
DEMO_USER_ID = 700001
DEMO_POLICE_ID = 700002


def default_setup_file() -> Path:
    """The shipped example commune (Hiệp Lực)."""
    return templates_dir().parent / "deploy" / "hiep-luc.yaml"


def _prepare(settings: Settings, setup_file: Path) -> tuple[str, str]:
    """Migrate, load the example, and return (first village name, commune code)."""
    result = load_setup(setup_file)
    if result.errors:
        raise SystemExit("\n".join(str(e) for e in result.errors))
    engine = make_engine(settings.database_url)
    upgrade(engine)
    with session_scope(engine) as session:
        apply_setup(session, result.setup, now=system_clock(), actor="demo")
        store_setup_forms(session, result.setup, now=system_clock(), actor="demo")
    engine.dispose()
    commune = result.setup.communes[0]
    return commune.villages[0].name, commune.code


def _invite_or_none(
    settings: Settings, *, village: str, commune: str, police: bool, user_id: int
) -> str | None:
    """A fresh invite unless this demo user is already signed up."""
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            if not load_actor(session, user_id).is_stranger:
                return None
            role = Role.POLICE if police else Role.VILLAGE_HEAD
            kwargs = {"commune": commune} if police else {"village": village, "commune": commune}
            return create_invite(session, role=role, now=system_clock(), actor="demo", **kwargs).code
    finally:
        engine.dispose()


def _run_bot(
    settings: Settings, ready: threading.Event, stop: threading.Event, errors: list[BaseException]
) -> None:
    """Run the bot's long polling in this thread until `stop` is set."""

    async def main() -> None:
        application = build_application(settings)
        async with application:
            await application.start()
            await application.updater.start_polling(timeout=1)
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.2)
            await application.updater.stop()
            await application.stop()

    try:
        asyncio.run(main())
    except BaseException as exc:  # surfaced to the main thread
        errors.append(exc)
        ready.set()


def run_demo(
    settings: Settings, *, data_dir: Path, setup_file: str | None = None, as_police: bool = False
) -> int:
    """Start the emulator and the bot, then chat in the terminal; returns an exit code."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = replace(
        settings,
        token=DEMO_TOKEN,
        database_url=f"sqlite:///{(data_dir / 'demo.db').resolve()}",
        bot_username="baocao_demo_bot",
    )
    village, commune = _prepare(settings, Path(setup_file) if setup_file else default_setup_file())

    server = EmulatorServer(bot_username="baocao_demo_bot", token=DEMO_TOKEN)
    server.start_in_thread()
    settings = replace(settings, api_url=server.url)
    ready, stop, errors = threading.Event(), threading.Event(), []
    bot_thread = threading.Thread(target=_run_bot, args=(settings, ready, stop, errors), daemon=True)
    bot_thread.start()
    ready.wait(30)
    if errors:
        server.stop_thread()
        raise errors[0]
    user_id = DEMO_POLICE_ID if as_police else DEMO_USER_ID
    name = "Cán bộ Công an (thử)" if as_police else "Trưởng thôn (thử)"
    code = _invite_or_none(settings, village=village, commune=commune, police=as_police, user_id=user_id)
    print(f"Bot thử đang chạy trên {server.url} — dữ liệu ở {data_dir}/demo.db")
    if code:
        print(f"Mã mời: {code}  (đường link: https://t.me/baocao_demo_bot?start={code})")
    try:
        run_terminal_chat(
            EmulatorClient(server.url), user_id, name, start_text=f"/start {code}" if code else "/start"
        )
    finally:
        stop.set()
        bot_thread.join(10)
        server.stop_thread()
    return 0
