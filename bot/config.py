"""Settings read from the environment (and a `.env` file), each checked with a one-line fix."""

from __future__ import annotations

import os
import re
import ssl
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
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{16,256}$")  # Telegram allows 1-256 of these; we want 16+
DEFAULT_LISTEN = ("127.0.0.1", 8080)
DEFAULT_WEBHOOK_PATH = "/telegram/webhook"
LOG_FORMATS = ("text", "json")
PAID_BROADCAST_MAX_RATE = 1000  # messages a second Telegram allows with allow_paid_broadcast


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
    webhook_url: str | None = None  # BAOCAO_WEBHOOK_URL: public https URL Telegram posts updates to
    webhook_secret: str | None = None  # BAOCAO_WEBHOOK_SECRET: X-Telegram-Bot-Api-Secret-Token
    listen_host: str = DEFAULT_LISTEN[0]  # BAOCAO_LISTEN=host:port for `baocao serve`
    listen_port: int = DEFAULT_LISTEN[1]
    webhook_path: str = DEFAULT_WEBHOOK_PATH  # BAOCAO_WEBHOOK_PATH, else the path of BAOCAO_WEBHOOK_URL
    log_format: str = "text"  # BAOCAO_LOG_FORMAT: text | json
    status_listen: tuple[str, int] | None = None  # BAOCAO_STATUS_LISTEN: /healthz /readyz /metrics in `run`
    http_client: str = (
        "aiohttp"  # BAOCAO_HTTP_CLIENT: aiohttp | httpx, the Bot API client (bot/telegram_request.py)
    )
    ca_file: str | None = None  # SSL_CERT_FILE: PEM bundle the Bot API server is checked against
    ca_dir: str | None = None  # SSL_CERT_DIR: the same as a hashed directory (neither: certifi's)
    templates_dir: str | None = None  # BAOCAO_TEMPLATES_DIR: deployment / per-commune template overrides
    db_connect_timeout: float = 5.0  # BAOCAO_DB_CONNECT_TIMEOUT: seconds to open a connection (PostgreSQL)
    db_statement_timeout: float = (
        60.0  # BAOCAO_DB_STATEMENT_TIMEOUT: seconds one statement may run (PostgreSQL)
    )
    db_lock_timeout: float = (
        15.0  # BAOCAO_DB_LOCK_TIMEOUT: seconds to wait for a lock (both; SQLite's busy timeout)
    )
    update_timeout: float = 20.0  # BAOCAO_UPDATE_TIMEOUT: seconds an update's database work may take
    paid_broadcast: bool = False  # BAOCAO_PAID_BROADCAST: bulk sends as paid broadcasts (0.1 Star each)
    paid_broadcast_rate: int = PAID_BROADCAST_MAX_RATE  # BAOCAO_PAID_BROADCAST_RATE: messages a second
    paid_broadcast_max_stars: int = 0  # BAOCAO_PAID_BROADCAST_MAX_STARS: Stars a day at most (required)

    @property
    def db_options(self) -> dict[str, float]:
        """The timeouts `storage.db.make_engine` takes, as keyword arguments."""
        return {
            "connect_timeout": self.db_connect_timeout,
            "statement_timeout": self.db_statement_timeout,
            "lock_timeout": self.db_lock_timeout,
        }

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

    def require_webhook_secret(self) -> str:
        """Return the webhook secret or stop with a clear line."""
        if not self.webhook_secret:
            raise ConfigError(
                "BAOCAO_WEBHOOK_SECRET chưa được đặt: tạo một chuỗi bí mật, ví dụ bằng "
                '`python -c "import secrets; print(secrets.token_urlsafe(32))"`, rồi đặt vào môi trường hoặc .env.'
            )
        return self.webhook_secret

    def require_webhook_url(self) -> str:
        """Return the public webhook URL or stop with a clear line."""
        if not self.webhook_url:
            raise ConfigError(
                "BAOCAO_WEBHOOK_URL chưa được đặt: ghi địa chỉ https công khai mà Telegram gửi cập nhật tới, "
                f"ví dụ https://baocao.example.vn{DEFAULT_WEBHOOK_PATH}."
            )
        return self.webhook_url


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


def _check_webhook_url(raw: str | None) -> str | None:
    if raw is None or raw.strip() == "":
        return None
    url = raw.strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(
            f"BAOCAO_WEBHOOK_URL={raw!r} không hợp lệ: cần địa chỉ đầy đủ, "
            f"ví dụ https://baocao.example.vn{DEFAULT_WEBHOOK_PATH}."
        )
    if re.search(r"\d+:[A-Za-z0-9_-]{20,}", url):
        raise ConfigError("BAOCAO_WEBHOOK_URL không được chứa token của bot: dùng đường dẫn khác.")
    return url


