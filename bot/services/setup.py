"""Apply a checked setup file to the database: create, update, (re)activate — never delete
(`apply_setup`, returning a `SetupReport`).

Design notes: docs/design-notes.md#botservicessetuppy
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from bot.setup_file import KIND_LABELS, CommuneSpec, SetupFile, VillageSpec, name_key
from bot.texts.units import upper_first, wording
from storage import audit
from storage.models import Commune, Invite, Membership, PoliceChat, Village, VillageKind

_FIELD_LABELS = {
    "name": "tên",
    "province": "tỉnh",
    "timezone": "múi giờ",
    "kind": "loại",
    "title": "tên nhóm",
    "active": "hoạt động",
}


@dataclass
class Counts:
    """How many of one kind of thing were created, updated, left as they were, deactivated, reactivated."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    reactivated: int = 0

    def __str__(self) -> str:
        """E.g. "3 mới, 1 cập nhật, 10 không đổi"; only the non-zero counts."""
        parts = [
            (self.created, "mới"),
            (self.updated, "cập nhật"),
            (self.reactivated, "mở lại"),
            (self.deactivated, "ngừng"),
            (self.unchanged, "không đổi"),
        ]
        return ", ".join(f"{n} {word}" for n, word in parts if n) or "không có"


@dataclass
class SetupReport:
    """What `apply_setup` did: counts per kind, one Vietnamese line per change, and notices to act on."""

    communes: Counts = field(default_factory=Counts)
    villages: Counts = field(default_factory=Counts)
    unit_kinds: set[str] = field(default_factory=set)  # the kinds of the file's units, for their count's name
    police_chats: Counts = field(default_factory=Counts)
    changes: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when anything in the database changed."""
        return bool(self.changes)

    def summary(self) -> list[str]:
        """The count lines: xã, thôn/tổ dân phố, nơi nhận cảnh báo."""
        return [
            f"Xã: {self.communes}",
            f"{upper_first(wording(self.unit_kinds or None).units_formal)}: {self.villages}",
            f"Nơi nhận cảnh báo: {self.police_chats}",
        ]

    def lines(self) -> list[str]:
        """Everything to print: the changes (or "nothing changed"), the counts, then the notices."""
        out = [f"• {c}" for c in self.changes] if self.changes else ["Không có gì thay đổi."]
        out += self.summary()
        out += [f"⚠ {n}" for n in self.notices]
        return out


def _show(value: Any, key: str = "") -> str:
    if value is None:
        return "(trống)"
    if isinstance(value, bool):
        return "có" if value else "không"
    if key == "kind" and value in set(VillageKind):
        return KIND_LABELS[VillageKind(value)]
    return f"'{value}'"


def _diff(row: Any, wanted: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields of `row` that differ from `wanted`: (before, after)."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, value in wanted.items():
        current = getattr(row, name)
        if current != value:
            before[name], after[name] = current, value
    return before, after


def _describe(before: dict[str, Any], after: dict[str, Any]) -> str:
    return "; ".join(
        f"{_FIELD_LABELS.get(k, k)} {_show(before[k], k)} → {_show(after[k], k)}"
        for k in after
        if k != "active"
    )


class _Run:
    """One application of a setup file: the session, the clock reading, the actor and the report."""

    def __init__(self, session: Session, now: datetime, actor: str) -> None:
        self.session, self.now, self.actor = session, now, actor
        self.report = SetupReport()

    def audit(self, action: str, entity: str, entity_id: int | None, **detail: Any) -> None:
        audit.record(
            self.session,
            at=self.now,
            actor=self.actor,
            action=action,
            entity=entity,
            entity_id=entity_id,
            **detail,
        )

    # --- communes

    def commune(self, spec: CommuneSpec) -> None:
        wanted = {"name": spec.name, "province": spec.province, "timezone": spec.timezone}
        row = self.session.exec(select(Commune).where(Commune.code == spec.code)).first()
        counts = self.report.communes
        if row is None:
            row = Commune(code=spec.code, **wanted, active=True, created_at=self.now, updated_at=self.now)
            self.session.add(row)
            self.session.flush()
            counts.created += 1
            self.audit("setup.commune.create", "commune", row.id, code=spec.code, after=wanted)
            extra = ", ".join(f"{_FIELD_LABELS[k]} {v}" for k, v in wanted.items() if k != "name" and v)
            self.report.changes.append(f"Thêm {spec.name} (mã {spec.code}{', ' + extra if extra else ''})")
        else:
            before, after = _diff(row, {**wanted, "active": True})
            if after:
                reactivated = "active" in after
                for name, value in after.items():
                    setattr(row, name, value)
                row.updated_at = self.now
                action = "setup.commune.reactivate" if reactivated else "setup.commune.update"
                self.audit(action, "commune", row.id, code=spec.code, before=before, after=after)
                if reactivated:
                    counts.reactivated += 1
                    self.report.changes.append(f"Mở lại {spec.name} (mã {spec.code})")
                else:
                    counts.updated += 1
                if set(after) - {"active"}:
                    self.report.changes.append(f"{spec.name} (mã {spec.code}): {_describe(before, after)}")
            else:
                counts.unchanged += 1
        assert row.id is not None
        self.report_identity(row, spec)
        self.villages(row, spec)
        self.police_chats(row, spec)

    def report_identity(self, commune: Commune, spec: CommuneSpec) -> None:
        """Who issues and signs the commune's Word report (`report:`; absent: the shipped wording)."""
        wanted = spec.report.to_json() if spec.report is not None else None
        if (commune.report or None) == (wanted or None):
            return
        self.audit("setup.commune.report", "commune", commune.id, before=commune.report, after=wanted)
        commune.report, commune.updated_at = wanted or None, self.now
        collector = f"; nơi tổng hợp: {wanted['collector']}" if wanted and wanted.get("collector") else ""
        self.report.changes.append(
            f"{spec.name}: báo cáo Word "
            + ("do " + (wanted.get("issuer") or "Công an xã") + " ban hành" if wanted else "theo mẫu có sẵn")
            + collector
        )

    # --- villages

    def villages(self, commune: Commune, spec: CommuneSpec) -> None:
        rows = list(
            self.session.exec(select(Village).where(Village.commune_id == commune.id).order_by(Village.id))
        )
        by_key: dict[str, list[Village]] = {}
        for row in rows:
            by_key.setdefault(name_key(row.name), []).append(row)
        claimed: set[int] = set()

        def pick(key: str, exact: str | None) -> Village | None:
            free = [r for r in by_key.get(key, []) if r.id not in claimed]
            if not free:
                return None
            chosen = min(free, key=lambda r: (r.name != exact, not r.active, r.id))
            claimed.add(chosen.id)  # type: ignore[arg-type]
            return chosen

        # Current names first, so a renamed_from never takes a row another entry names directly.
        matched: dict[int, Village | None] = {i: pick(v.key, v.name) for i, v in enumerate(spec.villages)}
        via_rename: set[int] = set()
        for i, v in enumerate(spec.villages):
            if matched[i] is None and v.renamed_from is not None:
                matched[i] = pick(name_key(v.renamed_from), v.renamed_from)
                if matched[i] is not None:
                    via_rename.add(i)
                else:
                    self.report.notices.append(
                        f"{commune.name}: không thấy thôn cũ '{v.renamed_from}' để đổi tên — "
                        f"'{v.name}' được thêm như thôn mới"
                    )
            elif matched[i] is not None and v.renamed_from is not None:
                old = next((r for r in by_key.get(name_key(v.renamed_from), []) if r.active), None)
                if old is not None:
                    self.report.notices.append(
                        f"{commune.name}: đã có '{v.name}' nên không đổi tên '{old.name}' — "
                        f"'{old.name}' không còn trong tệp nên bị ngừng"
                    )
        for i, v in enumerate(spec.villages):
            self.village(commune, v, matched[i], renamed=i in via_rename)
        for row in rows:
            if row.id not in claimed and row.active:
                self.deactivate_village(commune, row)

    def village(self, commune: Commune, spec: VillageSpec, row: Village | None, *, renamed: bool) -> None:
        counts = self.report.villages
        self.report.unit_kinds.add(spec.kind.value)
        wanted = {"name": spec.name, "kind": spec.kind.value}
        detail = {"commune": commune.code}
        if row is None:
            row = Village(
                commune_id=commune.id, **wanted, active=True, created_at=self.now, updated_at=self.now
            )  # type: ignore[arg-type]
            self.session.add(row)
            self.session.flush()
            counts.created += 1
            self.audit("setup.village.create", "village", row.id, **detail, after=wanted)
            kind = "" if spec.kind == VillageKind.THON else f" ({KIND_LABELS[spec.kind]})"
            self.report.changes.append(f"{commune.name}: thêm {spec.name}{kind}")
            return
        before, after = _diff(row, {**wanted, "active": True})
        if not after:
            counts.unchanged += 1
            return
        for name, value in after.items():
            setattr(row, name, value)
        row.updated_at = self.now
        if "active" in after:
            action = "setup.village.reactivate"
            counts.reactivated += 1
            self.report.changes.append(f"{commune.name}: mở lại {spec.name}")
        else:
            action = "setup.village.rename" if "name" in after else "setup.village.update"
            counts.updated += 1
        if "name" in after:
            how = " (theo renamed_from)" if renamed else ""
            self.report.changes.append(f"{commune.name}: đổi tên '{before['name']}' → '{after['name']}'{how}")
        if "kind" in after:
            self.report.changes.append(
                f"{commune.name}: {spec.name} đổi loại {_show(before['kind'], 'kind')} → {_show(after['kind'], 'kind')}"
            )
        self.audit(action, "village", row.id, **detail, before=before, after=after)

    def deactivate_village(self, commune: Commune, row: Village) -> None:
        row.active, row.updated_at = False, self.now
        self.report.villages.deactivated += 1
        self.audit(
            "setup.village.deactivate",
            "village",
            row.id,
            commune=commune.code,
            name=row.name,
            before={"active": True},
            after={"active": False},
        )
        self.report.changes.append(
            f"{commune.name}: ngừng {row.name} (không còn trong tệp; báo cáo và lịch sử vẫn giữ)"
        )
        members = self.session.exec(
            select(func.count())
            .select_from(Membership)
            .where(Membership.village_id == row.id, Membership.ended_at.is_(None))  # type: ignore[union-attr]
        ).one()
        invites = self.session.exec(
            select(func.count())
            .select_from(Invite)
            .where(
                Invite.village_id == row.id,
                Invite.used_at.is_(None),  # type: ignore[union-attr]
                Invite.revoked_at.is_(None),  # type: ignore[union-attr]
                Invite.expires_at > self.now,
            )
        ).one()
        if members or invites:
            parts = [
                f"{members} người gắn với thôn" if members else "",
                f"{invites} mã mời chưa dùng" if invites else "",
            ]
            self.report.notices.append(
                f"{commune.name}: {row.name} đã ngừng nhưng còn {' và '.join(p for p in parts if p)} — "
                "họ sẽ không dùng được thôn này; hãy chuyển người sang thôn khác hoặc kết thúc vai trò, thu hồi mã mời"
            )

    # --- police chats

    def police_chats(self, commune: Commune, spec: CommuneSpec) -> None:
        rows = {
            r.chat_id: r
            for r in self.session.exec(
                select(PoliceChat).where(PoliceChat.commune_id == commune.id).order_by(PoliceChat.id)
            )
        }
        counts = self.report.police_chats
        detail = {"commune": commune.code}
        for chat in spec.police_chats:
            label = f"{chat.title} ({chat.chat_id})" if chat.title else str(chat.chat_id)
            row = rows.pop(chat.chat_id, None)
            if row is None:
                row = PoliceChat(commune_id=commune.id, chat_id=chat.chat_id, title=chat.title, active=True)  # type: ignore[arg-type]
                self.session.add(row)
                self.session.flush()
                counts.created += 1
                self.audit(
                    "setup.police_chat.create",
                    "police_chat",
                    row.id,
                    **detail,
                    after={"chat_id": chat.chat_id, "title": chat.title},
                )
                self.report.changes.append(f"{commune.name}: thêm nơi nhận cảnh báo {label}")
                continue
            before, after = _diff(row, {"title": chat.title, "active": True})
            if not after:
                counts.unchanged += 1
                continue
            for name, value in after.items():
                setattr(row, name, value)
            if "active" in after:
                action = "setup.police_chat.reactivate"
                counts.reactivated += 1
                self.report.changes.append(f"{commune.name}: mở lại nơi nhận cảnh báo {label}")
            else:
                action = "setup.police_chat.update"
                counts.updated += 1
            if "title" in after:
                self.report.changes.append(
                    f"{commune.name}: nơi nhận cảnh báo {chat.chat_id}: {_describe(before, after)}"
                )
            self.audit(
                action, "police_chat", row.id, **detail, chat_id=chat.chat_id, before=before, after=after
            )
        for row in rows.values():
            if not row.active:
                continue
            row.active = False
            counts.deactivated += 1
            self.audit(
                "setup.police_chat.deactivate",
                "police_chat",
                row.id,
                **detail,
                chat_id=row.chat_id,
                before={"active": True},
                after={"active": False},
            )
            label = f"{row.title} ({row.chat_id})" if row.title else str(row.chat_id)
            self.report.changes.append(
                f"{commune.name}: ngừng gửi cảnh báo tới {label} (không còn trong tệp)"
            )


def apply_setup(session: Session, setup: SetupFile, *, now: datetime, actor: str) -> SetupReport:
    """Bring the database in line with a checked setup file, in the caller's transaction; idempotent."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("apply_setup needs an aware datetime")
    run = _Run(session, now, actor)
    for commune in setup.communes:
        run.commune(commune)
    session.flush()
    return run.report
