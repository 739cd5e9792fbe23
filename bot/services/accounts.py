"""Invites, sign-up and who is bound to what: the accounts service (no Telegram, no clock reads)."""

from __future__ import annotations

import difflib
import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func
from sqlmodel import Session, select

from bot.services.codes import ALPHABET
from bot.services.draft_rev import REV
from storage import audit
from storage.locks import for_update
from storage.models import (
    AuditLog,
    Commune,
    Draft,
    Invite,
    InviteAttempt,
    Membership,
    Outbox,
    OutboxStatus,
    Person,
    Role,
    Submission,
    Village,
)

# Crockford base32: no I, L, O, U — nothing to misread on a phone screen.
CODE_LENGTH = 16  # 16 × 5 bits = 80 bits of randomness
DEFAULT_TTL = timedelta(days=7)
MAX_WRONG_CODES_PER_HOUR = 5
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})


class AccountError(Exception):
    """An operator asked for something impossible (unknown village, slot taken, …)."""


class RedeemOutcome(StrEnum):
    """What happened to a `/start CODE`."""

    OK = "ok"
    ALREADY = "already"  # the same person used their own code again
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    USED = "used"
    PLACE_GONE = "place_gone"  # village or commune deactivated since the code was issued
    SLOT_TAKEN = "slot_taken"  # the village already has its head (or deputy)
    HAS_OTHER_ROLE = "has_other_role"  # already bound to another village / commune with that role
    RATE_LIMITED = "rate_limited"


def normalize_name(name: str) -> str:
    """Key for comparing place names: NFC, collapsed spaces, case-folded."""
    return " ".join(unicodedata.normalize("NFC", name).split()).casefold()


