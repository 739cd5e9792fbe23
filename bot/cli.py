"""The `baocao` command line: run, demo, setup, invite, people, db, forms, periods, remind."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.clock import system_clock
from bot.config import ConfigError, Settings, load_settings

EXIT_USAGE = 2


class CliError(Exception):
    """A problem to report in one line, with an exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _engine(settings: Settings):
    from sqlalchemy.exc import OperationalError

    from storage.db import make_engine, upgrade

    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise CliError(
            f"Không mở được cơ sở dữ liệu ({_safe_url(settings.database_url)}): {reason}", 2
        ) from None
    return engine


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "DATABASE_URL"


def _bot_username(settings: Settings) -> str:
    """The bot's @username for deep links: from TELEGRAM_BOT_USERNAME, else asked with getMe."""
    if settings.bot_username:
        return settings.bot_username
    if not settings.token:
        raise CliError(
            "Cần tên bot để tạo đường link: đặt TELEGRAM_BOT_USERNAME (ví dụ baocao_thon_bot) "
            "hoặc TELEGRAM_BOT_TOKEN để hỏi Telegram.",
            EXIT_USAGE,
        )
    import httpx

    from bot.telegram_request import tls_context

    try:
        response = httpx.get(
            f"{settings.base_url}{settings.token}/getMe",
            timeout=10,
            verify=tls_context(settings.ca_file, settings.ca_dir),
        )
        return response.json()["result"]["username"]
    except Exception:
        raise CliError(
            f"Không hỏi được tên bot từ {settings.api_url}: đặt TELEGRAM_BOT_USERNAME để tạo link.",
            EXIT_USAGE,
        ) from None


# --- commands -------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Long polling against the configured Bot API server."""
    from bot.app import run_polling

    settings.require_token()
    if settings.status_listen is not None:
        from bot.web.status import check_port_free

        check_port_free(*settings.status_listen)
    _engine(settings)  # migrate first, with a clear error if the database is unreachable
    logging.getLogger(__name__).info("starting long polling against %s", settings.api_url)
    run_polling(settings)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """The same bot against the local emulator, with a terminal chat."""
    from bot.demo import run_demo

    return run_demo(
        settings, data_dir=Path(args.data_dir), setup_file=args.setup, as_police=args.as_role == "police"
    )


def cmd_setup(args: argparse.Namespace, settings: Settings) -> int:
    """Validate a setup file (and its forms) and apply it only if nothing is wrong."""
    from bot.services.forms import FormStoreError, store_setup_forms
    from bot.services.setup import apply_setup
    from bot.setup_file import load_setup
    from storage import audit
    from storage.db import session_scope

    result = load_setup(Path(args.file))
    for warning in result.warnings:
        print(f"Chú ý: {warning}", file=sys.stderr)
    if result.errors:
        print(f"Tệp thiết lập có {len(result.errors)} lỗi, chưa ghi gì vào cơ sở dữ liệu:", file=sys.stderr)
        for error in result.errors:
            print(f"  - {error}", file=sys.stderr)
        return 1
    engine = _engine(settings)
    now, actor = system_clock(), audit.cli_actor()
    try:
        with session_scope(engine) as session:
            report = apply_setup(session, result.setup, now=now, actor=actor)
            extra = store_setup_forms(session, result.setup, now=now, actor=actor)
    except FormStoreError as exc:
        print(f"Biểu mẫu có {len(exc.reasons)} lỗi, chưa ghi gì vào cơ sở dữ liệu:", file=sys.stderr)
        for reason in exc.reasons:
            print(f"  - {reason}", file=sys.stderr)
        return 1
    for line in [*report.lines(), *extra]:
        print(line)
    return 0


