"""The outbox seen by its dispatcher: what a renderer returns (`Parts`, `OutboxPhoto`), the requests a
message takes (`SendStep`), what became of each row (`SendOutcome`, `DispatchResult`, `DispatchReport`), and
the one-row UPDATEs that renew, mark and hand back claimed rows (claims themselves: storage.outbox_claims),
and the messages stored whole when written (incident alerts, notices: `STORED_KINDS`, `render_stored`)."""

from __future__ import annotations

import os
import secrets
import socket
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Session

from storage import audit
from storage.models import Outbox, OutboxStatus, Person, PoliceChat, Village
from storage.outbox_claims import OUTBOX, Claimed

if TYPE_CHECKING:  # python-telegram-bot is imported when a message is sent, not when one is queued
    from telegram import InlineKeyboardMarkup

BACKOFF_BASE: Final = timedelta(seconds=30)
BACKOFF_CAP: Final = timedelta(hours=1)
KIND_ALERT: Final = "alert"  # an incident alert to a police chat
KIND_NOTICE: Final = "notice"  # a notice to someone other than the actor (e.g. "đã mở lại" to a head)
STORED_KINDS: Final = frozenset({KIND_ALERT, KIND_NOTICE})  # rendered when written: payload["steps"]
# where a stored text names the person who acted: filled from payload["by_name"] (HTML) when sent, so that
# forgetting the person (bot.services.accounts.forget_person) only rewrites that one field
BY_NAME_SLOT: Final = "\u2063by-name\u2063"
# Alerts and notices are retried soon and for long: 5 s, 10 s, 20 s, … at most 10 min, 200 tries (about a day
# and a half); a 403 from a police chat keeps its alerts (the chat may take the bot back)
URGENT_BACKOFF_BASE: Final = timedelta(seconds=5)
URGENT_BACKOFF_CAP: Final = timedelta(minutes=10)
URGENT_MAX_ATTEMPTS: Final = 200
CAPTION_MAX: Final = 1024  # Telegram's longest photo or file caption


class Outgoing(Protocol):
    """What a render function returns: an HTML text and inline buttons as rows of (label, data)."""

    text: str
    buttons: Sequence[Sequence[tuple[str, str]]]


RenderFn = Callable[[Session, Outbox, datetime], "Outgoing | None"]
PARTS_SENT: Final = "parts_sent"  # payload key: parts of a multi-part message already sent


@dataclass(frozen=True)
class OutboxPhoto:
    """A picture sent before the text parts: PNG (or JPEG) bytes, a file name and an HTML caption ≤ 1024."""

    content: bytes = field(repr=False)
    filename: str
    caption: str = ""


@dataclass(frozen=True)
class Parts:
    """A message in several parts: photos first, then texts (each ≤ 4096); buttons on the last text.

    Each part is recorded in the row's payload (`parts_sent`) as soon as Telegram accepted it, so a
    retry goes on with the next part; the row is marked sent after the last one.
    """

    texts: tuple[str, ...]
    photos: tuple[OutboxPhoto, ...] = ()
    buttons: Sequence[Sequence[tuple[str, str]]] = ()

    @property
    def text(self) -> str:
        """The first text part (what a one-part reader shows)."""
        return self.texts[0] if self.texts else ""


@dataclass(frozen=True)
class SendStep:
    """One request of a message: a photo (uploaded, or a Telegram file id with `text` as caption), a file
    (a Telegram file id with `text` as caption), a map pin or a text, with the buttons if it is the last text."""

    text: str = ""
    photo: OutboxPhoto | None = None
    markup: InlineKeyboardMarkup | None = None
    photo_id: str | None = None
    location: tuple[float, float] | None = None
    document_id: str | None = None

    @property
    def optional(self) -> bool:
        """A picture, a file or a pin: skipped when Telegram refuses it (400), the rest still goes."""
        return (
            self.photo is not None
            or self.photo_id is not None
            or self.document_id is not None
            or self.location is not None
        )


