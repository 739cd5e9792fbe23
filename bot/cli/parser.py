"""The `baocao` argument parser and the table of command groups, each imported only when its command runs.

Building the parser imports nothing beyond the standard library, so `baocao --help` starts quickly.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command whose reader went away

# Command group (set on each sub-parser as `group`) -> the module holding its `cmd_…` functions.
COMMANDS: dict[str, str] = {
    "run": "bot.cli.running",
    "serve": "bot.cli.running",
    "webhook": "bot.cli.running",
    "demo": "bot.cli.demo",
    "setup": "bot.cli.setup",
    "invite": "bot.cli.invites",
    "people": "bot.cli.people",
    "db": "bot.cli.database",
    "forms": "bot.cli.forms",
    "periods": "bot.cli.periods",
    "remind": "bot.cli.reminders",
    "remind --now": "bot.cli.send_now",
    "export": "bot.cli.exports",
    "request": "bot.cli.requests",
}
# commands that never call the Bot API (they read and write the database only): their settings do not parse
# the CA bundle of SSL_CERT_FILE / SSL_CERT_DIR (only check that it exists)
OFFLINE: frozenset[str] = frozenset(
    {"setup", "people", "db", "forms", "periods", "remind", "export", "request"}
)
# commands that keep running (the bot): their process keeps Python's default garbage collection from the start
LONG_RUNNING: frozenset[str] = frozenset({"run", "serve", "demo"})
RUNNER = "bot.cli.common"  # settings, logging and errors around every command: `execute(args, command)`

EXPORT_FORMATS = ("xlsx", "docx", "csv")
NOISY_LOGGERS = ("httpx", "httpcore", "apscheduler", "alembic", "telegram.ext.Updater", "aiohttp.access")


def _handled_by(parser: argparse.ArgumentParser, group: str, handler: str) -> None:
    """Record which group module and which of its functions run when this (sub-)command is chosen."""
    parser.set_defaults(group=group, handler=handler)


class _HandledFlag(argparse.Action):
    """A true/false flag that also picks the group module and function that run the command."""

    def __init__(
        self, option_strings: Sequence[str], dest: str, group: str, handler: str, **kwargs: Any
    ) -> None:
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)
        self.group, self.handler = group, handler

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, *_: Any) -> None:
        setattr(namespace, self.dest, True)
        namespace.group, namespace.handler = self.group, self.handler


def load_command(args: argparse.Namespace) -> tuple[Callable[..., int], Callable[..., int]]:
    """(the shared runner, the parsed command's `cmd_…` function): the CLI's one place of lazy imports."""
    command = getattr(importlib.import_module(COMMANDS[args.group]), args.handler)
    return importlib.import_module(RUNNER).execute, command


def load_command_frozen(args: argparse.Namespace) -> tuple[Callable[..., int], Callable[..., int]]:
    """`load_command` for a command that runs to its end in a process of its own: the cyclic garbage
    collector is paused while the command's modules are imported, and the objects they built (SQLAlchemy,
    pydantic, the models: over a hundred thousand, alive until exit) are then frozen, so that neither the
    collections during the imports nor the later ones and the one at exit walk them again (issue 18, gate 2).
    The collector runs as usual on what the command itself creates; its state is restored on any error."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        loaded = load_command(args)
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()
    return loaded


def resolve_command(args: argparse.Namespace) -> Callable[..., int]:
    """The `cmd_…` function of the parsed command (its group's module imported now)."""
    return load_command(args)[1]


def add_run_and_demo_parsers(sub: Any) -> None:
    """Add `run` (long polling) and `demo` (the bot against the local emulator)."""
    _handled_by(sub.add_parser("run", help="chạy bot (long polling)"), "run", "cmd_run")

    demo = sub.add_parser("demo", help="thử bot trên máy, không cần token (máy chủ Bot API giả lập)")
    demo.add_argument("--data-dir", default="demo-data", help="thư mục dữ liệu thử (mặc định demo-data)")
    demo.add_argument("--setup", default=None, help="tệp thiết lập (mặc định ví dụ Hiệp Lực)")
    demo.add_argument(
        "--as",
        dest="as_role",
        choices=["village_head", "police"],
        default="village_head",
        help="bắt đầu ở cuộc trò chuyện nào (mặc định người đứng đầu đơn vị; đổi bằng :head, :police, :group)",
    )
    demo.add_argument(
        "--reminder-in",
        type=float,
        default=60.0,
        metavar="GIÂY",
        help="bot nhắc người đứng đầu đơn vị sau bao nhiêu giây kể từ khi bắt đầu (mặc định 60)",
    )
    demo.add_argument(
        "--deadline-after",
        type=int,
        default=3,
        metavar="PHÚT",
        help="hạn của kỳ thử, tính bằng phút sau tin nhắc (mặc định 3; tin tổng hợp cho công an lúc hạn)",
    )
    _handled_by(demo, "demo", "cmd_demo")


