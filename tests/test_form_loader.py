"""The YAML form loader: inline forms in, either the built Form or the exact set of errors out."""

from __future__ import annotations

import json
import textwrap
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.forms.loader import (
    FormError,
    LoadResult,
    choice_value_slug,
    form_from_dict,
    form_to_dict,
    load_form_file,
    load_form_files,
)
from bot.forms.model import Check, Choice, Form, QType, Question

FORMS_DIR = Path(__file__).resolve().parent.parent / "deploy" / "forms"

HEADER = """\
id: thu
title: Biểu mẫu thử
version: 1
kind: periodic
"""


def load(tmp_path: Path, text: str, name: str = "thu.yaml") -> LoadResult:
    """Write `text` (dedented) to a file and load it."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_form_file(path)


def with_questions(questions: str, extra: str = "") -> str:
    """A complete form around an indented `questions:` block."""
    return (
        HEADER + "questions:\n" + textwrap.indent(textwrap.dedent(questions), "  ") + textwrap.dedent(extra)
    )


def only_form(result: LoadResult) -> Form:
    assert result.errors == (), [str(e) for e in result.errors]
    assert len(result.forms) == 1
    return result.forms[0]


def error_set(result: LoadResult) -> set[tuple[str | None, str]]:
    """(question, reason) of every error."""
    assert result.forms == ()
    return {(e.question, e.reason) for e in result.errors}


# ---------------------------------------------------------------------------------------------- valid forms


def test_minimal_form(tmp_path: Path) -> None:
    form = only_form(
        load(
            tmp_path,
            with_questions(
                """
                - id: so_buoi
                  type: integer
                  label: "  Thôn đã tổ chức bao nhiêu buổi?  "
                  min: 0
                - id: ghi_chu
                  type: text
                  label: Ghi chú
                  required: false
                - id: y_kien
                  type: long_text
                  label: Ý kiến
                """
            ),
        )
    )
    assert form.id == "thu"
    assert form.title == "Biểu mẫu thử"
    assert form.version == 1
    assert form.kind == "periodic"
    assert form.description is None
    assert form.source == str(tmp_path / "thu.yaml")
    assert form.checks == ()
    so_buoi, ghi_chu, y_kien = form.questions
    assert so_buoi == Question(
        id="so_buoi", type=QType.INTEGER, label="Thôn đã tổ chức bao nhiêu buổi?", min=0
    )
    assert so_buoi.required is True
    assert so_buoi.section is None
    assert ghi_chu.required is False
    assert ghi_chu.max_length == 200
    assert y_kien.max_length == 2000


def test_sections_set_question_section(tmp_path: Path) -> None:
    form = only_form(
        load(
            tmp_path,
            HEADER
            + """\
description: Mô tả.
sections:
  - title: Tuyên truyền
    questions:
      - {id: gioi_thieu, type: note, label: Xin trả lời theo số liệu của thôn., required: true}
      - {id: so_buoi, type: integer, label: Số buổi}
  - title: Ngày hội
    questions:
      - {id: da_to_chuc, type: yes_no, label: "Đã tổ chức chưa?"}
      - id: ngay
        type: date
        label: Ngày nào?
        relevant: da_to_chuc == true