@dataclass(frozen=True)
class Stored:
    """A message stored whole in its row (`payload["steps"]`), sent as those requests in that order."""

    steps: tuple[SendStep, ...]
    buttons: Sequence[Sequence[tuple[str, str]]] = ()

    @property
    def text(self) -> str:
        """The first text (what a one-part reader shows)."""
        return next(
            (s.text for s in self.steps if s.text and s.photo_id is None and s.document_id is None), ""
        )


def stored_steps(
    text: str,
    photos: Sequence[tuple[str, str]] = (),
    pins: Sequence[tuple[str, tuple[float, float]]] = (),
    buttons: Sequence[Sequence[tuple[str, str]]] = (),
    documents: Sequence[tuple[str, str]] = (),
) -> list[dict[str, Any]]:
    """The JSON steps of a stored message: the text (with `buttons`, rows of (label, data), under it), then
    each (caption, file id) photo, then each (caption, file id) file (`documents`), then each
    (caption, (latitude, longitude)) pin as its caption and the pin; captions cut to Telegram's 1024."""
    steps: list[dict[str, Any]] = [{"text": text}]
    if buttons:
        steps[0]["buttons"] = [[[label, data] for label, data in row] for row in buttons]
    steps += [{"photo_id": file_id, "text": caption[:CAPTION_MAX]} for caption, file_id in photos]
    steps += [{"document_id": file_id, "text": caption[:CAPTION_MAX]} for caption, file_id in documents]
    for caption, (lat, lon) in pins:
        steps += [{"text": caption}, {"location": [lat, lon]}]
    return steps


def render_stored(row: Outbox) -> Stored | None:
    """The message of a stored-kind row as written, the actor's name put in (None when it holds no step)."""
    from bot.delivery.telegram_send import inline_keyboard

    steps = []
    name = str((row.payload or {}).get("by_name", ""))
    for raw in (row.payload or {}).get("steps", ()):
        location = raw.get("location")
        steps.append(
            SendStep(
                text=str(raw.get("text", "")).replace(BY_NAME_SLOT, name),
                photo_id=raw.get("photo_id"),
                document_id=raw.get("document_id"),
                location=(float(location[0]), float(location[1])) if location else None,
                markup=inline_keyboard(
                    [[(str(b[0]), str(b[1])) for b in row] for row in raw.get("buttons") or ()]
                ),
            )
        )
    return Stored(tuple(steps)) if steps else None


def message_steps(out: Outgoing) -> list[SendStep]:
    """The requests an outgoing message takes: its photos, then its texts (buttons on the last text); a stored
    message's steps as they are."""
    if isinstance(out, Stored):
        return list(out.steps)
    from bot.delivery.telegram_send import inline_keyboard

    photos = tuple(getattr(out, "photos", ()) or ())
    texts = tuple(getattr(out, "texts", ()) or ()) or (out.text,)
    markup = inline_keyboard(out.buttons)
    steps = [SendStep(photo=p) for p in photos]
    steps += [SendStep(text=t, markup=markup if i == len(texts) - 1 else None) for i, t in enumerate(texts)]
    return steps


class SendOutcome(StrEnum):
    """What became of one claimed row in this run."""

    SENT = "sent"
    FAILED = "failed"
    OBSOLETE = "obsolete"
    RETRY = "retry"  # handed back with backoff after a transient error
    RELEASED = "released"  # handed back untouched (graceful stop before sending)
    LOST = "lost"  # another dispatcher took the row over (our lease had ended); not sent by us


_LABELS: Final = {
    SendOutcome.SENT: "đã gửi",
    SendOutcome.FAILED: "thất bại",
    SendOutcome.OBSOLETE: "không cần nữa",
    SendOutcome.RETRY: "gửi lại sau",
    SendOutcome.RELEASED: "trả lại",
    SendOutcome.LOST: "bỏ qua",
}