def _check_webhook_secret(raw: str | None) -> str | None:
    if raw is None or raw.strip() == "":
        return None
    secret = raw.strip()
    if not SECRET_RE.match(secret):
        raise ConfigError(
            "BAOCAO_WEBHOOK_SECRET không hợp lệ: cần 16 đến 256 ký tự chỉ gồm chữ, số, _ và -, "
            'ví dụ tạo bằng `python -c "import secrets; print(secrets.token_urlsafe(32))"`.'
        )
    return secret


def _check_listen(
    raw: str | None, name: str = "BAOCAO_LISTEN", example: int = 8080
) -> tuple[str, int] | None:
    if raw is None or raw.strip() == "":
        return None
    host, sep, port = raw.strip().rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"{name}={raw!r} không hợp lệ: ghi địa chỉ:cổng, ví dụ 127.0.0.1:{example} hoặc 0.0.0.0:{example}."
        )
    return host, int(port)


def _check_webhook_path(raw: str | None, url: str | None) -> str:
    if raw is None or raw.strip() == "":
        path = urlparse(url).path if url else ""
        return path if path not in ("", "/") else DEFAULT_WEBHOOK_PATH
    path = raw.strip()
    if not path.startswith("/") or path in ("/", "/healthz", "/readyz", "/metrics") or " " in path:
        raise ConfigError(
            f"BAOCAO_WEBHOOK_PATH={raw!r} không hợp lệ: cần đường dẫn bắt đầu bằng /, "
            f"khác /healthz, /readyz, /metrics, ví dụ {DEFAULT_WEBHOOK_PATH}."
        )
    return path


def _check_log_format(raw: str | None) -> str:
    value = (raw or "").strip().lower() or "text"
    if value not in LOG_FORMATS:
        raise ConfigError(f"BAOCAO_LOG_FORMAT={raw!r} không hợp lệ: chọn text hoặc json.")
    return value


HTTP_CLIENTS = ("aiohttp", "httpx")


def _check_http_client(raw: str | None) -> str:
    value = (raw or "").strip().lower() or "aiohttp"
    if value not in HTTP_CLIENTS:
        raise ConfigError(f"BAOCAO_HTTP_CLIENT={raw!r} không hợp lệ: chọn aiohttp hoặc httpx.")
    return value


def _check_ca(name: str, raw: str | None, *, directory: bool, load: bool = True) -> str | None:
    """A CA bundle (file) or hashed directories (`:`-separated, as OpenSSL reads them) that exist and, with
    `load`, load (a full system bundle takes ~35 ms to parse: commands that never call the Bot API skip it)."""
    value = (raw or "").strip()
    if not value:
        return None
    kind = "thư mục" if directory else "tệp"
    paths = value.split(":") if directory else [value]
    if not all(p and (Path(p).is_dir() if directory else Path(p).is_file()) for p in paths):
        raise ConfigError(
            f"{name}={raw!r}: không có {kind} chứng chỉ này. Đặt đường dẫn tới {kind} chứng chỉ CA "
            "(PEM) của máy chủ Bot API, hoặc bỏ biến này để dùng bộ chứng chỉ mặc định (certifi)."
        )
    if not load:
        return value
    try:  # a file with no certificate in it, or a broken one, fails here, not at the first call
        ssl.create_default_context(**({"capath": value} if directory else {"cafile": value}))
    except (ssl.SSLError, OSError) as err:
        raise ConfigError(
            f"{name}={raw!r}: không đọc được chứng chỉ CA ({err}). Cần chứng chỉ dạng PEM."
        ) from None
    return value


