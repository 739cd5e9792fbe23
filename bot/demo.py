"""`baocao demo`: the real bot against the local Bot API emulator, with a terminal chat in both roles."""

# Everything runs on 127.0.0.1 and in a data folder of its own (SQLite): the example commune is loaded
# with a police group that exists in the emulator, a village head and a police officer are signed up,
# a "Kỳ thử" period opens today with its reminder and deadline minutes ahead, and the reminder
# scheduler runs as in `baocao run`. You chat as the head, the officer or in the police group and
# switch with `:head`, `:police`, `:group`. Logs go to demo.log; files the bot sends to tep/.

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import select

from bot.app import build_application
from bot.auth import load_actor
from bot.calendar.periods import Schedule
from bot.calendar.reminder_rules import NO_QUIET, After, Before, ReminderRules
from bot.clock import Clock, system_clock
from bot.config import Settings
from bot.emulator.client import EmulatorClient
from bot.emulator.server import EmulatorServer
from bot.emulator.terminal import WorldChat, run_world_chat
from bot.logging_setup import configure_file_logging
from bot.services.accounts import create_invite
from bot.services.forms import store_setup_forms
from bot.services.setup import apply_setup
from bot.setup_file import load_setup
from bot.setup_file.specs import CommuneSpec, PoliceChatSpec, SetupFile
from bot.texts.templates import templates_dir
from storage.db import make_engine, session_scope, upgrade
from storage.models import Commune, Period, Role

log = logging.getLogger(__name__)

DEMO_TOKEN = "123456789:DEMOdemoDEMOdemoDEMOdemoDEMOdemo123"
DEMO_USER_ID = 700001
DEMO_POLICE_ID = 700002
DEMO_GROUP_ID = -1000000700003
DEMO_GROUP_TITLE = "Công an xã (nhóm thử)"
HEAD_NAME = "Trưởng thôn (thử)"
POLICE_NAME = "Cán bộ Công an (thử)"
DEMO_PERIOD_PREFIX = "thu-"
DEMO_TICK_SECONDS = 1.0  # the demo plans and sends reminders every second (`baocao run`: 30 s)
DEFAULT_REMINDER_IN = 60.0  # seconds from the start to the reminder
DEFAULT_DEADLINE_AFTER = 3  # minutes from the reminder to the deadline (the digest; the summary 2 min later)


def default_setup_file() -> Path:
    """The shipped example commune (Hiệp Lực)."""
    return templates_dir().parent / "deploy" / "hiep-luc.yaml"


@dataclass(frozen=True)
class DemoPlan:
    """What the demo world holds: the commune, its first village and the form of the demo period."""

    commune: str
    village: str
    form: str | None  # the main periodic form; None when the setup has no schedule


def _main_schedule(spec: CommuneSpec) -> Schedule | None:
    """The schedule marked `main`, else the first one."""
    return next((s for s in spec.schedules if s.main), spec.schedules[0] if spec.schedules else None)


def demo_commune(spec: CommuneSpec, *, deadline_after: int) -> CommuneSpec:
    """The commune as the demo runs it: alerts to the demo police group, no quiet hours, and the main
    form reminding `deadline_after` minutes before its deadline (once; no overdue reminders)."""
    main = _main_schedule(spec)
    rules = ReminderRules((Before("demo", timedelta(minutes=deadline_after)),), After(timedelta(days=1), 0))
    schedules = tuple(replace(s, reminders=rules) if s is main else s for s in spec.schedules)
    return replace(
        spec,
        police_chats=(PoliceChatSpec(DEMO_GROUP_ID, DEMO_GROUP_TITLE),),
        quiet_hours=NO_QUIET,
        schedules=schedules,
    )