""",
        )
    )
    assert form.description == "Mô tả."
    assert [(q.id, q.section) for q in form.questions] == [
        ("gioi_thieu", "Tuyên truyền"),
        ("so_buoi", "Tuyên truyền"),
        ("da_to_chuc", "Ngày hội"),
        ("ngay", "Ngày hội"),
    ]
    assert form.question("ngay").relevant == "da_to_chuc == true"
    assert [q.id for q in form.answerable] == ["so_buoi", "da_to_chuc", "ngay"]


def test_choices_strings_and_mappings(tmp_path: Path) -> None:
    form = only_form(
        load(
            tmp_path,
            with_questions(
                """
                - id: xep_loai
                  type: single_choice
                  label: Xếp loại?
                  choices: [Tốt, Khá, Trung bình, Yếu, "Đạt chuẩn, có khen"]
                - id: loai
                  type: multi_choice
                  label: Loại?
                  choices:
                    - {value: trom_cap, label: Trộm cắp}
                    - label: Đánh nhau
                    - 2024
                """
            ),
        )
    )
    assert form.question("xep_loai").choices == (
        Choice("tot", "Tốt"),
        Choice("kha", "Khá"),
        Choice("trung_binh", "Trung bình"),
        Choice("yeu", "Yếu"),
        Choice("dat_chuan_co_khen", "Đạt chuẩn, có khen"),
    )
    assert form.question("loai").choices == (
        Choice("trom_cap", "Trộm cắp"),
        Choice("danh_nhau", "Đánh nhau"),
        Choice("2024", "2024"),
    )
    assert form.question("xep_loai").choice_label("trung_binh") == "Trung bình"


def test_defaults_are_typed(tmp_path: Path) -> None:
    form = only_form(
        load(
            tmp_path,
            with_questions(
                """
                - {id: a, type: integer, label: A, default: 0, min: 0, max: 10}
                - {id: b, type: decimal, label: B, default: 2.5}
                - {id: c, type: date, label: C, default: 2026-08-19}
                - {id: d, type: date, label: D, default: "2026-05-20"}
                - {id: e, type: yes_no, label: E, default: false}
                - {id: f, type: text, label: F, default: không có}
                - {id: g, type: single_choice, label: G, choices: [Có, Không], default: khong}
                - {id: h, type: multi_choice, label: H, choices: [X, Y, Z], default: [x, z]}
                """
            ),
        )
    )
    defaults = {q.id: q.default for q in form.questions}
    assert defaults == {
        "a": 0,
        "b": Decimal("2.5"),
        "c": date(2026, 8, 19),
        "d": date(2026, 5, 20),
        "e": False,
        "f": "không có",
        "g": "khong",
        "h": ("x", "z"),
    }
    assert isinstance(defaults["b"], Decimal)


def test_repeat_group(tmp_path: Path) -> None:
    form = only_form(
        load(
            tmp_path,
            with_questions(
                """
                - {id: so_vu, type: integer, label: "Bao nhiêu vụ?", min: 0}
                - id: vu_viec
                  type: repeat
                  label: Kể các vụ việc
                  required: false
                  relevant: so_vu > 0
                  max_count: 20
                  add_prompt: Còn vụ nào nữa không?
                  questions:
                    - {id: ngay, type: date, label: "Ngày?"}
                    - {id: loai, type: single_choice, label: "Loại?", choices: [Trộm cắp, Khác]}
                    - {id: chi_tiet, type: text, label: "Việc gì?", relevant: "loai == 'khac' and so_vu > 1"}
                    - {id: anh, type: photo, label: Ảnh, required: false}
                """,
                """
                checks:
                  - {condition: count(vu_viec) <= so_vu, message: Nhiều vụ quá.}
                """,
            ),
        )
    )
    group = form.question("vu_viec")
    assert group.type == QType.REPEAT
    assert (group.max_count, group.add_prompt, group.required) == (20, "Còn vụ nào nữa không?", False)
    assert [q.id for q in group.questions] == ["ngay", "loai", "chi_tiet", "anh"]
    assert form.question("vu_viec.chi_tiet").relevant == "loai == 'khac' and so_vu > 1"
    assert form.has_question("vu_viec.anh") and not form.has_question("anh")
    assert form.checks == (Check("count(vu_viec) <= so_vu", "Nhiều vụ quá.", ("so_vu", "vu_viec")),)


def test_check_questions_default_to_condition_names_in_form_order(tmp_path: Path) -> None:
    form = only_form(
        load(
            tmp_path,
            with_questions(
                """
                - {id: a, type: integer, label: A}
                - {id: b, type: integer, label: B}
                - {id: c, type: integer, label: C}
                """,
                """
                checks:
                  - condition: c >= a
                    message: C phải lớn hơn A
                  - condition: b <= c
                    message: B nhỏ hơn C
                    questions: [c]
                """,
            ),
        )
    )
    assert form.checks == (
        Check("c >= a", "C phải lớn hơn A", ("a", "c")),
        Check("b <= c", "B nhỏ hơn C", ("c",)),
    )


def test_several_forms_in_one_file_as_a_list(tmp_path: Path) -> None:
    result = load(
        tmp_path,
        """
        - {id: mot, title: Một, version: 1, kind: periodic, questions: [{id: a, type: integer, label: A}]}
        - {id: hai, title: Hai, version: 3, kind: incident, questions: [{id: b, type: photo, label: B}]}
        """,
    )
    assert result.ok
    assert [(f.id, f.version, f.kind) for f in result.forms] == [
        ("mot", 1, "periodic"),
        ("hai", 3, "incident"),
    ]


def test_bom_and_crlf_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(
        ("\ufeff" + with_questions("- {id: a, type: integer, label: A}\n")).replace("\n", "\r\n").encode()
    )
    assert load_form_file(path).ok


# ---------------------------------------------------------------------------------------------- errors

ERRORS: list[tuple[str, str, set[tuple[str | None, str]]]] = [
    (
        "unknown key, with suggestion",
        "- {id: a, type: integer, lable: A}",
        {("a", "khóa lạ 'lable' — có phải 'label'?"), ("a", "thiếu khóa 'label'")},
    ),
    (
        "unknown type, with suggestion",
        "- {id: a, type: intger, label: A}",
        {
            (
                "a",
                "kiểu câu hỏi không hợp lệ 'intger' — có phải 'integer'? (các kiểu: integer, decimal, text, "
                "long_text, yes_no, single_choice, multi_choice, date, photo, location, note, repeat, percent, document)",
            )
        },
    ),
    (
        "missing type",
        "- {id: a, label: A}",
        {
            (
                "a",
                "thiếu khóa 'type' (các kiểu: integer, decimal, text, long_text, yes_no, single_choice, "
                "multi_choice, date, photo, location, note, repeat, percent, document)",
            )
        },
    ),
    (
        "missing id",
        "- {type: integer, label: A}",
        {(None, "câu thứ 1: thiếu khóa 'id'")},
    ),
    (
        "bad id",
        "- {id: Số_vụ, type: integer, label: A}",
        {("Số_vụ", "mã câu 'Số_vụ' không hợp lệ (chữ thường không dấu a-z, số 0-9, dấu _)")},
    ),
    (
        "reserved id",
        "- {id: count, type: integer, label: A}",
        {("count", "'count' là từ khóa của điều kiện, không dùng làm mã câu")},
    ),
    (
        "question not a mapping",
        "- so_vu",
        {(None, "câu thứ 1 phải là một mapping (id, type, label, ...), không phải 'so_vu'")},
    ),
    (
        "duplicate ids",
        """
        - {id: a, type: integer, label: A}
        - {id: a, type: text, label: A lần nữa}
        """,
        {("a", "mã câu 'a' bị trùng")},
    ),
    (
        "duplicate ids in a repeat group, and a sub id equal to a top-level id",
        """
        - {id: a, type: integer, label: A}
        - id: g
          type: repeat
          label: G
          questions:
            - {id: x, type: integer, label: X}
            - {id: x, type: integer, label: X}
            - {id: a, type: integer, label: A}
        """,
        {
            ("g.x", "mã câu 'x' bị trùng trong nhóm lặp 'g'"),
            ("g.a", "mã câu con 'a' trùng với một câu ngoài nhóm; điều kiện sẽ không phân biệt được"),
        },
    ),
    (
        "choices missing, empty, duplicated, or on a non-choice type",
        """
        - {id: a, type: single_choice, label: A}
        - {id: b, type: multi_choice, label: B, choices: []}
        - {id: c, type: single_choice, label: C, choices: [Tốt, Khá, tốt]}
        - {id: d, type: single_choice, label: D, choices: [Có, {value: co, label: Có chứ}]}
        - {id: e, type: integer, label: E, choices: [Một, Hai]}
        """,
        {
            ("a", "câu lựa chọn cần danh sách 'choices'"),
            ("b", "'choices' phải là một danh sách không rỗng"),
            ("c", "lựa chọn thứ 3: giá trị 'tot' trùng với lựa chọn thứ 1"),
            ("d", "lựa chọn thứ 2: giá trị 'co' trùng với lựa chọn thứ 1"),
            ("e", "'choices' chỉ dùng cho câu kiểu single_choice hoặc multi_choice, câu này kiểu integer"),
        },
    ),
    (
        "bad choice values and items",
        """
        - id: a
          type: single_choice
          label: A
          choices: [{value: Tốt, label: Tốt}, {label: Khá, nhan: x}, yes, "!!!"]
        """,
        {
            (
                "a",
                "lựa chọn thứ 1: giá trị 'Tốt' không hợp lệ (chữ thường không dấu a-z, số 0-9, dấu _; tối đa 40 ký tự)",
            ),
            ("a", "lựa chọn thứ 2: khóa lạ 'nhan'"),
            ("a", "lựa chọn thứ 3: True không phải chữ; hãy đặt nhãn trong ngoặc kép"),
            ("a", "lựa chọn thứ 4: không tạo được giá trị từ nhãn '!!!'; hãy ghi 'value' rõ ràng"),
        },
    ),
    (
        "a comma inside a flow mapping",
        "- {id: a, type: single_choice, label: A, choices: [{value: x, label: Cháy, nổ}]}",
        {("a", "lựa chọn thứ 1: khóa lạ 'nổ' (chữ có dấu phẩy trong { ... } hãy đặt trong ngoặc kép)")},
    ),
    (
        "min and max",
        """
        - {id: a, type: integer, label: A, min: 10, max: 5}
        - {id: b, type: text, label: B, min: 1}
        - {id: c, type: integer, label: C, max: 2.5}
        - {id: d, type: decimal, label: D, min: "0"}
        """,
        {
            ("a", "min (10) lớn hơn max (5)"),
            ("b", "'min' chỉ dùng cho câu kiểu integer hoặc decimal, câu này kiểu text"),
            ("c", "'max' của câu số nguyên phải là số nguyên, không phải 2.5"),
            ("d", "'min' phải là một số, không phải '0'"),
        },
    ),
    (
        "max_length",
        """
        - {id: a, type: integer, label: A, max_length: 10}
        - {id: b, type: text, label: B, max_length: 0}
        - {id: c, type: long_text, label: C, max_length: 5000}
        """,
        {
            ("a", "'max_length' chỉ dùng cho câu kiểu text hoặc long_text, câu này kiểu integer"),
            ("b", "'max_length' phải là số nguyên dương, không phải 0"),
            ("c", "'max_length' tối đa 4000 (giới hạn một tin nhắn Telegram)"),
        },
    ),
    (
        "defaults that do not fit",
        """
        - {id: a, type: integer, label: A, default: "3"}
        - {id: b, type: integer, label: B, min: 0, max: 10, default: 11}
        - {id: c, type: yes_no, label: C, default: có}
        - {id: d, type: single_choice, label: D, choices: [Tốt, Khá], default: Tốt}
        - {id: e, type: single_choice, label: E, choices: [Tốt, Khá], default: tott}
        - {id: f, type: multi_choice, label: F, choices: [X, Y], default: x}
        - {id: g, type: date, label: G, default: 19/8/2026}
        - {id: h, type: text, label: H, max_length: 3, default: dài quá}
        - {id: i, type: photo, label: I, default: x}
        - {id: j, type: multi_choice, label: J, choices: [X, Y], default: [x, w]}
        """,
        {
            ("a", "giá trị mặc định '3' không phải số nguyên"),
            ("b", "giá trị mặc định 11 nằm ngoài khoảng cho phép [0, 10]"),
            ("c", "giá trị mặc định 'có' không hợp lệ; câu có/không dùng true hoặc false"),
            ("d", "giá trị mặc định 'Tốt' không có trong các lựa chọn — hãy ghi giá trị 'tot' thay cho nhãn"),
            ("e", "giá trị mặc định 'tott' không có trong các lựa chọn — có phải 'tot'?"),
            ("f", "giá trị mặc định của câu nhiều lựa chọn phải là một danh sách"),
            ("g", "giá trị mặc định '19/8/2026' không phải ngày dạng YYYY-MM-DD"),
            ("h", "giá trị mặc định 'dài quá' dài hơn max_length 3"),
            ("i", "câu kiểu photo không có giá trị mặc định"),
            ("j", "giá trị mặc định 'w' không có trong các lựa chọn (có: x, y)"),
        },
    ),
    (
        "relevant: does not compile, unknown, itself, later, a note",
        """
        - {id: ghi_chu, type: note, label: Ghi chú}
        - {id: a, type: integer, label: A, relevant: "a > 0"}
        - {id: b, type: integer, label: B, relevant: "c > 0"}
        - {id: c, type: integer, label: C, relevant: "aa > 0"}
        - {id: d, type: integer, label: D, relevant: "a >"}
        - {id: e, type: integer, label: E, relevant: "ghi_chu == 1"}
        - {id: f, type: integer, label: F, relevant: 5}
        """,
        {
            ("a", "điều kiện relevant: nhắc tới chính câu này ('a')"),
            (
                "b",
                "điều kiện relevant: nhắc tới câu 'c' đứng sau; điều kiện chỉ được dựa vào câu đã trả lời trước đó",
            ),
            ("c", "điều kiện relevant: nhắc tới câu không có 'aa' — có phải 'a'?"),
            ("d", "điều kiện relevant 'a >' lỗi: điều kiện dừng giữa chừng, thiếu giá trị (cột 4)"),
            ("e", "điều kiện relevant: 'ghi_chu' là câu ghi chú (note), không có câu trả lời"),
            ("f", "'relevant' phải là một điều kiện (chuỗi), không phải 5"),
        },
    ),
    (
        "relevant inside a repeat group",
        """
        - {id: truoc, type: integer, label: T}
        - id: g
          type: repeat
          label: G
          questions:
            - {id: x, type: integer, label: X, relevant: "y > 0 or truoc > 0"}
            - {id: y, type: integer, label: Y, relevant: "x > 0 and count(g) > 1"}
            - {id: z, type: integer, label: Z, relevant: "sau > 0"}
        - {id: sau, type: integer, label: S, relevant: "x > 0"}
        """,
        {
            (
                "g.x",
                "điều kiện relevant: nhắc tới câu 'y' đứng sau; điều kiện chỉ được dựa vào câu đã trả lời trước đó",
            ),
            ("g.y", "điều kiện relevant: nhắc tới chính nhóm chứa câu này ('g')"),
            (
                "g.z",
                "điều kiện relevant: nhắc tới câu 'sau' đứng sau; điều kiện chỉ được dựa vào câu đã trả lời trước đó",
            ),
            ("sau", "điều kiện relevant: 'x' là câu con trong nhóm lặp 'g'; ở ngoài nhóm chỉ dùng count(g)"),
        },
    ),
    (
        "comparisons that can never be true",
        """
        - {id: xep_loai, type: single_choice, label: X, choices: [Tốt, Khá]}
        - {id: da, type: yes_no, label: D}
        - {id: loai, type: multi_choice, label: L, choices: [A, B]}
        - {id: so, type: integer, label: S}
        - {id: ngay, type: date, label: N}
        - id: t
          type: text
          label: T
          relevant: >-
            xep_loai == 'tott' or da == 'co' or loai == 'a' or 'c' in loai or so > '1'
            or ngay < '19/8' or 'x' in so or count(so) > 1 or xep_loai in ['tot', 'yeu']
        """,
        {
            ("t", "điều kiện relevant: 'tott' không phải giá trị lựa chọn của câu xep_loai — có phải 'tot'?"),
            ("t", "điều kiện relevant: câu có/không da chỉ so sánh == hoặc != với true/false"),
            ("t", "điều kiện relevant: với câu nhiều lựa chọn hãy viết 'giá_trị' in loai"),
            ("t", "điều kiện relevant: 'c' không phải giá trị lựa chọn của câu loai (có: a, b)"),
            ("t", "điều kiện relevant: câu số so phải so sánh với một số, không phải '1'"),
            (
                "t",
                "điều kiện relevant: câu ngày ngay phải so sánh với ngày dạng 'YYYY-MM-DD', không phải '19/8'",
            ),
            ("t", "điều kiện relevant: 'x' in so: câu so không phải câu nhiều lựa chọn"),
            ("t", "điều kiện relevant: count(so) chỉ dùng cho nhóm lặp hoặc câu nhiều lựa chọn"),
            ("t", "điều kiện relevant: 'yeu' không phải giá trị lựa chọn của câu xep_loai (có: tot, kha)"),
        },
    ),
    (
        "repeat groups: no sub-questions, nested, max_count, keys on other types",
        """
        - {id: g1, type: repeat, label: G1}
        - id: g2
          type: repeat
          label: G2
          max_count: 0
          questions:
            - {id: inner, type: repeat, label: I, questions: [{id: x, type: integer, label: X}]}
        - {id: n, type: integer, label: N, max_count: 3, add_prompt: "Thêm?"}
        """,
        {
            ("g1", "nhóm lặp cần danh sách 'questions' có ít nhất một câu con"),
            ("g2", "'max_count' phải là số nguyên từ 1 trở lên, không phải 0"),
            ("g2.inner", "nhóm lặp không được lồng trong nhóm lặp 'g2'"),
            ("n", "'max_count' chỉ dùng cho nhóm lặp (type: repeat), câu này kiểu integer"),
            ("n", "'add_prompt' chỉ dùng cho nhóm lặp (type: repeat), câu này kiểu integer"),
        },
    ),
    (
        "label and required",
        """
        - {id: a, type: integer, label: "  "}
        - {id: b, type: integer, label: B, required: "có"}
        - {id: c, type: integer, label: 5}
        """,
        {
            ("a", "'label' đang để trống"),
            ("b", "'required' phải là true hoặc false, không phải 'có'"),
            ("c", "'label' phải là chuỗi chữ, không phải 5"),
        },
    ),
    (
        "only notes",
        "- {id: a, type: note, label: Chào}",
        {(None, "biểu mẫu không có câu nào để trả lời (chỉ có ghi chú)")},
    ),
]


@pytest.mark.parametrize(("questions", "expected"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_question_errors(tmp_path: Path, questions: str, expected: set[tuple[str | None, str]]) -> None:
    assert error_set(load(tmp_path, with_questions(questions))) == expected


FORM_ERRORS: list[tuple[str, str, set[tuple[str | None, str]]]] = [
    (
        "header",
        """
        id: Báo cáo
        title: ""
        version: 0
        kind: periodc
        descripton: x
        questions: [{id: a, type: integer, label: A}]
        """,
        {
            (
                None,
                "mã biểu mẫu 'Báo cáo' không hợp lệ (chữ thường không dấu, số, nối bằng '-', "
                "ví dụ bao-cao-6-thang; tối đa 40 ký tự)",
            ),
            (None, "khóa lạ 'descripton' — có phải 'description'?"),
            (None, "'title' đang để trống"),
            (None, "'version' phải là số nguyên dương, không phải 0"),
            (None, "'kind' không hợp lệ 'periodc' — có phải 'periodic'? (periodic hoặc incident)"),
        },
    ),
    (
        "missing everything",
        "id: thu",
        {
            (None, "thiếu khóa 'title'"),
            (None, "thiếu khóa 'version' (số nguyên dương, tăng lên mỗi khi sửa biểu mẫu)"),
            (None, "thiếu khóa 'kind' (periodic: báo cáo định kỳ, incident: báo cáo đột xuất)"),
            (None, "thiếu 'sections' (các phần, mỗi phần có title và questions) hoặc 'questions'"),
        },
    ),
    (
        "version as text",
        HEADER.replace("version: 1", 'version: "1"') + "questions: [{id: a, type: integer, label: A}]",
        {(None, "'version' phải là số nguyên dương, không phải '1'")},
    ),
    (
        "sections and questions both",
        HEADER + "questions: [{id: a, type: integer, label: A}]\nsections: []",
        {(None, "dùng 'sections' hoặc 'questions', không dùng cả hai")},
    ),
    (
        "bad sections",
        HEADER
        + """\
