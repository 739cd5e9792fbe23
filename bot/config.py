"""Settings read from the environment (and a `.env` file), each checked with a one-line fix."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

DEFAULT_API_URL = "https://api.telegram.org"
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
DEFAULT_DATABASE_FILE = "baocao.db"
TOKEN_RE = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,100}$")
USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    """Everything the bot needs from its environment."""

    token: str | None
    api_url: str
    database_url: str
    timezone: ZoneInfo
    bot_username: str | None = None
    tick_seconds: float = 30.0  # BAOCAO_TICK_SECONDS: how often reminders are planned and sent (0: never)
    send_lease_seconds: float = 120.0  # BAOCAO_SEND_LEASE_SECONDS: a claimed message's lease

    @property
    def base_url(self) -> str:
        """Root PTB prefixes the token with: `{api_url}/bot`."""
        return f"{self.api_url}/bot"

    @property
    def base_file_url(self) -> str:
        """Root for file downloads: `{api_url}/file/bot`."""
        return f"{self.api_url}/file/bot"

    def require_token(self) -> str:
        """Return the bot token or stop with a clear line."""
        if not self.token:
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN chưa được đặt: lấy token từ @BotFather rồi đặt "
                "TELEGRAM_BOT_TOKEN=123456:ABC... trong môi trường hoặc tệp .env "
                "(hoặc chạy `baocao demo` để thử không cần token)."
            )
        return self.token


def load_environment(
    env_file: str | Path = ".env", environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Merge a `.env` file (if present) under the process environment; the environment wins."""
    merged: dict[str, str] = {}
    path = Path(env_file)
    if path.is_file():
        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def _check_token(raw: str | None) -> str | None:
    if raw is None or raw.strip() == "":
        return None
    token = raw.strip()
    if not TOKEN_RE.match(token):
        raise ConfigError(
            "TELEGRAM_BOT_TOKEN không đúng dạng: token của @BotFather có dạng "
            "<số>:<35 ký tự>, ví dụ 123456789:AAE... — hãy chép lại nguyên văn."
        )
    return token


def _check_api_url(raw: str | None) -> str:
    if raw is None or raw.strip() == "":
        return DEFAULT_API_URL
    url = raw.strip().rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(
            f"TELEGRAM_API_URL={raw!r} không hợp lệ: cần địa chỉ gốc của máy chủ Bot API, "
            f"ví dụ {DEFAULT_API_URL} hoặc http://127.0.0.1:8081 (không có /bot<token>)."
        )
    if re.search(r"/bot\d+:", url):
        raise ConfigError(
            "TELEGRAM_API_URL không được chứa token: chỉ ghi địa chỉ gốc, ví dụ http://127.0.0.1:8081."
        )
    return url


def _check_database_url(raw: str | None) -> str:
    if raw is None or raw.strip() == "":
        return f"sqlite:///{Path.cwd() / DEFAULT_DATABASE_FILE}"
    url = raw.strip()
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("postgres", "postgresql"):
        # psycopg 3 is the only PostgreSQL driver we ship.
        return "postgresql+psycopg" + url[len(scheme) :]
    if scheme in ("postgresql+psycopg", "sqlite") or scheme.startswith("sqlite+"):
        return url
    raise ConfigError(
        f"DATABASE_URL có lược đồ {scheme!r} không được hỗ trợ: dùng sqlite:///duong/dan/baocao.db "
        "hoặc postgresql://user:pass@host:5432/tencsdl."
    )


def _check_timezone(raw: str | None) -> ZoneInfo:
    name = (raw or "").strip() or DEFAULT_TIMEZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"BAOCAO_TIMEZONE={name!r} không phải múi giờ IANA: dùng ví dụ {DEFAULT_TIMEZONE}."
        ) from None


def _check_username(raw: str | None) -> str | None:
    if raw is None or raw.strip() == "":
        return None
    name = raw.strip().lstrip("@")
    if not USERNAME_RE.match(name):
        raise ConfigError(
            f"TELEGRAM_BOT_USERNAME={raw!r} không hợp lệ: ghi tên bot không có @, ví dụ baocao_thon_bot."
        )
    return name


def _check_seconds(name: str, raw: str | None, default: float, *, minimum: float, zero_ok: bool) -> float:
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        value = float("nan")
    if value == 0 and zero_ok:
        return 0.0
    if not value >= minimum or value > 86400:
        floor = "0 (tắt) hoặc " if zero_ok else ""
        raise ConfigError(
            f"{name}={raw!r} không hợp lệ: cần số giây, {floor}từ {minimum:g} đến 86400, ví dụ {default:g}."
        )
    return value


def settings_from(environ: Mapping[str, str]) -> Settings:
    """Build settings from a mapping, raising ConfigError on the first bad value."""
    return Settings(
        token=_check_token(environ.get("TELEGRAM_BOT_TOKEN")),
        api_url=_check_api_url(environ.get("TELEGRAM_API_URL")),
        database_url=_check_database_url(environ.get("DATABASE_URL")),
        timezone=_check_timezone(environ.get("BAOCAO_TIMEZONE")),
        bot_username=_check_username(environ.get("TELEGRAM_BOT_USERNAME")),
        tick_seconds=_check_seconds(
            "BAOCAO_TICK_SECONDS", environ.get("BAOCAO_TICK_SECONDS"), 30.0, minimum=0.1, zero_ok=True
        ),
        send_lease_seconds=_check_seconds(
            "BAOCAO_SEND_LEASE_SECONDS",
            environ.get("BAOCAO_SEND_LEASE_SECONDS"),
            120.0,
            minimum=1,
            zero_ok=False,
        ),
    )


def load_settings(env_file: str | Path = ".env") -> Settings:
    """Settings from the process environment merged over `.env`."""
    return settings_from(load_environment(env_file))