def cmd_invite(args: argparse.Namespace, settings: Settings) -> int:
    """Issue, revoke or list invite codes."""
    from bot.services.accounts import create_invite, format_code, list_invites, revoke_invite
    from storage import audit
    from storage.db import session_scope
    from storage.models import Role

    engine = _engine(settings)
    now = system_clock()
    if args.invite_action == "revoke":
        with session_scope(engine) as session:
            revoke_invite(session, args.code, now=now, actor=audit.cli_actor())
        print("Đã huỷ mã mời.")
        return 0
    if args.invite_action == "list":
        with session_scope(engine) as session:
            for inv in list_invites(session):
                state = (
                    "đã dùng"
                    if inv.used_at
                    else "đã huỷ"
                    if inv.revoked_at
                    else "hết hạn"
                    if inv.expires_at <= now
                    else "còn hạn"
                )
                print(
                    f"{inv.id:>5}  {inv.code_hint}…  {inv.role:<12}  {state:<8}  hạn {inv.expires_at.astimezone(settings.timezone):%d/%m/%Y %H:%M}"
                )
        return 0
    role = Role(args.role)
    username = _bot_username(settings)
    with session_scope(engine) as session:
        issued = create_invite(
            session,
            role=role,
            now=now,
            actor=audit.cli_actor(),
            village=args.village,
            commune=args.commune,
            province=args.province,
            deputy=args.deputy,
            ttl=timedelta(days=args.days),
        )
    link = f"https://t.me/{username}?start={issued.code}"
    if args.json:
        print(
            json.dumps(
                {"code": issued.code, "link": link, "expires_at": issued.invite.expires_at.isoformat()}
            )
        )
    else:
        print(f"Mã mời cho {issued.place}: {format_code(issued.code)}")
        print(f"Đường link: {link}")
        print(
            f"Hết hạn: {issued.invite.expires_at.astimezone(settings.timezone):%H:%M ngày %d/%m/%Y}; dùng một lần."
        )
    return 0


def cmd_people(args: argparse.Namespace, settings: Settings) -> int:
    """List who is bound to what, or remove someone."""
    from bot.services.accounts import list_people, remove_person
    from storage import audit
    from storage.db import session_scope

    engine = _engine(settings)
    with session_scope(engine) as session:
        if args.people_action == "remove":
            ended = remove_person(
                session, args.person_id, now=system_clock(), actor=audit.cli_actor(), village=args.village
            )
            print(f"Đã gỡ {len(ended)} vai trò của người mang mã số {args.person_id}.")
            return 0
        rows = list_people(session, args.commune, include_ended=args.all)
    if args.json:
        print(json.dumps([_person_json(r) for r in rows], ensure_ascii=False))
        return 0
    if not rows:
        print("Chưa có ai đăng ký.")
    for r in rows:
        role = {
            "village_head": "phó/2 thôn" if r.is_deputy else "trưởng thôn",
            "police": "công an",
            "supervisor": "cấp trên",
        }
        place = r.village or "" if r.role == "village_head" else ""
        print(
            f"{r.person_id:>5}  {role.get(r.role, r.role):<12} {r.full_name[:30]:<30} {place[:28]:<28} {r.commune or '':<24}"
            f"{'' if r.active else ' (đã gỡ)'}"
        )
    return 0


def _person_json(r: Any) -> dict[str, Any]:
    return {
        "person_id": r.person_id,
        "telegram_user_id": r.telegram_user_id,
        "name": r.full_name,
        "role": r.role,
        "deputy": r.is_deputy,
        "village": r.village,
        "commune": r.commune,
        "active": r.active,
    }


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    """Apply migrations, show the current revision, or copy a database (`db copy --from URL --to URL`)."""
    if args.db_action == "copy":
        from bot.db_copy_cli import cmd_db_copy

        return cmd_db_copy(args, settings)
    from storage.db import current_revision, head_revision

    engine = _engine(settings) if args.db_action == "upgrade" else None
    if engine is None:
        from storage.db import make_engine

        engine = make_engine(settings.database_url)
    current, head = current_revision(engine), head_revision()
    print(
        f"Cơ sở dữ liệu: {_safe_url(settings.database_url)} — phiên bản {current or '(trống)'}, mới nhất {head}."
    )
    return 0 if current == head else 1