sections:
  - title: Một
    questions: [{id: a, type: integer, label: A}]
    ghi_chu: x
  - title: Một
    questions: [{id: b, type: integer, label: B}]
  - questions: []
  - Hai
""",
        {
            (None, "phần 'Một': khóa lạ 'ghi_chu'"),
            (None, "phần 'Một': trùng tiêu đề với phần thứ 1"),
            (None, "phần thứ 3: thiếu khóa 'title'"),
            (None, "phần thứ 3: 'questions' phải là một danh sách không rỗng"),
            (None, "phần thứ 4: phải là một mapping (title, questions), không phải 'Hai'"),
        },
    ),
    (
        "checks",
        with_questions(
            """
            - {id: a, type: integer, label: A}
            - {id: ghi_chu, type: note, label: N}
            - {id: g, type: repeat, label: G, questions: [{id: x, type: integer, label: X}]}
            """,
            """
            checks:
              - {condition: b > a, message: M}
              - {condition: x > 0, message: M}
              - {condition: a >, message: M}
              - {condition: a > 0, message: M, questions: [z]}
              - {condition: a > 0, mesage: M}
              - {condition: ghi_chu > 0, message: M}
              - a > 0
            """,
        ),
        {
            (None, "kiểm tra thứ 1: nhắc tới câu không có 'b'"),
            (None, "kiểm tra thứ 2: 'x' là câu con trong nhóm lặp 'g'; chỉ dùng count(g)"),
            (None, "kiểm tra thứ 3: điều kiện 'a >' lỗi: điều kiện dừng giữa chừng, thiếu giá trị (cột 4)"),
            (None, "kiểm tra thứ 4: 'questions' nhắc tới câu không có 'z'"),
            (None, "kiểm tra thứ 5: khóa lạ 'mesage' — có phải 'message'?"),
            (None, "kiểm tra thứ 5: thiếu khóa 'message'"),
            (None, "kiểm tra thứ 6: 'ghi_chu' là câu ghi chú (note), không có câu trả lời"),
            (None, "kiểm tra thứ 7: phải là một mapping (condition, message, questions)"),
        },
    ),
]


@pytest.mark.parametrize(("text", "expected"), [e[1:] for e in FORM_ERRORS], ids=[e[0] for e in FORM_ERRORS])
def test_form_errors(tmp_path: Path, text: str, expected: set[tuple[str | None, str]]) -> None:
    assert error_set(load(tmp_path, text)) == expected


def test_note_with_required_true_is_fine(tmp_path: Path) -> None:
    form = only_form(
        load(
            tmp_path,
            with_questions(
                """
                - {id: n, type: note, label: Xin chào, required: true}
                - {id: a, type: integer, label: A}
                """
            ),
        )
    )
    assert [q.id for q in form.answerable] == ["a"]


FILE_ERRORS: list[tuple[str, str, set[tuple[str | None, str | None, str]]]] = [
    (
        "YAML syntax error",
        "id: thu\ntitle: Thử\n  version: 1\n",
        {
            (
                None,
                None,
                "lỗi cú pháp YAML ở dòng 3, cột 10: dấu ':' không đúng chỗ (chuỗi có dấu ':' hãy đặt trong ngoặc kép)",
            )
        },
    ),
    (
        "tab",
        "id: thu\n\ttitle: Thử\n",
        {(None, None, "lỗi cú pháp YAML ở dòng 2, cột 1: có ký tự tab; YAML chỉ thụt lề bằng dấu cách")},
    ),
    ("empty file", "# chỉ có ghi chú\n", {(None, None, "tệp trống")}),
    (
        "unquoted question mark in a flow mapping",
        "- {id: a, label: Bao nhiêu?}\n",
        {
            (
                None,
                None,
                "lỗi cú pháp YAML ở dòng 1, cột 27: trong { ... } hoặc [ ... ], chữ có dấu ',', ':', '?' "
                "hãy đặt trong ngoặc kép",
            )
        },
    ),
    (
        "a scalar",
        "xin chào\n",
        {(None, None, "tệp phải chứa một biểu mẫu (mapping) hoặc một danh sách biểu mẫu")},
    ),
    (
        "forms key",
        "forms:\n  - id: thu\n",
        {
            (
                None,
                None,
                "khóa lạ 'forms' — muốn nhiều biểu mẫu trong một tệp, hãy viết danh sách ở cấp ngoài cùng",
            )
        },
    ),
    (
        "list item not a form",
        "- 1\n",
        {(None, None, "mục thứ 1 của danh sách không phải một biểu mẫu (mapping)")},
    ),
    (
        "alias",
        "id: &x thu\ntitle: *x\n",
        {(None, None, "lỗi cú pháp YAML ở dòng 2, cột 8: không dùng alias (*tên) trong tệp biểu mẫu")},
    ),
    (
        "duplicate keys are reported together with the other errors",
        with_questions("- {id: a, type: integer, label: A, label: B}\n- {id: b, type: intger, label: B}"),
        {
            (None, None, "khóa 'label' bị lặp ở dòng 6 (đã có ở dòng 6); YAML sẽ chỉ giữ cái sau"),
            (
                "thu",
                "b",
                "kiểu câu hỏi không hợp lệ 'intger' — có phải 'integer'? (các kiểu: integer, decimal, text, "
                "long_text, yes_no, single_choice, multi_choice, date, photo, location, note, repeat, percent, document)",
            ),
        },
    ),
]


@pytest.mark.parametrize(("text", "expected"), [e[1:] for e in FILE_ERRORS], ids=[e[0] for e in FILE_ERRORS])
def test_file_errors(tmp_path: Path, text: str, expected: set[tuple[str | None, str | None, str]]) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    result = load_form_file(path)
    assert result.forms == ()
    assert {(e.form, e.question, e.reason) for e in result.errors} == expected
    assert all(e.file == str(path) for e in result.errors)


def test_unreadable_files(tmp_path: Path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"title: Th\xfd")
    missing = tmp_path / "missing.yaml"
    result = load_form_files([latin, missing])
    assert not result.ok
    reasons = [(e.file, e.reason) for e in result.errors]
    assert reasons[0] == (
        str(latin),
        "tệp không phải UTF-8 (byte lạ ở vị trí 9); hãy lưu lại với mã hóa UTF-8",
    )
    assert reasons[1][0] == str(missing)
    assert reasons[1][1].startswith("không đọc được tệp: ")


# ---------------------------------------------------------------------------------------------- many mistakes at once

MANY_MISTAKES = """\
id: bao-cao-thu
title: Báo cáo thử
version: 1
kind: periodic
sections:
  - title: Tuyên truyền
    questions:
      - id: so_buoi
        type: intger
        label: Thôn đã tổ chức bao nhiêu buổi?
      - id: so_nguoi
        type: integer
        lable: Bao nhiêu người?
        min: 10
        max: 1
      - id: so_buoi
        type: yes_no
        label: Trùng mã
  - title: Đánh giá
    questions:
      - id: xep_loai
        type: single_choice
        label: Xếp loại?
        choices: [Tốt, Khá, Tốt]
      - id: ghi_chu
        type: text
        label: Ghi chú
        max_length: 0
        relevant: xep_loai == 'tot' and y_kien != ''
      - id: y_kien
        type: long_text
        label: Ý kiến
        choices: [A]
      - id: vu_viec
        type: repeat
        label: Các vụ việc
        max_count: 0