@dataclass(frozen=True)
class DispatchResult:
    """The outcome for one row."""

    row_id: int
    key: str
    kind: str
    chat_id: int
    outcome: SendOutcome
    detail: str = ""
    message_id: int | None = None
    retry_at: datetime | None = None

    def line(self) -> str:
        """One line for the command line."""
        head = f"{_LABELS[self.outcome]:<14} #{self.row_id} {self.kind} → chat {self.chat_id} [{self.key}]"
        if self.outcome is SendOutcome.SENT:
            return f"{head} (tin nhắn {self.message_id})"
        if self.outcome is SendOutcome.RETRY and self.retry_at is not None:
            return f"{head}: {self.detail} — thử lại lúc {self.retry_at:%Y-%m-%d %H:%M:%S} UTC"
        return f"{head}: {self.detail}" if self.detail else head


@dataclass
class DispatchReport:
    """Everything one `dispatch_due` run did."""

    results: list[DispatchResult] = field(default_factory=list)
    claimed: int = 0
    flood_waits: int = 0  # 429s answered by pausing and sending again
    already_sent: int = 0  # marks that found the row sent by someone else (a duplicate happened)
    unmarked: int = 0  # sent, not recorded when the run stopped: kept in memory, recorded when the DB answers
    late_marks: int = 0  # sent, recorded only after the database answered again (never sent twice)
    more: bool = False  # stopped by the time budget with rows possibly still due
    commit_windows: list[float] = field(default_factory=list)  # seconds from Telegram's ok to commit

    def count(self, outcome: SendOutcome) -> int:
        """How many rows ended with `outcome`."""
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def sent(self) -> int:
        """Rows sent."""
        return self.count(SendOutcome.SENT)

    @property
    def failed(self) -> int:
        """Rows given up."""
        return self.count(SendOutcome.FAILED)

    @property
    def obsolete(self) -> int:
        """Rows no longer useful."""
        return self.count(SendOutcome.OBSOLETE)

    @property
    def retried(self) -> int:
        """Rows handed back for a later attempt."""
        return self.count(SendOutcome.RETRY)

    def summary(self) -> str:
        """One Vietnamese line: counts by outcome."""
        counts = Counter(r.outcome for r in self.results)
        parts = [f"{_LABELS[o]} {counts[o]}" for o in SendOutcome if counts[o] or o is SendOutcome.SENT]
        extra = f"; {self.flood_waits} lần Telegram bảo chờ (429)" if self.flood_waits else ""
        return f"Tin nhắn đến hạn: {self.claimed} — " + ", ".join(parts) + extra


def default_worker_id() -> str:
    """host:pid:random — unique per process, readable in `claimed_by`."""
    return f"{socket.gethostname()[:50]}:{os.getpid()}:{secrets.token_hex(3)}"


def retry_delay(attempts: int, kind: str = "") -> timedelta:
    """Backoff after the `attempts`-th failed try: 30 s, 1 min, 2 min, … at most 1 h (alerts and notices:
    5 s, 10 s, … at most 10 min)."""
    base, cap = (
        (URGENT_BACKOFF_BASE, URGENT_BACKOFF_CAP) if kind in STORED_KINDS else (BACKOFF_BASE, BACKOFF_CAP)
    )
    exponent = max(0, attempts - 1)
    if exponent >= 20:
        return cap
    return min(cap, base * (2**exponent))


# ---------------------------------------------------------------------------------- one-row UPDATEs


def _mine(row_id: int, worker_id: str) -> Any:
    c = OUTBOX.c
    return and_(c.id == row_id, c.claimed_by == worker_id, c.status == OutboxStatus.SENDING.value)


def renew_lease(conn: Connection, row_id: int, worker_id: str, until: datetime) -> bool:
    """Move the lease of a row we hold to `until`; False when another dispatcher took it over."""
    done = conn.execute(update(OUTBOX).where(_mine(row_id, worker_id)).values(claimed_until=until)).rowcount
    return bool(done)


def record_progress(conn: Connection, row_id: int, worker_id: str, payload: dict[str, Any]) -> bool:
    """Write the payload (with `parts_sent`) of a row we hold."""
    done = conn.execute(update(OUTBOX).where(_mine(row_id, worker_id)).values(payload=payload)).rowcount
    return bool(done)


