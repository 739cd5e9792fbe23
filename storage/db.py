"""Database engines and the one place sessions are opened."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from storage import begin_together

if TYPE_CHECKING:  # Alembic is imported only when migrations run (a CLI command starts without it)
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


DEFAULT_CONNECT_TIMEOUT = 5.0  # seconds to open a connection (PostgreSQL; a hung server or network)
DEFAULT_STATEMENT_TIMEOUT = 60.0  # seconds one statement may run (PostgreSQL's statement_timeout)
DEFAULT_LOCK_TIMEOUT = 15.0  # seconds to wait for a lock (PostgreSQL's lock_timeout, SQLite's busy timeout)
POOL_SIZE = 24  # PostgreSQL connections kept open: the 16 update threads, the dispatcher, the planner, spare
POOL_OVERFLOW = 8  # more opened for a burst, closed when given back
PING_AFTER_IDLE = 1.0  # seconds a pooled connection may rest before it is pinged at checkout


def make_engine(
    url: str,
    *,
    echo: bool = False,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout (`lock_timeout`); PostgreSQL a connect
    timeout, statement and lock timeouts, TCP keepalives and a pool that waits no longer than a connect."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": lock_timeout}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    connect_args: dict[str, Any] = {}
    if url.startswith(("postgresql", "postgres")):
        connect_args = {
            "connect_timeout": max(1, round(connect_timeout)),
            "options": f"-c statement_timeout={round(statement_timeout * 1000)} "
            f"-c lock_timeout={round(lock_timeout * 1000)}",
            # a server or network that went silent is noticed in ~25 s instead of the kernel's ~2 h
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": round((connect_timeout + statement_timeout) * 1000),
        }
    engine = create_engine(
        url,
        echo=echo,
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
        pool_timeout=connect_timeout + lock_timeout,
        connect_args=connect_args,
    )
    _ping_after_idle(engine)
    begin_together.install(engine)  # an update's first statement travels with its BEGIN (psycopg)
    return engine


def _ping(dbapi_connection: Any) -> None:
    """`SELECT 1` outside a transaction: one round trip, and no ROLLBACK (after which psycopg would deallocate
    every statement prepared on the connection, storage/begin_together's reads sent ahead among them)."""
    autocommit = getattr(dbapi_connection, "autocommit", None)
    if autocommit is False:  # psycopg: no BEGIN before the ping (the connection is idle at checkout)
        dbapi_connection.autocommit = True
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
    finally:
        if autocommit is False:
            dbapi_connection.autocommit = False
    if autocommit is None:  # a driver without the setting (sqlite3): end the transaction the ping opened
        dbapi_connection.rollback()


def _ping_after_idle(engine: Engine, idle: float = PING_AFTER_IDLE) -> None:
    """Ping a pooled connection at checkout only when it rested more than `idle` seconds.

    What `pool_pre_ping` does (a dead connection is replaced before the update uses it), without its extra
    round trip on every update under load: a connection given back a moment ago was alive then. A server
    lost within that moment fails that one update, and SQLAlchemy then replaces every pooled connection.
    """

    @event.listens_for(engine, "checkin")
    def _rested_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_rested(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        rested = record.info.get("checked_in")
        if rested is None or time.monotonic() - rested <= idle:
            return  # a new connection, or one in use a moment ago
        try:
            _ping(dbapi_connection)
        except Exception as err:
            raise exc.DisconnectionError() from err  # the pool opens a new connection instead


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error, always close."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at our migrations and at this engine."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with the code."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config_path_only()).get_current_head()


def alembic_config_path_only() -> Config:
    """An Alembic config without an engine (for reading the script directory)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg
