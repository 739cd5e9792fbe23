"""The watchdog bounds a database call on a connection that hangs (PostgreSQL behind a proxy that stops
forwarding); elsewhere it does nothing."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from storage.db import make_engine
from storage.outage import is_outage
from storage.watchdog import WATCHDOG, socket_fd
from tests.support.tcpproxy import TcpProxy


def test_a_guarded_call_on_a_hung_connection_fails_fast(
    engine: Engine, database_url: str, db_backend: str
) -> None:
    if db_backend != "postgresql":
        with engine.connect() as conn:
            assert socket_fd(conn) is None  # SQLite: its busy timeout bounds a locked call
            with WATCHDOG.guard(conn, 0.2):
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
        return
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    hung = make_engine(proxy.url(url.render_as_string(hide_password=False)))
    try:
        with hung.connect() as conn:
            with WATCHDOG.guard(conn, 5):  # a call that ends in time is left alone
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
            proxy.hang()
            started = time.monotonic()
            with pytest.raises(OperationalError) as caught, WATCHDOG.guard(conn, 0.5):
                conn.execute(text("SELECT 2"))
            took = time.monotonic() - started
        assert is_outage(caught.value)
        assert 0.4 <= took < 3, took
    finally:
        proxy.restore()
        hung.dispose()
        proxy.stop()