def _prepare(settings: Settings, setup_file: Path, *, deadline_after: int, now: datetime) -> DemoPlan:
    """Migrate, load the example (adapted by `demo_commune`), and say what the demo uses."""
    result = load_setup(setup_file)
    if result.errors or result.setup is None:
        raise SystemExit("\n".join(str(e) for e in result.errors))
    first = demo_commune(result.setup.communes[0], deadline_after=deadline_after)
    setup: SetupFile = replace(result.setup, communes=(first, *result.setup.communes[1:]))
    engine = make_engine(settings.database_url)
    upgrade(engine)
    with session_scope(engine) as session:
        apply_setup(session, setup, now=now, actor="demo")
        store_setup_forms(session, setup, now=now, actor="demo")
    engine.dispose()
    main = _main_schedule(first)
    return DemoPlan(first.code, first.villages[0].name, main.form if main else None)


def _invite_or_none(
    settings: Settings, *, village: str, commune: str, police: bool, user_id: int, now: datetime
) -> str | None:
    """A fresh invite unless this demo user is already signed up."""
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            if not load_actor(session, user_id).is_stranger:
                return None
            role = Role.POLICE if police else Role.VILLAGE_HEAD
            kwargs = {"commune": commune} if police else {"village": village, "commune": commune}
            return create_invite(session, role=role, now=now, actor="demo", **kwargs).code
    finally:
        engine.dispose()


def open_demo_period(
    settings: Settings, plan: DemoPlan, *, now: datetime, reminder_in: float, deadline_after: int
) -> Period | None:
    """Open today's "Kỳ thử" of the main form, due `reminder_in` s + `deadline_after` min from `now`.

    Earlier demo periods are hidden (their reports stay), so each run has one fresh period to report on.
    """
    if plan.form is None:
        return None
    due = now + timedelta(seconds=reminder_in) + timedelta(minutes=deadline_after)
    local_now, local_due = now.astimezone(settings.timezone), due.astimezone(settings.timezone)
    opens = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            commune = session.exec(select(Commune).where(Commune.code == plan.commune)).one()
            for old in session.exec(
                select(Period).where(
                    Period.commune_id == commune.id,
                    Period.code.startswith(DEMO_PERIOD_PREFIX),  # type: ignore[attr-defined]
                    Period.active,
                )
            ):
                old.active, old.updated_at = False, now
            period = Period(
                commune_id=commune.id,  # type: ignore[arg-type]
                form_id=plan.form,
                code=f"{DEMO_PERIOD_PREFIX}{local_now:%Y%m%d-%H%M%S}",
                label=f"Kỳ thử {local_now:%d/%m} (hạn {local_due:%H:%M})",
                opens_at=opens,
                due_at=due,
                closes_at=due + timedelta(days=1),
                created_at=now,
                updated_at=now,
            )
            session.add(period)
            session.flush()
            session.expunge(period)
            return period
    finally:
        engine.dispose()


def _run_bot(
    settings: Settings,
    clock: Clock,
    ready: threading.Event,
    stop: threading.Event,
    errors: list[BaseException],
) -> None:
    """Run the bot's long polling and its reminder scheduler in this thread until `stop` is set."""

    async def main() -> None:
        application = build_application(settings, clock=clock)
        async with application:
            if application.post_init is not None:
                await application.post_init(application)  # the menu and the reminders, as `baocao run`
            await application.start()
            await application.updater.start_polling(timeout=1)
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.2)
            await application.updater.stop()
            await application.stop()
            if application.post_stop is not None:
                await application.post_stop(application)

    try:
        asyncio.run(main())
    except BaseException as exc:  # surfaced to the main thread
        log.exception("the demo bot stopped")
        errors.append(exc)
        ready.set()


def _hm(at: datetime, settings: Settings) -> str:
    return f"{at.astimezone(settings.timezone):%H:%M:%S}"


