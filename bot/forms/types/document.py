"""The `document` question type: files (PDF, Word, Excel, images) sent as Telegram documents.

An answer is a JSON list of files, each {"file_id", "file_unique_id", "name", "mime", "size"} (the ids are
enough to fetch the file again through the Bot API); a question takes up to `max_files` of them (the
"Xong" button ends the list earlier), each of a type in `accept` and at most `max_mb` megabytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

from bot.forms.model import Question
from bot.forms.option import Option
from bot.forms.parsing import Parsed
from bot.forms.types.base import Formats, IncompatibleValue, QuestionType, Refusal

BOT_API_MAX_MB = 20  # Telegram's Bot API downloads (getFile) files up to 20 MB
DEFAULT_MAX_MB = 20
DEFAULT_MAX_FILES = 1
MAX_FILES_LIMIT = 20  # a question's `max_files` at most
MAX_NAME = 200  # a file name is kept to this many characters
EXTENSIONS: Mapping[str, tuple[str, ...]] = {
    "pdf": ("application/pdf",),
    "doc": ("application/msword",),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",),
    "xls": ("application/vnd.ms-excel",),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",),
    "odt": ("application/vnd.oasis.opendocument.text",),
    "ods": ("application/vnd.oasis.opendocument.spreadsheet",),
    "jpg": ("image/jpeg",),
    "jpeg": ("image/jpeg",),
    "png": ("image/png",),
    "zip": ("application/zip", "application/x-zip-compressed"),
}
"""The file types a form may accept, by extension, with their MIME types."""
DEFAULT_ACCEPT = ("pdf", "doc", "docx", "xls", "xlsx", "jpg", "jpeg", "png")
PHOTO_NAME = "anh.jpg"  # the name given to a photo sent as a photo (Telegram gives it none)


def extension(name: str) -> str:
    """The lower-case extension of a file name ("" when it has none)."""
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].casefold() if "." in base else ""


def human_size(size: Any) -> str:
    """A file size in Vietnamese notation: "850 KB", "1,2 MB" ("" when unknown)."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return ""
    if size < 1024 * 1024:
        return f"{max(1, round(size / 1024))} KB"
    mb = Decimal(size) / (1024 * 1024)
    return f"{mb.quantize(Decimal('0.1'))} MB".replace(".", ",")


def accept_of(q: Question) -> tuple[str, ...]:
    """The extensions the question accepts."""
    return q.accept or DEFAULT_ACCEPT


def max_mb_of(q: Question) -> float:
    """The largest file the question takes, in MB."""
    return q.max_mb if q.max_mb is not None else DEFAULT_MAX_MB


def max_files_of(q: Question) -> int:
    """How many files the question takes at most."""
    return q.max_files if q.max_files is not None else DEFAULT_MAX_FILES


def accept_words(q: Question) -> str:
    """The accepted types for people: "PDF, DOC, DOCX, …" (jpeg folded into jpg)."""
    shown = [e for e in accept_of(q) if not (e == "jpeg" and "jpg" in accept_of(q))]
    return ", ".join(e.upper() for e in shown)


def _accepted(q: Question, name: str, mime: str) -> bool:
    accept = accept_of(q)
    ext = extension(name)
    if ext:
        return ext in accept
    return any(mime in EXTENSIONS.get(e, ()) for e in accept)  # a file without a name: its MIME type


def new_file(
    q: Question, file_id: str, file_unique_id: str, name: str | None, mime: str | None, size: int | None
) -> dict[str, Any]:
    """One received file as its JSON answer item; raise `Refusal` for a refused type or a file too large."""
    name = (name or "").strip()[:MAX_NAME]
    mime = (mime or "").strip()[:100]
    limits = {"name": name, "accept": accept_words(q), "max_mb": _mb_text(max_mb_of(q))}
    if not _accepted(q, name, mime):
        raise Refusal("document_type", {**limits, "ext": extension(name).upper()})
    if size is not None and size > max_mb_of(q) * 1024 * 1024:
        raise Refusal("document_too_large", {**limits, "size": human_size(size)})
    return {
        "file_id": file_id,
        "file_unique_id": file_unique_id,
        "name": name,
        "mime": mime,
        "size": size if isinstance(size, int) and size >= 0 else None,
    }


def with_file(q: Question, current: Any, item: dict[str, Any]) -> list[dict[str, Any]]:
    """The question's files after adding `item` (the same file sent twice is kept once)."""
    files = [f for f in current if isinstance(f, dict)] if isinstance(current, list) else []
    if any(f.get("file_unique_id") == item["file_unique_id"] and item["file_unique_id"] for f in files):
        return files
    return [*files, item]


def _mb_text(mb: float) -> str:
    return f"{mb:g}".replace(".", ",")


def files_of(value: Any) -> list[dict[str, Any]]:
    """The file items of a document answer (nothing for anything else)."""
    if not isinstance(value, list):
        return []
    return [f for f in value if isinstance(f, dict) and isinstance(f.get("file_id"), str)]