def generate_code() -> str:
    """A fresh 80-bit invite code of 16 Crockford base32 characters."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(raw: str) -> str:
    """Accept codes typed with spaces, dashes, lower case and look-alike letters."""
    cleaned = "".join(ch for ch in raw.upper() if ch.isalnum())
    return cleaned.translate(_CONFUSABLE)


_CODE_SHAPE = re.compile(r"[0-9A-Za-z]{4}(?:[-\s]*[0-9A-Za-z]{4}){3}")


def looks_like_code(text: str) -> bool:
    """Whether a message is an invite code and nothing else ("ABCD-EFGH-JKMN-PQRS", any case, dashes or not)."""
    return _CODE_SHAPE.fullmatch(text.strip()) is not None


def format_code(code: str) -> str:
    """Group a code in fours for reading aloud: ABCD-EFGH-…"""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def hash_code(code: str) -> str:
    """SHA-256 of the normalised code; only this is stored."""
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


@dataclass(frozen=True)
class IssuedInvite:
    """A new invite: the code is shown once and never stored."""

    code: str
    invite: Invite
    place: str


@dataclass(frozen=True)
class RedeemResult:
    """The outcome of a sign-up attempt and what the person is now bound to."""

    outcome: RedeemOutcome
    person: Person | None = None
    membership: Membership | None = None
    commune: Commune | None = None
    village: Village | None = None


@dataclass(frozen=True)
class TelegramUser:
    """The bits of a Telegram user the accounts service needs."""

    id: int
    chat_id: int
    full_name: str
    username: str | None = None


@dataclass(frozen=True)
class PersonRow:
    """One line of `baocao people`."""

    person_id: int
    telegram_user_id: int | None
    full_name: str
    username: str | None
    role: str
    commune: str | None
    village: str | None
    is_deputy: bool
    since: datetime
    active: bool
    village_kind: str | None = (
        None  # the unit's kind, for the head's title ("tổ trưởng", "thủ trưởng đơn vị")
    )


def find_commune(session: Session, code_or_name: str) -> Commune:
    """A commune by code or (accent-exact, case-insensitive) name."""
    key = normalize_name(code_or_name)
    for commune in session.exec(select(Commune)):
        if commune.code.casefold() == key or normalize_name(commune.name) == key:
            return commune
    raise AccountError(f"Không có xã '{code_or_name}'. Kiểm tra tệp thiết lập (baocao setup).")


def find_village(session: Session, name: str, commune: str | None = None) -> Village:
    """A village by name, optionally within a commune; ambiguity and typos are explained."""
    query = select(Village)
    if commune is not None:
        query = query.where(Village.commune_id == find_commune(session, commune).id)
    villages = list(session.exec(query))
    key = normalize_name(name)
    matches = [v for v in villages if normalize_name(v.name) == key]
    if not matches:
        names = sorted({v.name for v in villages})
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f" Có phải: {', '.join(close)}?" if close else ""
        raise AccountError(f"Không có thôn '{name}'.{hint}")
    if len(matches) > 1:
        communes = {c.id: c.code for c in session.exec(select(Commune))}
        codes = ", ".join(communes[v.commune_id] for v in matches)
        raise AccountError(f"Có nhiều thôn tên '{name}' (xã: {codes}); thêm --commune.")
    return matches[0]


def _active_members(session: Session, *, village_id: int, is_deputy: bool) -> list[Membership]:
    return list(
        session.exec(
            select(Membership).where(
                Membership.village_id == village_id,
                Membership.role == Role.VILLAGE_HEAD,
                Membership.is_deputy == is_deputy,
                Membership.ended_at.is_(None),  # type: ignore[union-attr]
            )
        )
    )


def create_invite(
    session: Session,
    *,
    role: Role,
    now: datetime,
    actor: str,
    village: str | None = None,
    commune: str | None = None,
    province: str | None = None,
    deputy: bool = False,
    ttl: timedelta = DEFAULT_TTL,
) -> IssuedInvite:
    """Issue a one-time code for a village head (or deputy), a commune's police, or a supervisor."""
    if ttl <= timedelta(0):
        raise AccountError("Thời hạn mã mời phải lớn hơn 0.")
    village_row: Village | None = None
    commune_row: Commune | None = None
    if role == Role.VILLAGE_HEAD:
        if not village:
            raise AccountError("Cần --village cho mã mời trưởng thôn.")
        village_row = find_village(session, village, commune)
        if not village_row.active:
            raise AccountError(f"Thôn '{village_row.name}' đã ngừng hoạt động.")
        if not deputy and _active_members(session, village_id=village_row.id, is_deputy=False):
            raise AccountError(
                f"Thôn '{village_row.name}' đã có trưởng thôn. Dùng --deputy cho người báo cáo thứ hai, "
                "hoặc gỡ người cũ trước (baocao people remove)."
            )
        commune_row = session.get(Commune, village_row.commune_id)
        place = f"{village_row.name}, {commune_row.name if commune_row else ''}".strip(", ")
    elif role == Role.POLICE:
        if not commune:
            raise AccountError("Cần --commune cho mã mời công an xã.")
        commune_row = find_commune(session, commune)
        if not commune_row.active:
            raise AccountError(f"Xã '{commune_row.name}' đã ngừng hoạt động.")
        place = commune_row.name
    elif role == Role.SUPERVISOR:
        if not province:
            raise AccountError("Cần --province cho mã mời cấp trên (huyện/tỉnh).")
        place = province
    else:  # pragma: no cover - Role is closed
        raise AccountError(f"Vai trò lạ: {role}")

    code = generate_code()
    invite = Invite(
        code_hash=hash_code(code),
        code_hint=code[:4],
        role=role,
        commune_id=commune_row.id if commune_row else None,
        village_id=village_row.id if village_row else None,
        province=province,
        is_deputy=deputy,
        created_by=actor,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(invite)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="invite.create",
        entity="invite",
        entity_id=invite.id,
        role=str(role),
        place=place,
        deputy=deputy,
        expires_at=invite.expires_at.isoformat(),
    )
    return IssuedInvite(code=code, invite=invite, place=place)


def revoke_invite(session: Session, code: str, *, now: datetime, actor: str) -> Invite:
    """Revoke an unused code so it can no longer be redeemed."""
    invite = session.exec(select(Invite).where(Invite.code_hash == hash_code(code))).first()
    if invite is None:
        raise AccountError("Không tìm thấy mã mời này.")
    if invite.used_at is not None:
        raise AccountError("Mã này đã được dùng; hãy gỡ người đó bằng baocao people remove.")
    if invite.revoked_at is None:
        invite.revoked_at = now
        audit.record(
            session, at=now, actor=actor, action="invite.revoke", entity="invite", entity_id=invite.id
        )
    return invite


def list_invites(session: Session) -> list[Invite]:
    """All invites, newest first."""
    return list(session.exec(select(Invite).order_by(Invite.id.desc())))  # type: ignore[union-attr]


