"""Copy every table of one baocao database into another (e.g. SQLite → PostgreSQL), ids preserved
(`copy_database`, `copy_tables`, `CopyReport`).

Design notes: docs/design-notes.md#storagecopypy
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic.util import CommandError
from sqlalchemy import Table, func, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers every table on the metadata)
from storage.db import current_revision, head_revision, make_engine, upgrade

DEFAULT_BATCH_SIZE = 1000


class CopyError(Exception):
    """The copy cannot start or did not complete; the message (Vietnamese) says why."""


@dataclass(frozen=True)
class TableCount:
    """Rows of one table on both sides after the copy."""

    table: str
    source: int
    destination: int

    @property
    def ok(self) -> bool:
        """True when both sides hold the same number of rows."""
        return self.source == self.destination


@dataclass(frozen=True)
class CopyReport:
    """What was copied, table by table, in copy order."""

    tables: tuple[TableCount, ...]

    @property
    def ok(self) -> bool:
        """True when every table has the same row count on both sides."""
        return all(t.ok for t in self.tables)

    @property
    def total_rows(self) -> int:
        """Rows copied over all tables."""
        return sum(t.destination for t in self.tables)


def copy_tables() -> list[Table]:
    """Every model table, parents before children (the order rows are inserted in)."""
    return list(SQLModel.metadata.sorted_tables)


def safe_url(url: str, invalid: str = "(địa chỉ không hợp lệ)") -> str:
    """The database URL with its password hidden, for messages; `invalid` when it cannot be read as a URL."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a message must never fail: any unreadable URL gets the fallback text
        return invalid


def same_database(a: str, b: str) -> bool:
    """True when both URLs point at the same database (SQLite paths resolved)."""
    ua, ub = make_url(a), make_url(b)
    if ua.get_backend_name() != ub.get_backend_name():
        return False
    if ua.get_backend_name() == "sqlite":
        da, db = ua.database or "", ub.database or ""
        if da in ("", ":memory:") or db in ("", ":memory:"):
            return False
        return Path(da).resolve() == Path(db).resolve()
    key_a = (ua.host or "localhost", ua.port or 5432, ua.database)
    return key_a == (ub.host or "localhost", ub.port or 5432, ub.database)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    line = str(orig if orig is not None else exc).strip().splitlines()
    return line[0] if line else type(exc).__name__


def _open_source(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:") or not Path(path).is_file():
            raise CopyError(f"Không thấy tệp cơ sở dữ liệu nguồn: {path or '(trống)'}.")
    engine = make_engine(url)
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise CopyError(f"Không kết nối được cơ sở dữ liệu nguồn ({safe_url(url)}): {_reason(exc)}") from None
    head = head_revision()
    if revision is None:
        engine.dispose()
        raise CopyError(f"Cơ sở dữ liệu nguồn ({safe_url(url)}) trống hoặc không phải của baocao.")
    if revision != head:
        engine.dispose()
        raise CopyError(
            f"Cơ sở dữ liệu nguồn đang ở phiên bản {revision}, mã nguồn ở {head}: chạy "
            f"`DATABASE_URL=… baocao db upgrade` cho nguồn trước rồi sao chép lại."
        )
    return engine


def _open_destination(url: str) -> Engine:
    engine = make_engine(url)
    try:
        upgrade(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise CopyError(f"Không kết nối được cơ sở dữ liệu đích ({safe_url(url)}): {_reason(exc)}") from None
    except CommandError as exc:  # e.g. the destination is at a revision this code does not know
        engine.dispose()
        raise CopyError(f"Không nâng cấp được cơ sở dữ liệu đích ({safe_url(url)}): {exc}") from None
    return engine


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _batches(conn: Connection, table: Table, size: int) -> Iterator[list[dict]]:
    query = select(table).order_by(*table.primary_key.columns)
    result = conn.execution_options(stream_results=True, yield_per=size).execute(query)
    for part in result.partitions(size):
        yield [dict(row._mapping) for row in part]


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or pk[0].autoincrement is False:
            continue
        column = pk[0].name
        seq = conn.execute(
            text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column}
        ).scalar_one()
        if seq is None:
            continue
        top = conn.execute(select(func.max(pk[0]))).scalar_one()
        if top is None:
            conn.execute(text("SELECT setval(CAST(:s AS regclass), 1, false)"), {"s": seq})
        else:
            conn.execute(text("SELECT setval(CAST(:s AS regclass), :v, true)"), {"s": seq, "v": int(top)})


def copy_database(
    source_url: str,
    destination_url: str,
    *,
    force: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[str, int], None] | None = None,
) -> CopyReport:
    """Copy every table from source to destination and return the per-table row counts."""
    if batch_size < 1:
        raise CopyError("Kích thước lô phải từ 1 trở lên.")
    try:
        if same_database(source_url, destination_url):
            raise CopyError("Nguồn và đích là cùng một cơ sở dữ liệu: chọn đích khác.")
    except ArgumentError as exc:
        raise CopyError(f"Địa chỉ cơ sở dữ liệu không hợp lệ: {exc}") from None
    tables = copy_tables()
    source = _open_source(source_url)
    try:
        destination = _open_destination(destination_url)
        try:
            return _copy(source, destination, tables, force=force, batch_size=batch_size, progress=progress)
        finally:
            destination.dispose()
    finally:
        source.dispose()


def _copy(
    source: Engine,
    destination: Engine,
    tables: list[Table],
    *,
    force: bool,
    batch_size: int,
    progress: Callable[[str, int], None] | None,
) -> CopyReport:
    src_options = {"isolation_level": "REPEATABLE READ"} if source.dialect.name == "postgresql" else {}
    try:
        with source.connect() as src, destination.begin() as dst:
            if src_options:
                src = src.execution_options(**src_options)
            filled = [(t.name, n) for t in tables if (n := _count(dst, t))]
            if filled and not force:
                listed = ", ".join(f"{name} ({n} dòng)" for name, n in filled[:4])
                listed += f" và {len(filled) - 4} bảng khác" if len(filled) > 4 else ""
                raise CopyError(
                    f"Cơ sở dữ liệu đích đã có dữ liệu: {listed}. Dùng --force để xoá hết và chép đè."
                )
            for table in reversed(tables):
                if filled:
                    dst.execute(table.delete())
            for table in tables:
                copied = 0
                for rows in _batches(src, table, batch_size):
                    dst.execute(table.insert(), rows)
                    copied += len(rows)
                    if progress is not None:
                        progress(table.name, copied)
            if destination.dialect.name == "postgresql":
                _reset_sequences(dst, tables)
            counts = tuple(TableCount(t.name, _count(src, t), _count(dst, t)) for t in tables)
            report = CopyReport(counts)
            if not report.ok:
                wrong = ", ".join(f"{c.table} {c.source}≠{c.destination}" for c in counts if not c.ok)
                raise CopyError(f"Số dòng không khớp sau khi chép ({wrong}); đã huỷ, đích không đổi.")
            return report
    except CopyError:
        raise
    except SQLAlchemyError as exc:
        raise CopyError(f"Sao chép thất bại, đích không đổi: {_reason(exc)}") from None
