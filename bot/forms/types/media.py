"""The `photo` and `location` question types: answered by sending a photo or a location, not text."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any, ClassVar

from bot.forms.model import Question
from bot.forms.parsing import Parsed
from bot.forms.types.base import Formats, IncompatibleValue, QuestionType, Refusal


def _is_coordinate(value: Any, limit: float) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and -limit <= value <= limit
    )


class PhotoType(QuestionType):
    """A photo: {"file_id", "file_unique_id"}; summaries and Word show the pictures."""

    name: ClassVar[str] = "photo"
    needs_input: ClassVar[str | None] = "photo"
    takes_default: ClassVar[bool] = False
    export_width: ClassVar[float] = 11

    def read(self, q: Question, text: str, today: date | None) -> Parsed:
        """Text is refused: a photo is needed."""
        raise Refusal("need_photo", {"text": text})

    def normalize(self, q: Question, raw: Any) -> Any:
        """{"file_id": …, "file_unique_id": …}."""
        if isinstance(raw, dict) and isinstance(raw.get("file_id"), str):
            return {"file_id": raw["file_id"], "file_unique_id": str(raw.get("file_unique_id") or "")}
        raise IncompatibleValue(f"{raw!r} is not a photo")

    def display(self, q: Question, value: Any, fmt: Formats) -> dict[str, Any]:
        """The `photo` words of the value macro."""
        return {"kind": "photo"}

    def export_cell(self, q: Question, value: Any, words: Mapping[str, str]) -> Any:
        """The word for "photo"."""
        return words["photo"]


class LocationType(QuestionType):
    """A location: {"lat", "lon"} (floats)."""

    name: ClassVar[str] = "location"
    needs_input: ClassVar[str | None] = "location"
    takes_default: ClassVar[bool] = False
    export_width: ClassVar[float] = 22

    def read(self, q: Question, text: str, today: date | None) -> Parsed:
        """Text is refused: a location is needed."""
        raise Refusal("need_location", {"text": text})

    def normalize(self, q: Question, raw: Any) -> Any:
        """{"lat": float, "lon": float} within the globe."""
        if isinstance(raw, dict):
            lat, lon = raw.get("lat"), raw.get("lon")
            if _is_coordinate(lat, 90) and _is_coordinate(lon, 180):
                return {"lat": float(lat), "lon": float(lon)}
        raise IncompatibleValue(f"{raw!r} is not a location")

    def display(self, q: Question, value: Any, fmt: Formats) -> dict[str, Any]:
        """ "21.50000, 105.80000"."""
        return {"kind": "location", "text": f"{float(value['lat']):.5f}, {float(value['lon']):.5f}"}

    def export_cell(self, q: Question, value: Any, words: Mapping[str, str]) -> Any:
        """ "21.50000, 105.80000" (None when unreadable)."""
        if not isinstance(value, dict):
            return str(value)
        try:
            return f"{float(value['lat']):.5f}, {float(value['lon']):.5f}"
        except (KeyError, TypeError, ValueError):
            return None


PHOTO = PhotoType()
LOCATION = LocationType()