def add_setup_and_invite_parsers(sub: Any) -> None:
    """Add `setup FILE` and `invite [revoke CODE | list]`."""
    setup = sub.add_parser("setup", help="nạp tệp thiết lập xã (YAML); chạy lại được nhiều lần")
    setup.add_argument("file")
    _handled_by(setup, "setup", "cmd_setup")

    invite = sub.add_parser("invite", help="cấp, huỷ, liệt kê mã mời")
    invite.add_argument(
        "--village", help="tên đơn vị (thôn, tổ dân phố, cơ quan…): mã cho người đứng đầu đơn vị"
    )
    invite.add_argument("--commune", help="mã hoặc tên xã (công an; hoặc để phân biệt đơn vị trùng tên)")
    invite.add_argument("--province", help="tỉnh (vai trò cấp trên)")
    invite.add_argument("--role", choices=["village_head", "police", "supervisor"], default=None)
    invite.add_argument("--deputy", action="store_true", help="người báo cáo thứ hai của đơn vị")
    invite.add_argument("--days", type=int, default=7, help="số ngày còn hạn (mặc định 7)")
    invite.add_argument("--json", action="store_true", help='in {"code": …, "link": …}')
    invite_sub = invite.add_subparsers(dest="invite_action", metavar="revoke|list")
    revoke = invite_sub.add_parser("revoke", help="huỷ một mã chưa dùng")
    revoke.add_argument("code")
    invite_sub.add_parser("list", help="liệt kê mã mời (chỉ 4 ký tự đầu)")
    _handled_by(invite, "invite", "cmd_invite")


def add_forget_parser(people_sub: Any) -> argparse.ArgumentParser:
    """Add `forget ID [--yes]` under `baocao people` (handled by `cmd_people_forget`)."""
    forget = people_sub.add_parser("forget", help="xoá thông tin cá nhân của một người (giữ báo cáo đã nộp)")
    forget.add_argument("person_id", type=int, help="mã số trong cột đầu của baocao people --all")
    forget.add_argument("--yes", action="store_true", help="xác nhận xoá (không thể hoàn tác)")
    _handled_by(forget, "people", "cmd_people_forget")
    return forget


def add_people_parser(sub: Any) -> None:
    """Add `people [remove ID | forget ID]`."""
    people = sub.add_parser("people", help="ai đang gắn với đơn vị/xã nào; gỡ người")
    people.add_argument("--commune", help="chỉ một xã")
    people.add_argument("--all", action="store_true", help="cả người đã gỡ")
    people.add_argument("--json", action="store_true")
    people_sub = people.add_subparsers(dest="people_action", metavar="remove|forget")
    remove = people_sub.add_parser("remove", help="gỡ một người (mất quyền ngay)")
    remove.add_argument("person_id", type=int, help="mã số trong cột đầu của baocao people")
    remove.add_argument("--village", help="chỉ gỡ khỏi đơn vị này")
    _handled_by(people, "people", "cmd_people")
    add_forget_parser(people_sub)


def add_copy_arguments(db_parser: argparse.ArgumentParser) -> None:
    """Add the options of `baocao db copy` to the `db` sub-command's parser."""
    db_parser.add_argument(
        "--from", dest="copy_from", metavar="URL", help="với copy: cơ sở dữ liệu nguồn (sqlite:///…)"
    )
    db_parser.add_argument(
        "--to", dest="copy_to", metavar="URL", help="với copy: cơ sở dữ liệu đích (postgresql://…)"
    )
    db_parser.add_argument(
        "--force", action="store_true", help="với copy: xoá hết dữ liệu đang có ở đích rồi chép đè"
    )
    db_parser.add_argument(
        "--batch-size",
        type=int,
        default=1000,
        metavar="N",
        help="với copy: số dòng đọc và ghi mỗi lần (mặc định 1000)",
    )