def wrong_codes_last_hour(session: Session, telegram_user_id: int, now: datetime) -> int:
    """How many wrong codes this Telegram user typed in the last hour."""
    return session.exec(
        select(func.count())
        .select_from(InviteAttempt)
        .where(
            InviteAttempt.telegram_user_id == telegram_user_id, InviteAttempt.at > now - timedelta(hours=1)
        )
    ).one()


def upsert_person(session: Session, user: TelegramUser, now: datetime) -> Person:
    """The person row for a Telegram user, created or refreshed."""
    person = session.exec(select(Person).where(Person.telegram_user_id == user.id)).first()
    if person is None:
        person = Person(
            telegram_user_id=user.id,
            chat_id=user.chat_id,
            full_name=user.full_name[:300],
            username=user.username,
            created_at=now,
            updated_at=now,
        )
        session.add(person)
        session.flush()
        return person
    if (person.full_name, person.username, person.chat_id) != (
        user.full_name[:300],
        user.username,
        user.chat_id,
    ):
        person.full_name, person.username, person.chat_id = user.full_name[:300], user.username, user.chat_id
        person.updated_at = now
    if not person.active:
        person.active, person.blocked_at, person.updated_at = True, None, now
    return person


def find_person(session: Session, telegram_user_id: int) -> Person | None:
    """The person bound to a Telegram user id, if any."""
    return session.exec(select(Person).where(Person.telegram_user_id == telegram_user_id)).first()


def active_memberships(session: Session, person_id: int) -> list[Membership]:
    """A person's current roles."""
    return list(
        session.exec(
            select(Membership).where(
                Membership.person_id == person_id,
                Membership.ended_at.is_(None),  # type: ignore[union-attr]
            )
        )
    )


def _refuse(session: Session, user: TelegramUser, now: datetime, outcome: RedeemOutcome) -> RedeemResult:
    session.add(InviteAttempt(telegram_user_id=user.id, at=now, reason=str(outcome)))
    audit.record(
        session,
        at=now,
        actor=f"telegram:{user.id}",
        action="invite.refused",
        entity="invite",
        reason=str(outcome),
    )
    return RedeemResult(outcome)


def _audit_valid_refusal(
    session: Session,
    user: TelegramUser,
    now: datetime,
    outcome: RedeemOutcome,
    invite: Invite,
    person: Person,
) -> None:
    """A valid code refused (slot taken, role already held): audited by invite id, never the code.

    Not an `InviteAttempt`: those count wrong codes towards the rate limit, and this code was right.
    """
    audit.record(
        session,
        at=now,
        actor=f"telegram:{user.id}",
        action="invite.refused",
        entity="invite",
        entity_id=invite.id,
        reason=str(outcome),
        person_id=person.id,
        role=str(invite.role),
        village_id=invite.village_id,
        commune_id=invite.commune_id,
        is_deputy=invite.is_deputy,
    )


