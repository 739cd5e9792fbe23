"""The limits and key lists of the form YAML format (lengths, counts, id patterns, the known keys)."""

from __future__ import annotations

import re

from bot.forms.types import TYPES

FORM_KEYS = (
    "id",
    "title",
    "version",
    "kind",
    "description",
    "alert_early_when",
    "sections",
    "questions",
    "checks",
    "derived",
)
SECTION_KEYS = ("title", "questions")
QUESTION_KEYS = (
    "id",
    "type",
    "label",
    "short",
    "hint",
    "required",
    "default",
    "relevant",
    "min",
    "max",
    "max_length",
    "choices",
    "questions",
    "max_count",
    "add_prompt",
    "accept",
    "max_mb",
    "max_files",
    "plausible",
)
PLAUSIBLE_KEYS = ("factor",)
DEFAULT_PLAUSIBLE_FACTOR = 10
CHOICE_KEYS = ("value", "label")
CHECK_KEYS = ("condition", "message", "questions")
KINDS = ("periodic", "incident")
TEXT_MAX_LENGTH = {name: t.text_limit for name, t in TYPES.items() if t.text_limit is not None}
MAX_TEXT_LENGTH = 4000  # a Telegram message holds 4096 characters
MAX_CHOICES = 50
MAX_ID_LENGTH = 40  # ids and choice values travel in Telegram callback data (64 bytes)
MAX_FILE_BYTES = 1_000_000
MAX_TITLE = 200  # form and section titles: lists, buttons, receipts (form_version.title is varchar(300))
MAX_LABEL = 1000  # a question, its hint, a check's message: a screen holds 4096 characters in all
MAX_CHOICE_LABEL = 100  # a choice is a button and is typed back
MAX_SHORT = 40  # a question's short label: one line of a phone's review page, a column or chart label
MAX_CHARS = {
    "title": MAX_TITLE,
    "description": 2000,
    "label": MAX_LABEL,
    "short": MAX_SHORT,
    "hint": MAX_LABEL,
    "add_prompt": 300,
    "message": MAX_LABEL,
    "condition": MAX_LABEL,
    "alert_early_when": MAX_LABEL,
}
FORM_ID_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*\Z")
QUESTION_ID_RE = re.compile(r"[a-z_][a-z0-9_]*\Z")
CHOICE_VALUE_RE = re.compile(r"[a-z0-9_]+\Z")
TYPE_NAMES = ", ".join(TYPES)