def add_db_parser(sub: Any) -> None:
    """Add `db upgrade | current | copy --from URL --to URL`."""
    db = sub.add_parser("db", help="cơ sở dữ liệu: upgrade | current | copy --from URL --to URL")
    db.add_argument("db_action", choices=["upgrade", "current", "copy"])
    add_copy_arguments(db)
    _handled_by(db, "db", "cmd_db")


def add_forms_parser(sub: Any) -> None:
    """Add `forms check FILE… | try FORM`."""
    forms = sub.add_parser("forms", help="biểu mẫu: check FILE… | try FORM_ID")
    forms_sub = forms.add_subparsers(dest="forms_action", required=True, metavar="check|try")
    check = forms_sub.add_parser("check", help="kiểm tra tệp biểu mẫu, không đụng cơ sở dữ liệu")
    check.add_argument("files", nargs="+")
    try_ = forms_sub.add_parser("try", help="thử điền một biểu mẫu ngay trong cửa sổ lệnh")
    try_.add_argument("form", help="mã biểu mẫu (trong deploy/forms) hoặc đường dẫn tệp")
    _handled_by(forms, "forms", "cmd_forms")


def add_periods_and_remind_parsers(sub: Any) -> None:
    """Add `periods` (open and coming periods with their counts) and `remind --dry-run | --now`."""
    periods = sub.add_parser(
        "periods", help="kỳ báo cáo đang mở và kỳ tới, số đơn vị đã nộp / đang làm / chưa làm"
    )
    periods.add_argument("--commune", help="chỉ một xã (mã hoặc tên)")
    periods.add_argument(
        "--at", help='xem tại thời điểm "YYYY-MM-DD HH:MM" (giờ địa phương); mặc định bây giờ'
    )
    _handled_by(periods, "periods", "cmd_periods")

    remind = sub.add_parser(
        "remind", help="nhắc hạn: --dry-run xem trước sẽ gửi gì, --now lập lịch và gửi ngay"
    )
    mode = remind.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dry-run", action="store_true", help="chỉ in ra sẽ gửi gì cho ai, không ghi gì")
    mode.add_argument(  # sending needs python-telegram-bot: its own module, so --dry-run starts without it
        "--now",
        action=_HandledFlag,
        group="remind --now",
        handler="cmd_remind_now",
        help="lập lịch và gửi mọi tin đã đến hạn",
    )
    remind.add_argument("--at", help='với --dry-run: thời điểm "YYYY-MM-DD HH:MM" (giờ địa phương)')
    remind.add_argument("--commune", help="với --dry-run: chỉ một xã (mã hoặc tên)")
    remind.add_argument(
        "--days", type=int, default=7, help="với --dry-run: in các tin sắp tới trong ngần này ngày"
    )
    _handled_by(remind, "remind", "cmd_remind_dry_run")


