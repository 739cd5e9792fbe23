"""SQLModel tables: communes, villages, people, roles, invites, chats and the audit log.

Datetimes are timezone-aware and stored as UTC (sqlmodel UTCDateTime); local time only at the edges.
"""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict
from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class TableModel(SQLModel):
    """The base of every table. The tables are never validated by pydantic (SQLModel builds a table's row
    without it, and nothing here calls `model_validate` / `model_dump`): pydantic builds a table's validator
    and serializer only if one is ever asked for, not for each of the 22 tables on every import (issue 18,
    gate 2)."""

    model_config = ConfigDict(defer_build=True)  # type: ignore[assignment]


class Role(StrEnum):
    """What a person may do; stored on a membership."""

    VILLAGE_HEAD = "village_head"
    POLICE = "police"
    SUPERVISOR = "supervisor"


class VillageKind(StrEnum):
    """A reporting unit's kind: thôn in the countryside, tổ dân phố in towns, and the other units plans make
    report the same way (stored as its value in `village.kind`, a 20-character string)."""

    THON = "thon"
    TO_DAN_PHO = "to_dan_pho"
    KHU_DAN_CU = "khu_dan_cu"
    CO_QUAN = "co_quan"
    TRUONG_HOC = "truong_hoc"
    DOANH_NGHIEP = "doanh_nghiep"
    PHONG_BAN = "phong_ban"  # a department of an office (phòng, ban, trung tâm, đơn vị)


class Commune(TableModel, table=True):
    """A commune (xã/phường) with its villages and its police."""

    __tablename__ = "commune"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(index=True, unique=True, max_length=64)
    name: str = Field(max_length=200)
    province: str | None = Field(default=None, max_length=200, index=True)
    timezone: str | None = Field(default=None, max_length=64)
    # No reminders between these local times (the window may wrap midnight); None: 21:00–06:30.
    quiet_start: time | None = None
    quiet_end: time | None = None
    # Who issues and signs its Word report (bot.setup_file.specs.ReportIdentity.to_json); None: Công an xã
    report: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    active: bool = Field(default=True)
    created_at: datetime
    updated_at: datetime


class Village(TableModel, table=True):
    """A village (thôn) or town block (tổ dân phố) that files reports."""

    __tablename__ = "village"
    __table_args__ = (UniqueConstraint("commune_id", "name", name="uq_village_commune_name"),)

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = Field(foreign_key="commune.id", index=True)
    name: str = Field(max_length=200)
    kind: str = Field(default=VillageKind.THON, max_length=20)
    active: bool = Field(default=True)
    created_at: datetime
    updated_at: datetime


class PoliceChat(TableModel, table=True):
    """A Telegram chat (group or private) registered to receive a commune's alerts."""

    __tablename__ = "police_chat"
    __table_args__ = (UniqueConstraint("commune_id", "chat_id", name="uq_police_chat"),)

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = Field(foreign_key="commune.id", index=True)
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    title: str | None = Field(default=None, max_length=200)
    active: bool = Field(default=True)
    # set by the dispatcher when Telegram refused the chat (403: bot removed or blocked), cleared by the next
    # message that reaches it; alerts to it are kept and retried meanwhile
    unreachable_at: datetime | None = None
    unreachable_error: str | None = Field(default=None, max_length=300)


class Person(TableModel, table=True):
    """A Telegram user known to the bot."""

    __tablename__ = "person"

    id: int | None = Field(default=None, primary_key=True)
    telegram_user_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, unique=True, nullable=True, index=True)
    )
    chat_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    full_name: str = Field(default="", max_length=300)
    username: str | None = Field(default=None, max_length=64)
    active: bool = Field(default=True)
    blocked_at: datetime | None = None
    forgotten_at: datetime | None = None
    active_draft_id: int | None = Field(default=None)  # the report this person is filling in now
    created_at: datetime
    updated_at: datetime


class Membership(TableModel, table=True):
    """A person's role in a village, a commune or a province; ended memberships are kept."""

    __tablename__ = "membership"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    role: str = Field(max_length=20)
    commune_id: int | None = Field(default=None, foreign_key="commune.id", index=True)
    village_id: int | None = Field(default=None, foreign_key="village.id", index=True)
    province: str | None = Field(default=None, max_length=200)
    is_deputy: bool = Field(default=False)
    created_at: datetime
    ended_at: datetime | None = Field(default=None, index=True)


class Invite(TableModel, table=True):
    """A one-time sign-up code; only its hash is stored."""

    __tablename__ = "invite"

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=64, unique=True, index=True)
    code_hint: str = Field(max_length=8)
    role: str = Field(max_length=20)
    commune_id: int | None = Field(default=None, foreign_key="commune.id")
    village_id: int | None = Field(default=None, foreign_key="village.id")
    province: str | None = Field(default=None, max_length=200)
    is_deputy: bool = Field(default=False)
    created_by: str = Field(default="", max_length=200)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    used_by_person_id: int | None = Field(default=None, foreign_key="person.id")
    revoked_at: datetime | None = None


