"""Reading submissions back: answers as labelled, formatted rows (for alerts, reviews and summaries)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.forms.model import Form, QType, Question


def format_value(question: Question, value: Any) -> str:
    """A stored JSON answer as people read it (Vietnamese number and date formats, choice labels)."""
    from bot.forms.view import format_value as view_format_value

    return view_format_value(question, value)


def answer_rows(
    form: Form, answers: Mapping[str, Any]
) -> tuple[list[dict[str, str]], list[tuple[str, str]], list[tuple[str, tuple[float, float]]]]:
    """Labelled rows of a submission, plus its photos (label, file_id) and locations (label, (lat, lon))."""
    rows: list[dict[str, str]] = []
    photos: list[tuple[str, str]] = []
    locations: list[tuple[str, tuple[float, float]]] = []

    def visit(question: Question, value: Any, prefix: str = "") -> None:
        label = f"{prefix}{question.label}"
        if value is None:
            return
        if question.type == QType.PHOTO and isinstance(value, dict) and value.get("file_id"):
            photos.append((label, str(value["file_id"])))
        elif question.type == QType.LOCATION and isinstance(value, dict):
            try:
                locations.append((label, (float(value["lat"]), float(value["lon"]))))
            except (KeyError, TypeError, ValueError):
                return
        rows.append({"label": label, "value": format_value(question, value)})

    for question in form.questions:
        if question.type == QType.NOTE or question.id not in answers:
            continue
        value = answers[question.id]
        if question.type == QType.REPEAT and isinstance(value, list):
            rows.append({"label": question.label, "value": str(len(value))})
            for index, item in enumerate(value, start=1):
                if not isinstance(item, dict):
                    continue
                for sub in question.questions:
                    if sub.type != QType.NOTE and sub.id in item:
                        visit(sub, item[sub.id], prefix=f"{index}. ")
        else:
            visit(question, value)
    return rows, photos, locations