def redeem_invite(session: Session, raw_code: str, user: TelegramUser, *, now: datetime) -> RedeemResult:
    """Bind a Telegram user to the place an invite names, or say precisely why not."""
    if wrong_codes_last_hour(session, user.id, now) >= MAX_WRONG_CODES_PER_HOUR:
        audit.record(
            session, at=now, actor=f"telegram:{user.id}", action="invite.rate_limited", entity="invite"
        )
        return RedeemResult(RedeemOutcome.RATE_LIMITED)
    invite = session.exec(select(Invite).where(Invite.code_hash == hash_code(raw_code))).first()
    if invite is None:
        return _refuse(session, user, now, RedeemOutcome.UNKNOWN)
    if invite.used_at is not None:
        person = find_person(session, user.id)
        if person is not None and invite.used_by_person_id == person.id:
            membership = next(
                (m for m in active_memberships(session, person.id) if m.role == invite.role), None
            )
            if membership is not None:
                return _result(session, RedeemOutcome.ALREADY, person, membership)
        return _refuse(session, user, now, RedeemOutcome.USED)
    if invite.revoked_at is not None:
        return _refuse(session, user, now, RedeemOutcome.REVOKED)
    if invite.expires_at <= now:
        return _refuse(session, user, now, RedeemOutcome.EXPIRED)

    village = session.get(Village, invite.village_id) if invite.village_id else None
    commune = session.get(Commune, invite.commune_id) if invite.commune_id else None
    if (village is not None and not village.active) or (commune is not None and not commune.active):
        return _refuse(session, user, now, RedeemOutcome.PLACE_GONE)

    person = upsert_person(session, user, now)
    current = active_memberships(session, person.id)
    same_role = [m for m in current if m.role == invite.role]
    if same_role:
        # One village per village head and one commune per officer keeps every report attributable.
        _audit_valid_refusal(session, user, now, RedeemOutcome.HAS_OTHER_ROLE, invite, person)
        return RedeemResult(RedeemOutcome.HAS_OTHER_ROLE, person, same_role[0], commune, village)
    if village is not None and _active_members(session, village_id=village.id, is_deputy=invite.is_deputy):
        _audit_valid_refusal(session, user, now, RedeemOutcome.SLOT_TAKEN, invite, person)
        return RedeemResult(RedeemOutcome.SLOT_TAKEN, person, None, commune, village)

    membership = Membership(
        person_id=person.id,
        role=invite.role,
        commune_id=invite.commune_id,
        village_id=invite.village_id,
        province=invite.province,
        is_deputy=invite.is_deputy,
        created_at=now,
    )
    session.add(membership)
    invite.used_at, invite.used_by_person_id = now, person.id
    session.flush()
    audit.record(
        session,
        at=now,
        actor=audit.person_actor(person.id),
        action="person.signup",
        entity="membership",
        entity_id=membership.id,
        role=str(invite.role),
        invite_id=invite.id,
        village=village.name if village else None,
        commune=commune.name if commune else None,
    )
    return _result(session, RedeemOutcome.OK, person, membership)


def _result(session: Session, outcome: RedeemOutcome, person: Person, membership: Membership) -> RedeemResult:
    village = session.get(Village, membership.village_id) if membership.village_id else None
    commune = session.get(Commune, membership.commune_id) if membership.commune_id else None
    return RedeemResult(outcome, person, membership, commune, village)


def list_people(
    session: Session, commune: str | None = None, *, include_ended: bool = False
) -> list[PersonRow]:
    """Who is bound to what (current memberships unless include_ended)."""
    query = (
        select(Membership, Person, Commune, Village)
        .join(Person, Person.id == Membership.person_id)
        .join(Village, Village.id == Membership.village_id, isouter=True)
        .join(Commune, Commune.id == Membership.commune_id, isouter=True)
    )
    if not include_ended:
        query = query.where(Membership.ended_at.is_(None))  # type: ignore[union-attr]
    if commune is not None:
        query = query.where(Membership.commune_id == find_commune(session, commune).id)
    rows = []
    for membership, person, commune_row, village in session.exec(query.order_by(Membership.id)):
        rows.append(
            PersonRow(
                person_id=person.id,
                telegram_user_id=person.telegram_user_id,
                full_name=person.full_name,
                username=person.username,
                role=membership.role,
                commune=commune_row.name if commune_row else membership.province,
                village=village.name if village else None,
                village_kind=village.kind if village else None,
                is_deputy=membership.is_deputy,
                since=membership.created_at,
                active=membership.ended_at is None and person.active,
            )
        )
    return rows


def remove_person(
    session: Session, person_id: int, *, now: datetime, actor: str, village: str | None = None
) -> list[Membership]:
    """End a person's memberships (all, or only the one in `village`); they lose access at once."""
    person = session.get(Person, person_id)
    if person is None:
        raise AccountError(f"Không có người mang mã số {person_id} (xem baocao people).")
    memberships = active_memberships(session, person_id)
    if village is not None:
        target = find_village(session, village)
        memberships = [m for m in memberships if m.village_id == target.id]
    if not memberships:
        raise AccountError("Người này không còn gắn với nơi nào để gỡ.")
    for membership in memberships:
        membership.ended_at = now
        audit.record(
            session,
            at=now,
            actor=actor,
            action="person.remove",
            entity="membership",
            entity_id=membership.id,
            person_id=person_id,
            role=membership.role,
        )
    return memberships


def village_reporters(session: Session, village_id: int) -> list[Person]:
    """The active people (head and deputy) who report for a village."""
    return list(
        session.exec(
            select(Person)
            .join(Membership, Membership.person_id == Person.id)
            .where(
                Membership.village_id == village_id,
                Membership.role == Role.VILLAGE_HEAD,
                Membership.ended_at.is_(None),  # type: ignore[union-attr]
                Person.active,
            )
        )
    )