def cmd_forms(args: argparse.Namespace, settings: Settings) -> int:
    """Validate form files, or walk a form in the terminal."""
    from bot.forms.loader import load_form_file, load_form_files

    if args.forms_action == "check":
        result = load_form_files([Path(p) for p in args.files])
        for error in result.errors:
            print(f"  - {error}", file=sys.stderr)
        if result.errors:
            print(f"{len(result.errors)} lỗi.", file=sys.stderr)
            return 1
        for form in result.forms:
            print(f"OK  {form.id} v{form.version}: {form.title} ({len(form.answerable)} câu)")
        return 0
    from bot.forms.preview import run_preview

    form = _find_form(args.form, load_form_file, load_form_files)
    answers = run_preview(form, now=system_clock().astimezone(settings.timezone))
    print(json.dumps(answers, ensure_ascii=False, indent=2, default=str))
    return 0


def _find_form(ref: str, load_form_file: Callable, load_form_files: Callable):
    path = Path(ref)
    if path.is_file():
        result = load_form_file(path)
    else:
        from bot.views.templates import templates_dir

        forms_dir = templates_dir().parent / "deploy" / "forms"
        result = load_form_files(sorted(forms_dir.glob("*.yaml")))
        result_forms = [f for f in result.forms if f.id == ref]
        if not result_forms:
            known = ", ".join(sorted({f.id for f in result.forms})) or "(không có)"
            raise CliError(
                f"Không có biểu mẫu '{ref}'. Có: {known}; hoặc đưa đường dẫn tệp YAML.", EXIT_USAGE
            )
        return max(result_forms, key=lambda f: f.version)
    if result.errors:
        raise CliError("\n".join(str(e) for e in result.errors))
    return result.forms[0]


