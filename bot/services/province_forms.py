"""The periodic forms and period codes in use across a province (for the supervisor's roll-up)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from storage.models import Commune, CommuneForm, FormVersion, Period


def provinces(session: Session) -> list[str]:
    """The provinces that have an active commune, by name."""
    rows = session.exec(
        select(Commune.province).where(Commune.active, Commune.province.is_not(None)).distinct()  # type: ignore[union-attr]
    ).all()
    return sorted(p for p in rows if p)


def province_forms(session: Session, province: str) -> list[tuple[str, str, int]]:
    """Periodic forms used in the province: (form id, title, a representative commune_form id), main first."""
    rows = session.exec(
        select(CommuneForm.id, CommuneForm.commune_id, CommuneForm.form_id)
        .join(Commune, Commune.id == CommuneForm.commune_id)
        .where(Commune.province == province, Commune.active, CommuneForm.active)
        .order_by(CommuneForm.commune_id, CommuneForm.position, CommuneForm.id)
    ).all()
    kinds: dict[str, tuple[str, str]] = {}
    for form_id in {r[2] for r in rows}:
        newest = session.exec(
            select(FormVersion).where(FormVersion.form_id == form_id).order_by(FormVersion.version.desc())  # type: ignore[attr-defined]
        ).first()
        if newest is not None:
            kinds[form_id] = (newest.kind, newest.title)
    periodic = [r for r in rows if kinds.get(r[2], ("",))[0] == "periodic"]
    mains: Counter[str] = Counter()
    seen: set[int] = set()
    representative: dict[str, int] = {}
    for cf_id, commune_id, form_id in periodic:
        representative.setdefault(form_id, cf_id)
        if commune_id not in seen:
            seen.add(commune_id)
            mains[form_id] += 1
    order = sorted(representative, key=lambda f: (-mains[f], list(representative).index(f)))
    return [(f, kinds[f][1], representative[f]) for f in order]


def province_codes(session: Session, province: str, form_id: str) -> list[tuple[str, str, int, datetime]]:
    """(code, label, anchor period id, first opening) of the form's periods in the province, newest first."""
    rows = session.exec(
        select(Period.code, func.min(Period.label), func.min(Period.id), func.min(Period.opens_at))
        .join(Commune, Commune.id == Period.commune_id)
        .where(Commune.province == province, Commune.active, Period.form_id == form_id, Period.active)
        .group_by(Period.code)
    ).all()
    return sorted(rows, key=lambda r: (r[3], r[0]), reverse=True)


def province_default(session: Session, province: str, form_id: str, now: datetime) -> Period | None:
    """The province's period of the form to show by default: the newest opened, else the first to open."""
    codes = province_codes(session, province, form_id)
    opened = [r for r in codes if r[3] <= now]
    pick = opened[0] if opened else (codes[-1] if codes else None)
    return session.get(Period, pick[2]) if pick else None


__all__ = ["province_codes", "province_default", "province_forms", "provinces"]
