"""The police's list of a report's files (a page of them, one button each that sends the file again) and
the caption a file is sent with (`files_message`, `file_caption`, `CB_FILES`)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from bot.forms.model import Form
from bot.forms.types.document import human_size
from bot.services.documents import Attached, has_documents
from bot.texts.templates import render
from bot.views.buttons import ButtonRows, ReplyButton

CB_ZIP = "hz"  # hz:<period>: the period's files in one zip (the /xuat offer)
CB_FILES = "hs"  # hs:f:<submission>:<n> sends file n again; hs:l:<submission>:<page> shows a page of the list
PAGE = 8  # files a page: with the page buttons, ≤ 10 buttons


def _button(role: str, data: str, **context: object) -> ReplyButton:
    text = render("documents/button.html", role=role, **context)
    return ReplyButton(html.unescape(" ".join(text.split()))[:120], data)


def files_message(
    submission_id: int, village: str, files: Sequence[Attached], page: int = 0
) -> tuple[str, ButtonRows] | None:
    """Page `page` of a submission's files with a button per file (None when it has none)."""
    if not files:
        return None
    pages = (len(files) + PAGE - 1) // PAGE
    page = min(max(page, 0), pages - 1)
    start = page * PAGE
    chunk = list(enumerate(files[start : start + PAGE], start=start + 1))
    text = render(
        "documents/list.html",
        village=village,
        total=len(files),
        page=page + 1,
        pages=pages,
        files=[{"number": n, "name": f.name, "size": human_size(f.size), "label": f.label} for n, f in chunk],
    )
    rows: list[tuple[ReplyButton, ...]] = []
    buttons = [
        _button("file", f"{CB_FILES}:f:{submission_id}:{n - 1}", number=n, name=f.name) for n, f in chunk
    ]
    rows += [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
    nav = []
    if page > 0:
        nav.append(_button("prev_page", f"{CB_FILES}:l:{submission_id}:{page - 1}", number=page))
    if page + 1 < pages:
        nav.append(_button("next_page", f"{CB_FILES}:l:{submission_id}:{page + 1}", number=page + 2))
    if nav:
        rows.append(tuple(nav))
    return text, tuple(rows)


def file_caption(village: str, item: Attached) -> str:
    """The caption of a file sent again: its name and size, the village and the question's short label."""
    return render(
        "documents/caption.html",
        name=item.name,
        size=human_size(item.size),
        village=village,
        label=item.label,
    )


def zip_rows(form: Form, period_id: int) -> ButtonRows:
    """The "🗂 Hồ sơ (zip)" row of the /xuat offer when the form asks for files (none otherwise)."""
    if not has_documents(form):
        return ()
    return ((ReplyButton(render("documents/zip_button.html").strip(), f"{CB_ZIP}:{period_id}"),),)