class InviteAttempt(TableModel, table=True):
    """A wrong invite code typed by a Telegram user (for rate limiting and the audit)."""

    __tablename__ = "invite_attempt"

    id: int | None = Field(default=None, primary_key=True)
    telegram_user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    at: datetime = Field(index=True)
    reason: str = Field(max_length=40)


class ProcessedUpdate(TableModel, table=True):
    """Telegram update ids already handled, so a redelivered update is processed once."""

    __tablename__ = "processed_update"

    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    processed_at: datetime = Field(index=True)


class AuditLog(TableModel, table=True):
    """Who changed what and when."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=60, index=True)
    entity: str = Field(max_length=40)
    entity_id: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class FormVersion(TableModel, table=True):
    """One version of a questionnaire, stored as the validated definition it was loaded from."""

    __tablename__ = "form_version"
    __table_args__ = (UniqueConstraint("form_id", "version", name="uq_form_version"),)

    id: int | None = Field(default=None, primary_key=True)
    form_id: str = Field(max_length=64, index=True)
    version: int
    title: str = Field(max_length=300)
    kind: str = Field(default="periodic", max_length=20)
    definition: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    checksum: str = Field(max_length=64)
    loaded_at: datetime


class CommuneForm(TableModel, table=True):
    """A form a commune uses; its newest stored version is the one people fill in."""

    __tablename__ = "commune_form"
    __table_args__ = (UniqueConstraint("commune_id", "form_id", name="uq_commune_form"),)

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = Field(foreign_key="commune.id", index=True)
    form_id: str = Field(max_length=64)
    position: int = Field(default=0)
    active: bool = Field(default=True)
    # Reminder rules from the schedule entry (bot.reminders.rules.ReminderRules.to_json); None: defaults.
    reminders: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # The schedule entry's periods and bounds (bot.calendar.periods.schedule_to_json), so the running bot
    # adds the next periods itself; None: the form has no schedule here.
    schedule: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Period(TableModel, table=True):
    """A reporting period of a form in a commune: when it opens and when it is due."""

    __tablename__ = "period"
    __table_args__ = (UniqueConstraint("commune_id", "form_id", "code", name="uq_period"),)

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = Field(foreign_key="commune.id", index=True)
    form_id: str = Field(max_length=64)
    code: str = Field(max_length=32)
    label: str = Field(max_length=200)
    opens_at: datetime = Field(index=True)
    due_at: datetime = Field(index=True)
    closes_at: datetime  # late reports are still taken (marked late) until this time
    # The schedule rule it comes from, as written ("{nam}-6T"); "the previous period" is the previous one of
    # the same series, never another topic's on the same form. None: made before series were kept.
    series: str | None = Field(default=None, max_length=32)
    # The commune's compiled report is due upward then, to these bodies (`upward:` of the schedule); None: no
    # upward deadline set in the file.
    upward_due_at: datetime | None = Field(default=None)
    upward_to: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # "police": a report the commune police write themselves (`reporter: police` of the schedule): no unit takes
    # part, its deadline is `upward_due_at`; None: the units' report.
    reporter: str | None = Field(default=None, max_length=16)
    active: bool = Field(default=True)
    created_at: datetime
    updated_at: datetime


class PeriodRequest(TableModel, table=True):
    """An ad hoc period ("yêu cầu đột xuất") and who asked for it: a police officer in Telegram or the CLI."""

    __tablename__ = "period_request"

    period_id: int = Field(foreign_key="period.id", primary_key=True)
    by_person_id: int | None = Field(default=None, foreign_key="person.id")
    by_name: str = Field(default="", max_length=200)
    at: datetime


class PeriodUnit(TableModel, table=True):
    """A village a period is limited to; a period with no rows is for every village of its commune."""

    __tablename__ = "period_unit"

    period_id: int = Field(foreign_key="period.id", primary_key=True)
    village_id: int = Field(foreign_key="village.id", primary_key=True)


class PendingRequest(TableModel, table=True):
    """A police officer's `/yeucau` in progress (one per person), kept so that a restart loses nothing."""

    __tablename__ = "pending_request"

    person_id: int = Field(foreign_key="person.id", primary_key=True)
    step: str = Field(max_length=12)  # commune | form | due | units | confirm
    commune_id: int | None = Field(default=None, foreign_key="commune.id")
    province: str | None = Field(default=None, max_length=200)  # the roll-up role: every commune of it
    form_id: str | None = Field(default=None, max_length=64)
    due_on: date | None = None  # the last local day of the deadline
    # chosen villages; None: every village of the commune
    village_ids: list[int] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    page: int = Field(default=0)
    updated_at: datetime


