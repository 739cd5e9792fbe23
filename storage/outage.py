"""Telling a database that cannot be reached (refused, dropped, hung, locked, timed out) from a bug."""

from __future__ import annotations

from sqlalchemy import exc

_OUTAGE_TYPES = (
    exc.OperationalError,  # refused, dropped, statement/lock timeout, SQLite "database is locked"
    exc.InterfaceError,  # a connection closed under the driver
    exc.TimeoutError,  # no pooled connection free within pool_timeout (they are all stuck)
    exc.DisconnectionError,
    TimeoutError,  # a bounded wait for database work ran out (asyncio.wait_for)
    ConnectionError,
)


def is_outage(err: BaseException) -> bool:
    """True when `err` says the database is unreachable or too slow right now (try again later), not a bug."""
    if isinstance(err, _OUTAGE_TYPES):
        return True
    return isinstance(err, exc.DBAPIError) and bool(err.connection_invalidated)