def _parse_at(raw: str | None, settings: Settings):
    """`--at "YYYY-MM-DD HH:MM"` in local time (BAOCAO_TIMEZONE) as aware UTC; now when absent."""
    from datetime import UTC, datetime

    if raw is None:
        return system_clock()
    for pattern in ("%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            local = datetime.strptime(raw.strip(), pattern)
        except ValueError:
            continue
        return local.replace(tzinfo=settings.timezone).astimezone(UTC)
    raise CliError(
        f'--at "{raw}" không đúng dạng "YYYY-MM-DD HH:MM" (giờ địa phương), ví dụ --at "2026-05-17 08:00".',
        EXIT_USAGE,
    )


def _commune_id(session: Any, ref: str | None) -> int | None:
    from bot.services.accounts import find_commune

    return find_commune(session, ref).id if ref else None


def _short(at: Any) -> str:
    return f"{at:%H:%M %d/%m}"


def cmd_periods(args: argparse.Namespace, settings: Settings) -> int:
    """Periods open at a moment (with counts submitted / draft / not started) and the next ones."""
    from bot.reminders.content import days_left
    from bot.services.reminders import commune_zone, periods_overview
    from bot.views.filters import vn_due
    from storage.db import session_scope

    now = _parse_at(args.at, settings)
    engine = _engine(settings)
    with session_scope(engine) as session:
        overview = periods_overview(
            session, now, commune_id=_commune_id(session, args.commune), default_tz=str(settings.timezone)
        )
    if not overview:
        print("Chưa có xã nào (chạy baocao setup TỆP trước).")
        return 0
    for commune, lines in overview:
        tz = commune_zone(commune, str(settings.timezone))
        print(f"{commune.name} ({commune.code}) — lúc {now.astimezone(tz):%H:%M ngày %d/%m/%Y}")
        opened = [line for line in lines if line.is_open]
        coming = sorted((line for line in lines if not line.is_open), key=lambda line: line.period.opens_at)
        print("  Đang mở:" if opened else "  Không có kỳ nào đang mở.")
        for line in opened:
            p = line.period
            due = p.due_at.astimezone(tz)
            if now < p.due_at:
                left = days_left(p.due_at, now, tz)
                state = "hôm nay là ngày cuối" if left <= 0 else f"còn {left} ngày"
            else:
                state = f"đã quá hạn, nhận muộn đến {vn_due(p.closes_at.astimezone(tz))}"
            print(f"    {p.code:<10} {p.label} — {line.form_title}")
            print(f"               mở {p.opens_at.astimezone(tz):%d/%m/%Y} · hạn {vn_due(due)} ({state})")
            late = f" ({line.late} muộn)" if line.late else ""
            print(
                f"               {line.total} thôn: đã nộp {line.submitted}{late} · đang làm {line.drafts}"
                f" · chưa bắt đầu {line.not_started}"
            )
        if coming:
            print("  Kỳ tới:")
        for line in coming:
            p = line.period
            print(
                f"    {p.code:<10} {p.label} — {line.form_title}: mở {p.opens_at.astimezone(tz):%d/%m/%Y}"
                f" · hạn {vn_due(p.due_at.astimezone(tz))}"
            )
    return 0


def cmd_remind(args: argparse.Namespace, settings: Settings) -> int:
    """`--dry-run`: what would be sent to whom at a moment (nothing written); `--now`: plan and send."""
    if args.now:
        if args.at is not None or args.commune is not None:
            raise CliError("--at và --commune chỉ dùng với --dry-run.", EXIT_USAGE)
        try:
            from bot.reminders.dispatch import run_once
        except ImportError:
            raise CliError("Bộ gửi tin (bot.reminders.dispatch) chưa có trong bản này.", 1) from None
        from telegram.error import TelegramError

        try:
            result = run_once(settings)
        except TelegramError as err:  # unreachable server, refused certificate, bad token …
            raise CliError(
                f"Không gửi được qua máy chủ Bot API ({settings.api_url}): {type(err).__name__}. "
                "Kiểm tra TELEGRAM_API_URL, TELEGRAM_BOT_TOKEN và chứng chỉ (SSL_CERT_FILE).",
                1,
            ) from None
        return result if isinstance(result, int) else 0
    return _remind_dry_run(args, settings)


def _remind_dry_run(args: argparse.Namespace, settings: Settings) -> int:
    from collections import defaultdict
    from datetime import timedelta

    from bot.reminders.planner import KIND_DIGEST, upcoming
    from bot.services.reminders import dry_run
    from bot.views.filters import vn_due
    from storage.db import session_scope

    now = _parse_at(args.at, settings)
    engine = _engine(settings)
    with session_scope(engine) as session:
        inputs, planned, existing = dry_run(
            session, now, default_tz=str(settings.timezone), commune_id=_commune_id(session, args.commune)
        )
    tz_name = str(settings.timezone)
    print(
        f"Chạy thử lúc {now.astimezone(settings.timezone):%H:%M ngày %d/%m/%Y} ({tz_name}) — "
        "không gửi, không ghi gì."
    )
    by_period = defaultdict(list)
    for p in planned:
        by_period[p.period_id].append(p)
    people = {r.person_id: (r, v) for period in inputs for v in period.villages for r in v.reporters}
    reminders_count = digests = queued = 0
    for period in inputs:
        rows = by_period.get(period.period_id)
        if not rows:
            continue
        tz = period.zone
        print(
            f"{period.commune_name} — {period.label} ({period.code}), hạn {vn_due(period.due_at.astimezone(tz))}:"
        )
        for p in rows:
            mark = (
                "   [đã có trong hàng đợi]"
                if p.key in existing
                else "   [gửi bù]"
                if now - p.due_at > timedelta(hours=1)
                else ""
            )
            queued += p.key in existing
            when = _short(p.due_at.astimezone(tz))
            if p.kind == KIND_DIGEST:
                digests += 1
                print(f"  {when}  tổng hợp   → nhóm/cán bộ công an {p.chat_id}{mark}")
                continue
            reminders_count += 1
            reporter, village = people[p.person_id]
            role = "phó" if reporter.is_deputy else "trưởng thôn"
            state = (
                f"bản nháp câu {village.progress[0]}/{village.progress[1]}"
                if village.progress
                else "đang làm dở"
                if village.has_draft
                else "chưa bắt đầu"
            )
            print(
                f"  {when}  {p.rule:<10} → {reporter.name or '#' + str(p.person_id)} ({role}, {village.name}) — {state}{mark}"
            )
    print(
        f"Đến hạn: {reminders_count} tin nhắc, {digests} tin tổng hợp"
        + (f" ({queued} đã có trong hàng đợi)." if queued else ".")
    )
    ahead = upcoming(inputs, now, now + timedelta(days=args.days))
    if ahead:
        print(f"Sắp tới trong {args.days} ngày:")
        grouped = defaultdict(list)
        for u in ahead:
            grouped[(u.at, u.period.period_id, u.slot.rule_id)].append(u)
        for (at, _pid, rule), items in sorted(grouped.items(), key=lambda kv: kv[0]):
            period = items[0].period
            names = sorted({u.village.name for u in items})
            shown = ", ".join(names[:5]) + (f" và {len(names) - 5} thôn khác" if len(names) > 5 else "")
            print(
                f"  {_short(at.astimezone(period.zone))}  {rule:<10} → {len(items)} người ({shown}) — {period.code}"
            )
    return 0


# --- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(
        prog="baocao", description="Báo cáo thôn — bot Telegram báo cáo của trưởng thôn."
    )
    parser.add_argument("--env-file", default=".env", help="tệp .env để đọc cấu hình (mặc định .env)")
    parser.add_argument("-v", "--verbose", action="store_true", help="ghi nhật ký chi tiết")
    sub = parser.add_subparsers(dest="command", required=True, metavar="LỆNH")

    sub.add_parser("run", help="chạy bot (long polling)").set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="thử bot trên máy, không cần token (máy chủ Bot API giả lập)")
    demo.add_argument("--data-dir", default="demo-data", help="thư mục dữ liệu thử (mặc định demo-data)")
    demo.add_argument("--setup", default=None, help="tệp thiết lập (mặc định ví dụ Hiệp Lực)")
    demo.add_argument(
        "--as",
        dest="as_role",
        choices=["village_head", "police"],
        default="village_head",
        help="chat với vai trò nào (mặc định trưởng thôn)",
    )
    demo.set_defaults(func=cmd_demo)

    setup = sub.add_parser("setup", help="nạp tệp thiết lập xã (YAML); chạy lại được nhiều lần")
    setup.add_argument("file")
    setup.set_defaults(func=cmd_setup)

    invite = sub.add_parser("invite", help="cấp, huỷ, liệt kê mã mời")
    invite.add_argument("--village", help="tên thôn (trưởng thôn)")
    invite.add_argument("--commune", help="mã hoặc tên xã (công an; hoặc để phân biệt thôn trùng tên)")
    invite.add_argument("--province", help="tỉnh (vai trò cấp trên)")
    invite.add_argument("--role", choices=["village_head", "police", "supervisor"], default=None)
    invite.add_argument("--deputy", action="store_true", help="người báo cáo thứ hai của thôn")
    invite.add_argument("--days", type=int, default=7, help="số ngày còn hạn (mặc định 7)")
    invite.add_argument("--json", action="store_true", help='in {"code": …, "link": …}')
    invite_sub = invite.add_subparsers(dest="invite_action", metavar="revoke|list")
    revoke = invite_sub.add_parser("revoke", help="huỷ một mã chưa dùng")
    revoke.add_argument("code")
    invite_sub.add_parser("list", help="liệt kê mã mời (chỉ 4 ký tự đầu)")
    invite.set_defaults(func=cmd_invite)

    people = sub.add_parser("people", help="ai đang gắn với thôn/xã nào; gỡ người")
    people.add_argument("--commune", help="chỉ một xã")
    people.add_argument("--all", action="store_true", help="cả người đã gỡ")
    people.add_argument("--json", action="store_true")
    people_sub = people.add_subparsers(dest="people_action", metavar="remove|forget")
    remove = people_sub.add_parser("remove", help="gỡ một người (mất quyền ngay)")
    remove.add_argument("person_id", type=int, help="mã số trong cột đầu của baocao people")
    remove.add_argument("--village", help="chỉ gỡ khỏi thôn này")
    people.set_defaults(func=cmd_people)
    from bot.people_cli import add_forget_parser

    add_forget_parser(people_sub)

    db = sub.add_parser("db", help="cơ sở dữ liệu: upgrade | current | copy --from URL --to URL")
    db.add_argument("db_action", choices=["upgrade", "current", "copy"])
    from bot.db_copy_cli import add_copy_arguments

    add_copy_arguments(db)
    db.set_defaults(func=cmd_db)

    forms = sub.add_parser("forms", help="biểu mẫu: check FILE… | try FORM_ID")
    forms_sub = forms.add_subparsers(dest="forms_action", required=True, metavar="check|try")
    check = forms_sub.add_parser("check", help="kiểm tra tệp biểu mẫu, không đụng cơ sở dữ liệu")
    check.add_argument("files", nargs="+")
    try_ = forms_sub.add_parser("try", help="thử điền một biểu mẫu ngay trong cửa sổ lệnh")
    try_.add_argument("form", help="mã biểu mẫu (trong deploy/forms) hoặc đường dẫn tệp")
    forms.set_defaults(func=cmd_forms)

    periods = sub.add_parser(
        "periods", help="kỳ báo cáo đang mở và kỳ tới, số thôn đã nộp / đang làm / chưa làm"
    )
    periods.add_argument("--commune", help="chỉ một xã (mã hoặc tên)")
    periods.add_argument(
        "--at", help='xem tại thời điểm "YYYY-MM-DD HH:MM" (giờ địa phương); mặc định bây giờ'
    )
    periods.set_defaults(func=cmd_periods)

    remind = sub.add_parser(
        "remind", help="nhắc hạn: --dry-run xem trước sẽ gửi gì, --now lập lịch và gửi ngay"
    )
    mode = remind.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dry-run", action="store_true", help="chỉ in ra sẽ gửi gì cho ai, không ghi gì")
    mode.add_argument("--now", action="store_true", help="lập lịch và gửi mọi tin đã đến hạn")
    remind.add_argument("--at", help='với --dry-run: thời điểm "YYYY-MM-DD HH:MM" (giờ địa phương)')
    remind.add_argument("--commune", help="với --dry-run: chỉ một xã (mã hoặc tên)")
    remind.add_argument(
        "--days", type=int, default=7, help="với --dry-run: in các tin sắp tới trong ngần này ngày"
    )
    remind.set_defaults(func=cmd_remind)

    from bot.exports.cli import add_export_parser

    add_export_parser(sub)
    from bot.web.cli import add_serve_parsers

    add_serve_parsers(sub)
    return parser