FORGOTTEN_NAME = "đã xoá"


@dataclass(frozen=True)
class ForgetResult:
    """What `forget_person` erased and what it kept (counts only: no personal data)."""

    person_id: int
    memberships_ended: int
    submissions_kept: int
    drafts_removed: int
    outbox_rows_cleared: int
    audit_rows_pseudonymised: int
    invite_attempts_removed: int


def forget_person(session: Session, person_id: int, now: datetime, actor: str) -> ForgetResult:
    """Erase a person's personal data (name, username, Telegram ids) and end their roles; keep the reports.

    Submissions stay with the village, still linked to the person row, which now reads "đã xoá". Drafts
    only this person could continue (incident drafts) are removed; shared village drafts stay. Messages
    not yet sent to them are dropped and sent ones lose the chat id; audit rows naming their Telegram id
    name the person row instead; their wrong invite codes are removed. The erasure itself is audited.
    """

    person = session.get(Person, person_id)
    if person is None:
        raise AccountError(f"Không có người mang mã số {person_id} (xem baocao people --all).")
    if person.forgotten_at is not None:
        raise AccountError(
            f"Người mang mã số {person_id} đã được xoá thông tin lúc {person.forgotten_at:%d/%m/%Y}."
        )
    telegram_user_id = person.telegram_user_id
    ended = active_memberships(session, person_id)
    for membership in ended:
        membership.ended_at = now
    submissions = session.exec(
        select(func.count()).select_from(Submission).where(Submission.submitted_by_person_id == person_id)
    ).one()
    drafts_removed = 0
    for draft in list(session.exec(select(Draft).where(Draft.owner_person_id == person_id))):
        for other in list(session.exec(select(Person).where(Person.active_draft_id == draft.id))):
            other.active_draft_id = None
        session.delete(draft)
        drafts_removed += 1
    shared = select(Draft).where(Draft.owner_person_id.is_(None))  # type: ignore[union-attr]
    # a turn on the same draft waits (PostgreSQL); SQLite has one writer anyway
    for draft in list(session.exec(for_update(shared))):
        if str(person_id) in (draft.seen or {}):
            kept = {k: v for k, v in draft.seen.items() if k != str(person_id)}
            kept[REV] = int(kept.get(REV) or 0) + 1  # a turn that read the draft before now retries
            draft.seen = kept
    cleared = 0
    for row in list(session.exec(select(Outbox).where(Outbox.person_id == person_id))):
        if row.status in (OutboxStatus.PENDING, OutboxStatus.SENDING):
            row.status, row.claimed_by, row.claimed_until = OutboxStatus.OBSOLETE, None, None
        row.chat_id = 0
        cleared += 1
    named = select(Outbox).where(Outbox.kind.in_(("nudge", "alert")))  # type: ignore[attr-defined]
    for row in list(session.exec(named)):
        if (row.payload or {}).get("by") == person_id:
            row.payload = {**row.payload, "by_name": FORGOTTEN_NAME}
            cleared += 1
    pseudonymised = attempts = 0
    if telegram_user_id is not None:
        for row in list(
            session.exec(select(AuditLog).where(AuditLog.actor == f"telegram:{telegram_user_id}"))
        ):
            row.actor = audit.person_actor(person_id)
            pseudonymised += 1
        for attempt in list(
            session.exec(select(InviteAttempt).where(InviteAttempt.telegram_user_id == telegram_user_id))
        ):
            session.delete(attempt)
            attempts += 1
    person.full_name, person.username = FORGOTTEN_NAME, None
    person.telegram_user_id, person.chat_id = None, None
    person.active, person.active_draft_id = False, None
    person.forgotten_at = person.updated_at = now
    result = ForgetResult(
        person_id=person_id,
        memberships_ended=len(ended),
        submissions_kept=submissions,
        drafts_removed=drafts_removed,
        outbox_rows_cleared=cleared,
        audit_rows_pseudonymised=pseudonymised,
        invite_attempts_removed=attempts,
    )
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="person.forget",
        entity="person",
        entity_id=person_id,
        memberships_ended=[m.id for m in ended],
        submissions_kept=submissions,
        drafts_removed=drafts_removed,
        outbox_rows_cleared=cleared,
        audit_rows_pseudonymised=pseudonymised,
        invite_attempts_removed=attempts,
    )
    return result