def run_demo(
    settings: Settings,
    *,
    data_dir: Path,
    setup_file: str | None = None,
    as_police: bool = False,
    reminder_in: float = DEFAULT_REMINDER_IN,
    deadline_after: int = DEFAULT_DEADLINE_AFTER,
    clock: Clock = system_clock,
    verbose: bool = False,
) -> int:
    """Start the emulator and the bot, sign both roles up, open a period, chat in the terminal."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = replace(
        settings,
        token=DEMO_TOKEN,
        database_url=f"sqlite:///{(data_dir / 'demo.db').resolve()}",
        bot_username="baocao_demo_bot",
        tick_seconds=DEMO_TICK_SECONDS,
    )
    log_file, files_dir = data_dir / "demo.log", data_dir / "tep"
    configure_file_logging(log_file, settings.timezone, verbose=verbose, secrets=(DEMO_TOKEN,))
    plan = _prepare(
        settings,
        Path(setup_file) if setup_file else default_setup_file(),
        deadline_after=deadline_after,
        now=clock(),
    )

    server = EmulatorServer(bot_username="baocao_demo_bot", token=DEMO_TOKEN)
    server.start_in_thread()
    client = EmulatorClient(server.url)
    head = client.user(DEMO_USER_ID, HEAD_NAME)
    police = client.user(DEMO_POLICE_ID, POLICE_NAME)
    client.add_group(DEMO_GROUP_ID, DEMO_GROUP_TITLE, [DEMO_POLICE_ID])
    group = police.in_group(DEMO_GROUP_ID)

    settings = replace(settings, api_url=server.url)
    ready, stop, errors = threading.Event(), threading.Event(), []
    bot_thread = threading.Thread(target=_run_bot, args=(settings, clock, ready, stop, errors), daemon=True)
    bot_thread.start()
    ready.wait(30)
    if errors:
        server.stop_thread()
        raise errors[0]
    codes = {
        key: _invite_or_none(
            settings,
            village=plan.village,
            commune=plan.commune,
            police=key == "police",
            user_id=user_id,
            now=clock(),
        )
        for key, user_id in (("head", DEMO_USER_ID), ("police", DEMO_POLICE_ID))
    }
    print(f"Bot thử đang chạy trên {server.url} — dữ liệu ở {data_dir}/demo.db")
    print(f"Nhật ký (log) ghi vào {log_file}; ảnh và tệp bot gửi được lưu vào {files_dir}/")
    for key, code in codes.items():
        if code:
            who = "cán bộ công an" if key == "police" else f"trưởng thôn {plan.village}"
            print(f"Mã mời {who}: {code}  (https://t.me/baocao_demo_bot?start={code}) — đăng ký tự động.")
    chats = [
        WorldChat("head", "trưởng thôn", head, f"/start {codes['head']}" if codes["head"] else "/start"),
        WorldChat("police", "công an", police, f"/start {codes['police']}" if codes["police"] else None),
        WorldChat("group", "nhóm công an", group),
    ]
    if as_police:
        chats[0], chats[1] = chats[1], chats[0]

    def announce_period() -> None:
        """After both have signed up: open the period and say when its messages come."""
        now = clock()
        period = open_demo_period(
            settings, plan, now=now, reminder_in=reminder_in, deadline_after=deadline_after
        )
        if period is None:
            print("(Tệp thiết lập không có lịch báo cáo định kỳ: không mở kỳ thử, không có tin nhắc.)")
            return
        remind_at = period.due_at - timedelta(minutes=deadline_after)
        print(
            f"Kỳ báo cáo “{period.label}” đã mở. Bot nhắc trưởng thôn lúc {_hm(remind_at, settings)}"
            f" (nếu chưa gửi); hạn {_hm(period.due_at, settings)}: nhóm công an nhận tin tổng hợp,"
            " khoảng 2 phút sau là bảng tổng hợp."
        )
        print(
            "Thử: /baocao (báo cáo định kỳ), /suco (báo vụ việc đột xuất — tới ngay nhóm công an);"
            " :police rồi /tonghop, /nhacnho, /xuat, /molai; :group để xem nhóm công an."
        )

    try:
        run_world_chat(chats, files_dir=files_dir, on_started=announce_period)
    finally:
        stop.set()
        bot_thread.join(15)
        client.close()
        server.stop_thread()
    return 0