def _validate_invite_args(args: argparse.Namespace) -> None:
    if args.command != "invite" or args.invite_action:
        return
    if args.role is None:
        args.role = (
            "village_head"
            if args.village
            else "police"
            if args.commune
            else "supervisor"
            if args.province
            else None
        )
    if args.role is None:
        raise CliError(
            "Cần --village TÊN (trưởng thôn), --commune XÃ --role police, hoặc --province TỈNH.", EXIT_USAGE
        )
    if args.days < 1 or args.days > 90:
        raise CliError("--days phải từ 1 đến 90.", EXIT_USAGE)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `baocao` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore", "apscheduler", "alembic", "telegram.ext.Updater", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from bot.services.accounts import AccountError

    try:
        _validate_invite_args(args)
        settings = load_settings(args.env_file)
        from bot.views.templates import Renderer, use_renderer

        use_renderer(Renderer(settings.templates_dir))  # every command that renders a text sees them
        from bot.logging_setup import configure_logging

        configure_logging(
            settings.log_format, verbose=args.verbose, secrets=(settings.token, settings.webhook_secret)
        )
        return args.func(args, settings)
    except ConfigError as exc:
        print(f"Lỗi cấu hình: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (CliError, AccountError) as exc:
        print(f"Lỗi: {exc}", file=sys.stderr)
        return getattr(exc, "code", 1)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