class DocumentType(QuestionType):
    """Files sent as documents: a list of {"file_id", "file_unique_id", "name", "mime", "size"}."""

    name: ClassVar[str] = "document"
    needs_input: ClassVar[str | None] = "document"
    many: ClassVar[bool] = True  # several files, "Xong" ends the list
    takes_default: ClassVar[bool] = False
    export_width: ClassVar[float] = 30
    error_codes: ClassVar[tuple[str, ...]] = (
        "need_document",
        "document_type",
        "document_too_large",
        "unexpected_document",
    )

    def read(self, q: Question, text: str, today: date | None) -> Parsed:
        """Text is refused: a file is needed."""
        raise Refusal(
            "need_document", {"text": text, "accept": accept_words(q), "max_mb": _mb_text(max_mb_of(q))}
        )

    def options(self, q: Question, has: bool, current: Any, selected: tuple[str, ...]) -> list[Option]:
        """ "Xong" and "Xóa các tệp đã gửi" once a file is in."""
        if not files_of(current):
            return []
        return [Option("done", "done"), Option("clear", "clear_files")]

    def spellings(self, q: Question, value: Any) -> tuple[str, ...]:
        """None: a list of files is never typed."""
        return ()

    def normalize(self, q: Question, raw: Any) -> Any:
        """A non-empty list of file items."""
        if isinstance(raw, list) and raw:
            out = []
            for f in raw:
                if not (isinstance(f, dict) and isinstance(f.get("file_id"), str)):
                    raise IncompatibleValue(f"{f!r} is not a file")
                size = f.get("size")
                out.append(
                    {
                        "file_id": f["file_id"],
                        "file_unique_id": str(f.get("file_unique_id") or ""),
                        "name": str(f.get("name") or ""),
                        "mime": str(f.get("mime") or ""),
                        "size": size if isinstance(size, int) and not isinstance(size, bool) else None,
                    }
                )
            return out
        raise IncompatibleValue(f"{raw!r} is not a list of files")

    def display(self, q: Question, value: Any, fmt: Formats) -> dict[str, Any]:
        """ "hoso.pdf (1,2 MB); bien-ban.docx (40 KB)"."""
        files = files_of(value)
        parts = [_file_words(f) for f in files]
        return {"kind": "files", "count": len(files), "text": "; ".join(parts)}

    def export_cell(self, q: Question, value: Any, words: Mapping[str, str]) -> Any:
        """The file names, "; " between them."""
        return "; ".join(f.get("name") or "?" for f in files_of(value)) or None

    def literal_problem(self, qid: str, literal: Any, op: str, choice_values: tuple[str, ...]) -> str | None:
        """A document answer is only ever tested with answered()."""
        return f"câu kiểu document ({qid}) không so sánh được với một giá trị; dùng answered({qid})"


def _file_words(f: Mapping[str, Any]) -> str:
    size = human_size(f.get("size"))
    name = str(f.get("name") or "tệp")
    return f"{name} ({size})" if size else name


TYPE = DocumentType()


LIMIT_KEYS = ("accept", "max_mb", "max_files")


def read_limits(
    raw: Mapping[Any, Any], is_document: bool, add: Any, at: str = ""
) -> tuple[tuple[str, ...], float | None, int | None]:
    """A question's `accept`, `max_mb` and `max_files` from its YAML; problems go to `add(message)`."""
    given = [k for k in LIMIT_KEYS if raw.get(k) is not None]
    if not is_document:
        for key in given:
            add(f"{at}'{key}' chỉ dùng cho câu kiểu document")
        return (), None, None
    accept: tuple[str, ...] = ()
    if raw.get("accept") is not None:
        items = raw["accept"]
        if isinstance(items, str):
            items = [items]
        if not isinstance(items, list) or not items:
            add(f"{at}'accept' phải là danh sách đuôi tệp, ví dụ [pdf, docx, xlsx]")
        else:
            seen: list[str] = []
            for item in items:
                ext = str(item).strip().lstrip(".").casefold()
                if ext not in EXTENSIONS:
                    add(f"{at}đuôi tệp {item!r} không dùng được (các đuôi: {', '.join(EXTENSIONS)})")
                elif ext not in seen:
                    seen.append(ext)
            accept = tuple(seen)
    max_mb: float | None = None
    if raw.get("max_mb") is not None:
        value = raw["max_mb"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= BOT_API_MAX_MB:
            add(f"{at}'max_mb' phải là số từ 0 đến {BOT_API_MAX_MB} (Bot API chỉ tải được tệp đến 20 MB)")
        else:
            max_mb = value
    max_files: int | None = None
    if raw.get("max_files") is not None:
        value = raw["max_files"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_FILES_LIMIT:
            add(f"{at}'max_files' phải là số nguyên từ 1 đến {MAX_FILES_LIMIT}")
        else:
            max_files = value
    return accept, max_mb, max_files


def limits_to_dict(q: Question) -> dict[str, Any]:
    """The question's limits as they are written in YAML (only those it sets)."""
    out: dict[str, Any] = {}
    if q.accept:
        out["accept"] = list(q.accept)
    if q.max_mb is not None:
        out["max_mb"] = q.max_mb
    if q.max_files is not None:
        out["max_files"] = q.max_files
    return out


def limit_words(q: Question) -> dict[str, Any]:
    """The limits as a question screen says them (accept words, MB, files); {} for other types."""
    if q.type != "document":
        return {}
    return {"accept": accept_words(q), "max_mb": _mb_text(max_mb_of(q)), "max_files": max_files_of(q)}