def _check_paid_broadcast(environ: Mapping[str, str]) -> tuple[bool, int, int]:
    """BAOCAO_PAID_BROADCAST (on/off), its rate (1–1000 a second) and its daily cap in Stars (required when on)."""
    raw = (environ.get("BAOCAO_PAID_BROADCAST") or "").strip().lower()
    if raw in {"", "0", "off", "no", "false"}:
        return False, PAID_BROADCAST_MAX_RATE, 0
    if raw not in {"1", "on", "yes", "true"}:
        raise ConfigError(f"BAOCAO_PAID_BROADCAST={raw!r} không hợp lệ: đặt 1 (bật) hoặc 0 (tắt).")
    rate = _whole(
        "BAOCAO_PAID_BROADCAST_RATE", environ.get("BAOCAO_PAID_BROADCAST_RATE"), PAID_BROADCAST_MAX_RATE
    )
    if not 1 <= rate <= PAID_BROADCAST_MAX_RATE:
        raise ConfigError(
            f"BAOCAO_PAID_BROADCAST_RATE={rate}: Telegram cho phép từ 1 đến {PAID_BROADCAST_MAX_RATE} tin/giây."
        )
    stars = _whole("BAOCAO_PAID_BROADCAST_MAX_STARS", environ.get("BAOCAO_PAID_BROADCAST_MAX_STARS"), None)
    if stars < 1:
        raise ConfigError(
            "BAOCAO_PAID_BROADCAST_MAX_STARS: đặt số Telegram Stars tối đa được chi mỗi ngày (mỗi tin 0,1 Star), "
            "ví dụ 1000 cho 10.000 tin."
        )
    return True, rate, stars


def _whole(name: str, raw: str | None, default: int | None) -> int:
    """A whole number setting (`default` when empty; None: required)."""
    value = (raw or "").strip()
    if not value and default is not None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} không hợp lệ: cần một số nguyên.") from None


def _check_templates_dir(raw: str | None) -> str | None:
    value = (raw or "").strip()
    if value and not Path(value).is_dir():
        raise ConfigError(
            f"BAOCAO_TEMPLATES_DIR={raw!r}: không có thư mục này. Đặt đường dẫn tới thư mục mẫu tin riêng "
            "(<thư mục>/<mã xã>/remind/…), hoặc bỏ biến này để dùng mẫu tin có sẵn."
        )
    return value or None


def settings_from(environ: Mapping[str, str], *, check_ca: bool = True) -> Settings:
    """Build settings from a mapping, raising ConfigError on the first bad value."""
    webhook_url = _check_webhook_url(environ.get("BAOCAO_WEBHOOK_URL"))
    listen_host, listen_port = _check_listen(environ.get("BAOCAO_LISTEN")) or DEFAULT_LISTEN
    paid = _check_paid_broadcast(environ)
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
        webhook_url=webhook_url,
        webhook_secret=_check_webhook_secret(environ.get("BAOCAO_WEBHOOK_SECRET")),
        listen_host=listen_host,
        listen_port=listen_port,
        webhook_path=_check_webhook_path(environ.get("BAOCAO_WEBHOOK_PATH"), webhook_url),
        log_format=_check_log_format(environ.get("BAOCAO_LOG_FORMAT")),
        status_listen=_check_listen(environ.get("BAOCAO_STATUS_LISTEN"), "BAOCAO_STATUS_LISTEN", 9090),
        http_client=_check_http_client(environ.get("BAOCAO_HTTP_CLIENT")),
        ca_file=_check_ca("SSL_CERT_FILE", environ.get("SSL_CERT_FILE"), directory=False, load=check_ca),
        ca_dir=_check_ca("SSL_CERT_DIR", environ.get("SSL_CERT_DIR"), directory=True, load=check_ca),
        templates_dir=_check_templates_dir(environ.get("BAOCAO_TEMPLATES_DIR")),
        db_connect_timeout=_check_seconds(
            "BAOCAO_DB_CONNECT_TIMEOUT",
            environ.get("BAOCAO_DB_CONNECT_TIMEOUT"),
            5.0,
            minimum=1,
            zero_ok=False,
        ),
        db_statement_timeout=_check_seconds(
            "BAOCAO_DB_STATEMENT_TIMEOUT",
            environ.get("BAOCAO_DB_STATEMENT_TIMEOUT"),
            60.0,
            minimum=1,
            zero_ok=False,
        ),
        db_lock_timeout=_check_seconds(
            "BAOCAO_DB_LOCK_TIMEOUT", environ.get("BAOCAO_DB_LOCK_TIMEOUT"), 15.0, minimum=0.1, zero_ok=False
        ),
        update_timeout=_check_seconds(
            "BAOCAO_UPDATE_TIMEOUT", environ.get("BAOCAO_UPDATE_TIMEOUT"), 20.0, minimum=1, zero_ok=False
        ),
        paid_broadcast=paid[0],
        paid_broadcast_rate=paid[1],
        paid_broadcast_max_stars=paid[2],
    )


def load_settings(env_file: str | Path = ".env", *, check_ca: bool = True) -> Settings:
    """Settings from the process environment merged over `.env` (`check_ca=False`: the CA bundle is not
    parsed, for commands that never call the Bot API)."""
    return settings_from(load_environment(env_file), check_ca=check_ca)