class Draft(TableModel, table=True):
    """A report being filled in: the engine state, saved after every answer.

    Periodic reports have one shared draft per village and period; incident reports one per person.
    """

    __tablename__ = "draft"

    id: int | None = Field(default=None, primary_key=True)
    village_id: int = Field(foreign_key="village.id", index=True)
    form_id: str = Field(max_length=64)
    period_id: int | None = Field(default=None, foreign_key="period.id", index=True)
    owner_person_id: int | None = Field(default=None, foreign_key="person.id")
    form_version: int
    state: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    seen: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )  # person id → seq
    amending_submission_id: int | None = Field(default=None, foreign_key="submission.id")
    updated_by_person_id: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime
    updated_at: datetime


class Submission(TableModel, table=True):
    """A submitted report; an amendment is a new row and the older one stays, no longer current."""

    __tablename__ = "submission"
    __table_args__ = (
        UniqueConstraint("village_id", "form_id", "period_id", "version_no", name="uq_submission_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    village_id: int = Field(foreign_key="village.id", index=True)
    form_id: str = Field(max_length=64, index=True)
    period_id: int | None = Field(default=None, foreign_key="period.id", index=True)
    form_version: int
    version_no: int = Field(default=1)
    is_current: bool = Field(default=True, index=True)
    answers: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    submitted_by_person_id: int | None = Field(default=None, foreign_key="person.id")
    sent_at: datetime
    received_at: datetime
    on_time: bool = Field(default=True)
    receipt: str = Field(max_length=16, index=True)


class Reopening(TableModel, table=True):
    """Police let a village amend a report after the deadline, until a given time."""

    __tablename__ = "reopening"

    id: int | None = Field(default=None, primary_key=True)
    village_id: int = Field(foreign_key="village.id", index=True)
    period_id: int = Field(foreign_key="period.id", index=True)
    by_person_id: int | None = Field(default=None, foreign_key="person.id")
    at: datetime
    until: datetime


class OutboxStatus(StrEnum):
    """Where an outgoing message stands."""

    PENDING = "pending"  # planned, waiting for its time
    SENDING = "sending"  # claimed by a dispatcher until `claimed_until`
    SENT = "sent"  # Telegram said ok
    FAILED = "failed"  # gave up (e.g. 403: the person blocked the bot)
    OBSOLETE = "obsolete"  # no longer useful (report submitted, newer reminder, person removed)


class Outbox(TableModel, table=True):
    """A message the bot owes someone (reminder, digest, nudge, summary, incident alert, notice), sent by the
    dispatcher.

    `key` makes planning idempotent: the planner may run any number of times, in any number of
    processes, and still writes each (person, period, rule) once.
    """

    __tablename__ = "outbox"
    # the dispatcher's claim: pending rows by due time, an index range scan instead of a sort
    __table_args__ = (Index("ix_outbox_status_due_at", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True, index=True)
    kind: str = Field(max_length=20, index=True)  # reminder | digest | nudge | summary | alert | notice
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    village_id: int | None = Field(default=None, foreign_key="village.id", index=True)
    period_id: int | None = Field(default=None, foreign_key="period.id", index=True)
    rule: str | None = Field(default=None, max_length=40)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    due_at: datetime = Field(index=True)
    created_at: datetime
    status: str = Field(default=OutboxStatus.PENDING, max_length=12, index=True)
    claimed_by: str | None = Field(default=None, max_length=80)
    claimed_until: datetime | None = None
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, max_length=300)
    sent_at: datetime | None = None
    telegram_message_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class ReportNote(TableModel, table=True):
    """What an officer wrote in Telegram for one part of a period's Word report ("assessment": Đánh giá chung,
    "direction": Phương hướng), used instead of the bot's draft; the latest text only (changes audited)."""

    __tablename__ = "report_note"

    period_id: int = Field(foreign_key="period.id", primary_key=True)
    part: str = Field(max_length=12, primary_key=True)
    text: str = Field(max_length=3000)
    by_person_id: int | None = Field(default=None, foreign_key="person.id")
    at: datetime


class PendingNote(TableModel, table=True):
    """An officer about to type one part of a report (their next text message is it); one per person."""

    __tablename__ = "pending_note"

    person_id: int = Field(foreign_key="person.id", primary_key=True)
    period_id: int = Field(foreign_key="period.id")
    part: str = Field(max_length=12)
    at: datetime


class PaidBroadcastDay(TableModel, table=True):
    """Paid broadcast messages (0.1 Telegram Star each) reserved on one day (BAOCAO_TIMEZONE): the spending cap
    survives restarts. A count of reservations: never less than what was sent."""

    __tablename__ = "paid_broadcast_day"

    day: str = Field(max_length=10, primary_key=True)  # YYYY-MM-DD, local
    messages: int = Field(default=0)