def add_export_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `export` sub-command (the same files as /xuat, written to disk)."""
    parser = subparsers.add_parser(
        "export",
        help="xuất báo cáo tổng hợp một kỳ của xã: Excel, Word hoặc CSV",
        description="Xuất báo cáo tổng hợp một kỳ của xã, hoặc của cả tỉnh với --province "
        "(cùng tệp với lệnh /xuat trong Telegram).",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--commune", help="mã hoặc tên xã, ví dụ hiep-luc")
    where.add_argument(
        "--province", help="tên tỉnh: báo cáo tổng hợp các xã của tỉnh (mỗi xã một dòng), ví dụ 'Thái Nguyên'"
    )
    parser.add_argument("--form", help="mã biểu mẫu (mặc định: biểu mẫu chính của xã)")
    parser.add_argument("--period", help="mã kỳ, ví dụ 2026-6T (mặc định: kỳ đang mở hoặc vừa kết thúc)")
    parser.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        help="xlsx, docx hoặc csv (mặc định: theo đuôi của tệp -o, nếu không có thì xlsx)",
    )
    parser.add_argument(
        "-o",
        "--output",
        help="tệp ghi ra; một thư mục thì ghi vào đó với tên mặc định; '-' ghi ra stdout "
        "(mặc định: tên tiếng Việt có dấu trong thư mục hiện tại)",
    )
    parser.add_argument("--ascii-name", action="store_true", help="tên tệp mặc định không dấu")
    parser.add_argument(
        "--incidents", action="store_true", help="xuất các sự việc đột xuất của xã (Excel, mỗi vụ một dòng)"
    )
    _handled_by(parser, "export", "cmd_export")
    return parser


def add_request_parser(sub: Any) -> None:
    """Add `request --commune X --form F --due D [--villages "A,B"] [--by NAME]` (as /yeucau)."""
    request = sub.add_parser(
        "request",
        help="yêu cầu các đơn vị báo cáo đột xuất (như /yeucau): tạo kỳ mới, báo ngay cho người đứng đầu đơn vị",
    )
    request.add_argument("--commune", required=True, help="mã hoặc tên xã")
    request.add_argument("--form", required=True, help="mã biểu mẫu định kỳ của xã, ví dụ bao-cao-6-thang")
    request.add_argument(
        "--due", required=True, help='hạn, tính đến hết ngày: "20/12", "20/12/2026", "thứ sáu", "3 ngày"'
    )
    request.add_argument(
        "--villages", help='chỉ các đơn vị này, cách nhau bởi dấu phẩy: "Thôn A,Tổ dân phố 3"'
    )
    request.add_argument("--by", help="ai yêu cầu (ghi vào nhật ký)")
    _handled_by(request, "request", "cmd_request")


def add_serve_parsers(sub: Any) -> None:
    """Add `serve` (webhook mode) and `webhook set | delete | info`."""
    serve = sub.add_parser(
        "serve",
        help="chạy bot ở chế độ webhook (máy chủ HTTP: webhook, /healthz, /readyz, /metrics)",
    )
    _handled_by(serve, "serve", "cmd_serve")

    webhook = sub.add_parser("webhook", help="webhook với Telegram: set | delete | info")
    actions = webhook.add_subparsers(dest="webhook_action", required=True, metavar="set|delete|info")
    set_ = actions.add_parser("set", help="đăng ký BAOCAO_WEBHOOK_URL với mã bí mật BAOCAO_WEBHOOK_SECRET")
    set_.add_argument("--drop-pending", action="store_true", help="bỏ các cập nhật đang chờ")
    set_.add_argument(
        "--max-connections", type=int, default=40, help="số kết nối Telegram mở cùng lúc (1-100, mặc định 40)"
    )
    delete = actions.add_parser("delete", help="xoá webhook (để quay về long polling: baocao run)")
    delete.add_argument("--drop-pending", action="store_true", help="bỏ các cập nhật đang chờ")
    actions.add_parser("info", help="xem webhook đang đăng ký, số cập nhật chờ, lỗi gần nhất")
    for parser in (set_, delete, actions.choices["info"]):
        parser.add_argument("--json", action="store_true", help="in WebhookInfo dạng JSON")
    _handled_by(webhook, "webhook", "cmd_webhook")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(
        prog="baocao",
        description="Báo cáo thôn — bot Telegram nhận báo cáo định kỳ của các đơn vị (thôn, tổ dân phố, cơ quan…).",
    )
    parser.add_argument("--env-file", default=".env", help="tệp .env để đọc cấu hình (mặc định .env)")
    parser.add_argument("-v", "--verbose", action="store_true", help="ghi nhật ký chi tiết")
    sub = parser.add_subparsers(dest="command", required=True, metavar="LỆNH")
    add_run_and_demo_parsers(sub)
    add_setup_and_invite_parsers(sub)
    add_people_parser(sub)
    add_db_parser(sub)
    add_forms_parser(sub)
    add_periods_and_remind_parsers(sub)
    add_export_parser(sub)
    add_request_parser(sub)
    add_serve_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `baocao` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # a process of its own (the console script; tests pass `argv`) running a command that ends: see above
    own_process = argv is None and args.group not in LONG_RUNNING
    execute, command = load_command_frozen(args) if own_process else load_command(args)
    try:
        return int(execute(args, command))
    except BrokenPipeError:  # `baocao periods | head`: the reader left; no traceback, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit would fail again otherwise
        return EXIT_BROKEN_PIPE