def mark_sent(conn: Connection, row_id: int, at: datetime, message_id: int | None) -> bool:
    """`status = 'sent'` unless it is already; False when someone else marked it first."""
    c = OUTBOX.c
    done = conn.execute(
        update(OUTBOX)
        .where(c.id == row_id, c.status != OutboxStatus.SENT.value)
        .values(
            status=OutboxStatus.SENT.value,
            sent_at=at,
            telegram_message_id=message_id,
            claimed_until=None,
            last_error=None,
        )
    ).rowcount
    return bool(done)


def finish(conn: Connection, row_id: int, worker_id: str, status: OutboxStatus, error: str | None) -> bool:
    """End a row we hold with `status` (failed, obsolete)."""
    done = conn.execute(
        update(OUTBOX)
        .where(_mine(row_id, worker_id))
        .values(status=status.value, claimed_until=None, last_error=error)
    ).rowcount
    return bool(done)


def hand_back(conn: Connection, row_id: int, worker_id: str, error: str, retry_at: datetime | None) -> bool:
    """Count a failed try of a row we hold: pending again at `retry_at`, or `failed` when None."""
    c = OUTBOX.c
    if retry_at is None:
        values: dict[str, Any] = {"status": OutboxStatus.FAILED.value, "claimed_until": None}
    else:
        values = {
            "status": OutboxStatus.PENDING.value,
            "claimed_by": None,
            "claimed_until": None,
            "due_at": retry_at,
        }
    done = conn.execute(
        update(OUTBOX)
        .where(_mine(row_id, worker_id))
        .values(attempts=c.attempts + 1, last_error=error, **values)
    ).rowcount
    return bool(done)


def release_unsent(conn: Connection, row_ids: list[int], worker_id: str) -> None:
    """Hand rows we hold back to `pending` untouched (a stop before sending)."""
    c = OUTBOX.c
    conn.execute(
        update(OUTBOX)
        .where(c.id.in_(row_ids), c.claimed_by == worker_id, c.status == OutboxStatus.SENDING.value)
        .values(status=OutboxStatus.PENDING.value, claimed_by=None, claimed_until=None)
    )


def fail_blocked_chat(
    session: Session, row: Claimed, worker_id: str, chat_id: int, error: str, now: datetime
) -> int:
    """The chat refused the bot (403): the row and every other pending one for that chat `failed`, the
    person inactive and `blocked_at` (audited); returns how many other rows failed."""
    c = OUTBOX.c
    session.execute(
        update(OUTBOX)
        .where(_mine(row.id, worker_id))
        .values(status=OutboxStatus.FAILED.value, claimed_until=None, last_error=error)
    )
    others = session.execute(
        update(OUTBOX)
        .where(
            c.chat_id == chat_id,
            c.id != row.id,
            c.kind != KIND_ALERT,  # a police chat's alerts wait for it to take the bot back
            or_(
                c.status == OutboxStatus.PENDING.value,
                and_(c.status == OutboxStatus.SENDING.value, c.claimed_by == worker_id),
            ),
        )
        .values(
            status=OutboxStatus.FAILED.value,
            claimed_until=None,
            last_error=f"chat đã chặn bot (xem #{row.id})",
        )
    ).rowcount
    people: list[Person] = []
    if chat_id > 0 or row.person_id is not None:
        who = [Person.chat_id == chat_id] if chat_id > 0 else []
        if row.person_id is not None:
            who.append(Person.id == row.person_id)
        people = list(session.scalars(select(Person).where(or_(*who), Person.active.is_(True))))
    for person in people:
        person.active = False
        person.blocked_at = now
        person.updated_at = now
        audit.record(
            session,
            at=now,
            actor="dispatcher",
            action="person.blocked",
            entity="person",
            entity_id=person.id,
            chat_id=chat_id,
            error=error,
            outbox_id=row.id,
            also_failed=others,
        )
    return int(others)