checks:
  - condition: so_nguoi >= so_buoi_x
    message: Số người phải nhiều hơn số buổi.
"""


def test_a_file_with_many_mistakes_reports_them_all(tmp_path: Path) -> None:
    path = tmp_path / "nhieu-loi.yaml"
    path.write_text(MANY_MISTAKES, encoding="utf-8")
    result = load_form_file(path)
    assert result.forms == ()
    assert [str(e) for e in result.errors] == [
        f"{path}: form bao-cao-thu: câu so_buoi: kiểu câu hỏi không hợp lệ 'intger' — có phải 'integer'? "
        "(các kiểu: integer, decimal, text, long_text, yes_no, single_choice, multi_choice, date, photo, "
        "location, note, repeat, percent, document)",
        f"{path}: form bao-cao-thu: câu so_nguoi: khóa lạ 'lable' — có phải 'label'?",
        f"{path}: form bao-cao-thu: câu so_nguoi: thiếu khóa 'label'",
        f"{path}: form bao-cao-thu: câu so_nguoi: min (10) lớn hơn max (1)",
        f"{path}: form bao-cao-thu: câu xep_loai: lựa chọn thứ 3: giá trị 'tot' trùng với lựa chọn thứ 1",
        f"{path}: form bao-cao-thu: câu ghi_chu: 'max_length' phải là số nguyên dương, không phải 0",
        f"{path}: form bao-cao-thu: câu y_kien: 'choices' chỉ dùng cho câu kiểu single_choice hoặc "
        "multi_choice, câu này kiểu long_text",
        f"{path}: form bao-cao-thu: câu vu_viec: 'max_count' phải là số nguyên từ 1 trở lên, không phải 0",
        f"{path}: form bao-cao-thu: câu vu_viec: nhóm lặp cần danh sách 'questions' có ít nhất một câu con",
        f"{path}: form bao-cao-thu: câu so_buoi: mã câu 'so_buoi' bị trùng",
        f"{path}: form bao-cao-thu: câu ghi_chu: điều kiện relevant: nhắc tới câu 'y_kien' đứng sau; "
        "điều kiện chỉ được dựa vào câu đã trả lời trước đó",
        f"{path}: form bao-cao-thu: kiểm tra thứ 1: nhắc tới câu không có 'so_buoi_x' — có phải 'so_buoi'?",
    ]
    assert all(e.file == str(path) and e.form == "bao-cao-thu" for e in result.errors)


# ---------------------------------------------------------------------------------------------- several files


def test_same_id_and_version_twice(tmp_path: Path) -> None:
    one = with_questions("- {id: a, type: integer, label: A}")
    (tmp_path / "a.yaml").write_text(one, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(one, encoding="utf-8")
    (tmp_path / "c.yaml").write_text(one.replace("version: 1", "version: 2"), encoding="utf-8")
    result = load_form_files([tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"])
    assert [(f.id, f.version, f.source) for f in result.forms] == [
        ("thu", 1, str(tmp_path / "a.yaml")),
        ("thu", 2, str(tmp_path / "c.yaml")),
    ]
    assert result.errors == (
        FormError(
            str(tmp_path / "b.yaml"),
            "thu",
            None,
            f"phiên bản 1 của biểu mẫu 'thu' đã có trong {tmp_path / 'a.yaml'}; hãy tăng 'version'",
        ),
    )


def test_same_id_and_version_twice_in_one_file(tmp_path: Path) -> None:
    form = "{id: thu, title: T, version: 1, kind: periodic, questions: [{id: a, type: integer, label: A}]}"
    result = load(tmp_path, f"- {form}\n- {form}\n")
    assert len(result.forms) == 1
    assert [e.reason for e in result.errors] == [
        f"phiên bản 1 của biểu mẫu 'thu' đã có trong {tmp_path / 'thu.yaml'}; hãy tăng 'version'"
    ]


def test_errors_in_one_file_do_not_hide_forms_of_another(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(
        with_questions("- {id: a, type: integer, label: A}"), encoding="utf-8"
    )
    (tmp_path / "bad.yaml").write_text("id: [", encoding="utf-8")
    result = load_form_files([tmp_path / "good.yaml", tmp_path / "bad.yaml"])
    assert [f.id for f in result.forms] == ["thu"]
    assert [e.file for e in result.errors] == [str(tmp_path / "bad.yaml")]
    assert not result.ok


# ---------------------------------------------------------------------------------------------- dicts


def test_form_error_str() -> None:
    assert str(FormError("deploy/forms/x.yaml", "bao-cao-6-thang", "so_vu", "lý do")) == (
        "deploy/forms/x.yaml: form bao-cao-6-thang: câu so_vu: lý do"
    )
    assert str(FormError("x.yaml", None, None, "tệp trống")) == "x.yaml: tệp trống"
    assert str(FormError("x.yaml", "f", None, "r")) == "x.yaml: form f: r"


def test_form_from_dict_validates_the_same_way() -> None:
    result = form_from_dict(
        {"id": "thu", "title": "T", "version": 1, "kind": "periodic", "questions": [{"id": "a"}]}
    )
    assert {str(e) for e in result.errors} == {
        "<dict>: form thu: câu a: thiếu khóa 'type' (các kiểu: integer, decimal, text, long_text, yes_no, "
        "single_choice, multi_choice, date, photo, location, note, repeat, percent, document)",
        "<dict>: form thu: câu a: thiếu khóa 'label'",
    }
    assert form_from_dict([1, 2]).errors[0].reason.startswith("biểu mẫu phải là một mapping")  # type: ignore[arg-type]


def test_round_trip_of_an_in_memory_form() -> None:
    source = {
        "id": "day-du",
        "title": "Đủ kiểu",
        "version": 7,
        "kind": "incident",
        "description": "Mọi kiểu câu.",
        "questions": [
            {"id": "n", "type": "note", "label": "Chào"},
            {"id": "a", "type": "integer", "label": "A", "min": 0, "max": 9, "default": 3, "hint": "H"},
            {"id": "b", "type": "decimal", "label": "B", "min": 0.5, "default": 1.25},
            {"id": "c", "type": "text", "label": "C", "max_length": 20, "required": False, "default": "x"},
            {"id": "d", "type": "long_text", "label": "D"},
            {"id": "e", "type": "yes_no", "label": "E", "default": True},
            {"id": "f", "type": "single_choice", "label": "F", "choices": ["Tốt", "Khá"], "default": "kha"},
            {"id": "g", "type": "multi_choice", "label": "G", "choices": ["X", "Y"], "default": ["y"]},
            {"id": "h", "type": "date", "label": "H", "default": "2026-08-19", "relevant": "e == true"},
            {"id": "i", "type": "photo", "label": "I", "required": False},
            {"id": "j", "type": "location", "label": "J"},
            {
                "id": "k",
                "type": "repeat",
                "label": "K",
                "max_count": 5,
                "add_prompt": "Nữa?",
                "questions": [{"id": "x", "type": "integer", "label": "X"}],
            },
        ],
        "checks": [{"condition": "a <= 9", "message": "M"}],
    }
    form = only_form(form_from_dict(source))
    data = form_to_dict(form)
    assert json.loads(json.dumps(data)) == data  # JSON-safe, as stored in the database
    again = form_from_dict(json.loads(json.dumps(data)))
    assert only_form(again) == form
    assert form_to_dict(again.forms[0]) == data


@pytest.mark.parametrize("path", sorted(FORMS_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_round_trip_of_shipped_forms(path: Path) -> None:
    form = only_form(load_form_file(path))
    data = json.loads(json.dumps(form_to_dict(form), ensure_ascii=False))
    assert only_form(form_from_dict(data, source=form.source)) == form
    assert only_form(form_from_dict(data)).source == "<dict>"


def test_form_to_dict_rejects_mixed_sections() -> None:
    form = Form(
        id="x",
        title="X",
        version=1,
        questions=(
            Question("a", QType.INTEGER, "A", section="S"),
            Question("b", QType.INTEGER, "B"),
        ),
    )
    with pytest.raises(ValueError, match="section"):
        form_to_dict(form)


@pytest.mark.parametrize(
    ("label", "slug"),
    [
        ("Tốt", "tot"),
        ("Trung bình", "trung_binh"),
        ("Đánh nhau, gây rối", "danh_nhau_gay_roi"),
        ("ĐẠT", "dat"),
        ("  Có  ", "co"),
        ("Hòa giải", "hoa_giai"),
        ("Ho\u0300a gia\u0309i", "hoa_giai"),
        ("100%", "100"),
        ("!!!", ""),
        ("Một nhãn rất dài dài dài dài dài dài dài dài dài", "mot_nhan_rat_dai_dai_dai_dai_dai_dai_dai"),
        ("Một nhãn rất dài dài dài dài dài dài dàii dài", "mot_nhan_rat_dai_dai_dai_dai_dai_dai"),
        ("a" * 50, "a" * 40),
    ],
)
def test_choice_value_slug(label: str, slug: str) -> None:
    assert choice_value_slug(label) == slug
    assert len(slug) <= 40


def test_the_example_in_the_docs_is_valid(tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "forms.md").read_text(encoding="utf-8")
    example = docs.split("```yaml\n", 1)[1].split("```", 1)[0]
    form = only_form(load(tmp_path, example))
    assert form.id == "bao-cao-quy"
    assert form.question("xep_loai").choices[2] == Choice("trung_binh", "Trung bình")
    assert form.question("vu_viec.chi_tiet").relevant == "loai == 'khac'"
    assert len(form.checks) == 2


_KEYS = st.sampled_from(
    [
        *("id", "title", "version", "kind", "sections", "questions", "checks", "type", "label", "choices"),
        *("min", "max", "default", "relevant", "max_length", "max_count", "required", "value", "condition"),
        *("message", "x"),
    ]
)
_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=True)
    | st.sampled_from(
        ["a", "b", "integer", "repeat", "single_choice", "note", "periodic", "a > 0", "thu", ""]
    )
    | st.text(max_size=4)
    | st.dates()
)
_DATA = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=6),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _DATA, max_size=8))
def test_form_from_dict_never_raises(data: dict[str, object]) -> None:
    result = form_from_dict(data)
    assert result.ok == (len(result.forms) == 1)
    for form in result.forms:
        assert form_from_dict(form_to_dict(form)).forms == (form,)


def _mutate(data: Any, draw: st.DrawFn) -> Any:
    """Replace one randomly chosen node of `data` by random data."""
    if isinstance(data, dict) and data and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(data)))
        return {**data, key: _mutate(data[key], draw)}
    if isinstance(data, list) and data and draw(st.booleans()):
        i = draw(st.integers(0, len(data) - 1))
        return [*data[:i], _mutate(data[i], draw), *data[i + 1 :]]
    return draw(_DATA)


@st.composite
def _mutated_shipped_form(draw: st.DrawFn) -> Any:
    path = draw(st.sampled_from(sorted(FORMS_DIR.glob("*.yaml"))))
    data = form_to_dict(load_form_file(path).forms[0])
    for _ in range(draw(st.integers(1, 3))):
        data = _mutate(data, draw)
    return data


@settings(max_examples=120, deadline=None)
@given(_mutated_shipped_form())
def test_mutated_forms_never_raise(data: Any) -> None:
    result = form_from_dict(data)
    assert result.ok == (len(result.forms) == 1)
    assert all(isinstance(e.reason, str) and e.reason for e in result.errors)


def test_over_long_titles_and_labels_are_reported_all_at_once() -> None:
    """Titles, labels, hints and choice labels past the limits: one error each, in one go; at the limit: fine."""
    from bot.forms.loader import MAX_CHOICE_LABEL, MAX_LABEL, MAX_TITLE

    def form(title: int, section: int, label: int, hint: int, choice: int) -> dict[str, Any]:
        return {
            "id": "dai",
            "title": "T" * title,
            "version": 1,
            "kind": "periodic",
            "sections": [
                {
                    "title": "P" * section,
                    "questions": [
                        {"id": "a", "type": "text", "label": "L" * label, "hint": "H" * hint},
                        {
                            "id": "b",
                            "type": "single_choice",
                            "label": "Chọn",
                            "choices": ["C" * choice, "Có"],
                        },
                        {
                            "id": "c",
                            "type": "single_choice",
                            "label": "Chọn",
                            "choices": [{"label": "D" * choice}],
                        },
                    ],
                }
            ],
        }

    assert form_from_dict(form(MAX_TITLE, MAX_TITLE, MAX_LABEL, MAX_LABEL, MAX_CHOICE_LABEL)).ok
    result = form_from_dict(form(MAX_TITLE + 1, 10_000, 10_000, MAX_LABEL + 1, MAX_CHOICE_LABEL + 1))
    assert not result.forms
    reasons = [e.reason for e in result.errors]
    assert len(reasons) == 6, reasons
    assert all("dài quá" in r for r in reasons) and all(len(r) < 200 for r in reasons), reasons
    assert f"'title' dài quá: {MAX_TITLE + 1} ký tự (tối đa {MAX_TITLE})" in reasons[0]
    assert sum(f"(tối đa {MAX_CHOICE_LABEL})" in r for r in reasons) == 2
