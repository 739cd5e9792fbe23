"""What a checked setup file gives: communes, villages and police chats as plain values, and the result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bot.calendar.periods import Schedule
from bot.calendar.reminder_rules import DEFAULT_QUIET, QuietHours
from bot.setup_file.names import name_key
from bot.yamlkit.messages import YamlError
from storage.models import VillageKind

KIND_LABELS: Final = {
    VillageKind.THON: "thôn",
    VillageKind.TO_DAN_PHO: "tổ dân phố",
    VillageKind.KHU_DAN_CU: "khu dân cư",
    VillageKind.CO_QUAN: "cơ quan",
    VillageKind.TRUONG_HOC: "trường học",
    VillageKind.DOANH_NGHIEP: "doanh nghiệp",
    VillageKind.PHONG_BAN: "phòng, ban, đơn vị",
}

# One mistake of a setup file, with its place and line (the kit's error type).
SetupError = YamlError


@dataclass(frozen=True)
class PoliceChatSpec:
    """A Telegram chat that receives a commune's alerts."""

    chat_id: int
    title: str | None = None


@dataclass(frozen=True)
class VillageSpec:
    """A village (thôn) or town block (tổ dân phố) as written in the file, names NFC-normalised."""

    name: str
    kind: VillageKind = VillageKind.THON
    renamed_from: str | None = None

    @property
    def key(self) -> str:
        """The comparison key of the name (see `name_key`)."""
        return name_key(self.name)


@dataclass(frozen=True)
class CommuneSpec:
    """A commune with its villages, police chats and the absolute paths of its form files."""

    code: str
    name: str
    villages: tuple[VillageSpec, ...]
    province: str | None = None
    timezone: str | None = None
    police_chats: tuple[PoliceChatSpec, ...] = ()
    forms: tuple[Path, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    quiet_hours: QuietHours = DEFAULT_QUIET
    # The Word report's own identity (`report:`): superior, issuer, number, recipients, signer_title,
    # signer_name; None keeps the shipped wording (Công an xã)
    report: ReportIdentity | None = None


@dataclass(frozen=True)
class ReportIdentity:
    """Who issues and signs the commune's Word report, and to whom it goes (each None: the shipped wording)."""

    superior: str | None = None
    issuer: str | None = None
    number: str | None = None
    recipients: tuple[str, ...] | None = None
    signer_title: str | None = None
    signer_name: str | None = None
    collector: str | None = None  # who collects the units' reports, in every message ("Văn phòng")

    def to_json(self) -> dict[str, object]:
        """The fields that are set, as stored on the commune."""
        out: dict[str, object] = {}
        for key in REPORT_KEYS:
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out


REPORT_KEYS: Final = (
    "superior",
    "issuer",
    "number",
    "recipients",
    "signer_title",
    "signer_name",
    "collector",
)


@dataclass(frozen=True)
class SetupFile:
    """A whole checked setup file."""

    source: Path
    version: int
    communes: tuple[CommuneSpec, ...]


@dataclass(frozen=True)
class SetupResult:
    """What checking a file gave: the parsed file when there is no error, every error, and warnings."""

    setup: SetupFile | None
    errors: tuple[SetupError, ...]
    warnings: tuple[SetupError, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the file has no error (warnings allowed)."""
        return self.setup is not None and not self.errors