def mark_chat_unreachable(session: Session, chat_id: int, error: str, now: datetime) -> int:
    """A police chat refused the bot (403): `unreachable_at` set on its rows (audited the first time);
    returns how many police chat rows were newly marked."""
    chats = list(
        session.scalars(select(PoliceChat).where(PoliceChat.chat_id == chat_id, PoliceChat.active.is_(True)))
    )
    newly = 0
    for chat in chats:
        if chat.unreachable_at is None:
            newly += 1
            audit.record(
                session,
                at=now,
                actor="dispatcher",
                action="police_chat.unreachable",
                entity="police_chat",
                entity_id=chat.id,
                chat_id=chat_id,
                commune_id=chat.commune_id,
                error=error,
            )
            chat.unreachable_at = now
        chat.unreachable_error = error
    return newly


def mark_chat_reachable(conn: Connection, chat_id: int) -> bool:
    """A message reached the chat: clear `unreachable_at` on its police chat rows; True when any was set."""
    table = PoliceChat.__table__  # type: ignore[attr-defined]
    done = conn.execute(
        update(table)
        .where(table.c.chat_id == chat_id, table.c.unreachable_at.is_not(None))
        .values(unreachable_at=None, unreachable_error=None)
    ).rowcount
    return bool(done)


def follow_migration(
    session: Session, row: Claimed, worker_id: str, old: int, new: int, now: datetime
) -> int:
    """The group `old` became the supergroup `new`: the row we hold, the chat's other pending rows and its
    police chat registrations (audited) move to `new`; returns how many registrations moved."""
    c = OUTBOX.c
    session.execute(update(OUTBOX).where(_mine(row.id, worker_id)).values(chat_id=new))
    session.execute(
        update(OUTBOX).where(c.chat_id == old, c.status == OutboxStatus.PENDING.value).values(chat_id=new)
    )
    moved = 0
    for chat in session.scalars(select(PoliceChat).where(PoliceChat.chat_id == old)):
        twin = session.scalars(
            select(PoliceChat).where(PoliceChat.commune_id == chat.commune_id, PoliceChat.chat_id == new)
        ).first()
        if twin is not None:  # the new id is registered already: the old one retires
            chat.active = False
        else:
            chat.chat_id = new
        chat.unreachable_at, chat.unreachable_error = None, None
        moved += 1
        audit.record(
            session,
            at=now,
            actor="dispatcher",
            action="police_chat.migrated",
            entity="police_chat",
            entity_id=chat.id,
            old_chat_id=old,
            new_chat_id=new,
        )
    return moved


def readdress_alert(session: Session, row: Claimed, worker_id: str, now: datetime) -> int | None:
    """An alert whose chat is no longer a police chat of its village's commune (the setup file changed, e.g. a
    placeholder id replaced): a copy for each current police chat, due now, and this row obsolete; returns
    how many copies, or None when its chat is still registered (or the commune has none: it stays)."""
    obj = session.get(Outbox, row.id)
    village = session.get(Village, obj.village_id) if obj is not None and obj.village_id else None
    if obj is None or village is None:
        return None
    chats = list(
        session.scalars(
            select(PoliceChat).where(PoliceChat.commune_id == village.commune_id, PoliceChat.active.is_(True))
        )
    )
    if not chats or any(chat.chat_id == row.chat_id for chat in chats):
        return None
    prefix = row.key.rsplit(":", 1)[0]
    payload = {k: v for k, v in (obj.payload or {}).items() if k != PARTS_SENT}
    copies = 0
    for chat in chats:
        key = f"{prefix}:{chat.chat_id}"
        if session.scalars(select(Outbox.id).where(Outbox.key == key)).first() is None:
            session.add(
                Outbox(
                    key=key,
                    kind=obj.kind,
                    chat_id=chat.chat_id,
                    village_id=obj.village_id,
                    payload=payload,
                    due_at=now,
                    created_at=now,
                )
            )
            copies += 1
    session.execute(
        update(OUTBOX)
        .where(_mine(row.id, worker_id))
        .values(
            status=OutboxStatus.OBSOLETE.value,
            claimed_until=None,
            last_error="nhóm Công an xã đã đổi trong tệp cấu hình: gửi tới nhóm mới",
        )
    )
    return copies
