"""The commune setup file: parsing to plain data, and every mistake reported at once with its place."""

from __future__ import annotations

import textwrap
import unicodedata
from pathlib import Path

import pytest
import yaml

from bot.setup_file import (
    COMMUNE_KEYS,
    CommuneSpec,
    PoliceChatSpec,
    SetupError,
    SetupResult,
    VillageSpec,
    code_slug,
    load_setup,
    loads_setup,
    name_key,
    normalize_name,
    parse_setup,
)
from storage.models import VillageKind

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SHIPPED_FORMS = ("forms/bao-cao-6-thang.yaml", "forms/bao-cao-nam.yaml", "forms/su-co.yaml")
ALL_KINDS = (
    "'thon' (thôn, xóm, bản, ấp…), 'to_dan_pho' (tổ dân phố, khu phố, khối…), 'khu_dan_cu' (khu dân cư), "
    "'co_quan' (cơ quan), 'truong_hoc' (trường học, cơ sở giáo dục), 'doanh_nghiep' (doanh nghiệp), "
    "'phong_ban' (phòng, ban, trung tâm của một cơ quan)"
)


def check(tmp_path: Path, text: str, name: str = "xa.yaml") -> SetupResult:
    """Write `text` (dedented) next to the test's other files and check it."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_setup(path)


def found(result: SetupResult) -> set[tuple[str, str, int | None]]:
    """The errors as (where, reason, line), for comparing with an exact expected set."""
    return {(e.where, e.reason, e.line) for e in result.errors}


def reasons(result: SetupResult) -> set[str]:
    """Just the reasons."""
    return {e.reason for e in result.errors}


def only_commune(result: SetupResult) -> CommuneSpec:
    """The single commune of a valid file."""
    assert result.errors == (), [str(e) for e in result.errors]
    assert result.setup is not None
    (commune,) = result.setup.communes
    return commune


MINIMAL = """\
    version: 1
    communes:
      - code: xa-mau
        name: Xã Mẫu
        villages:
          - Thôn 1
          - Thôn 2
"""


# --- what a valid file gives


def test_minimal_file(tmp_path: Path) -> None:
    result = check(tmp_path, MINIMAL)
    assert result.ok
    assert result.setup is not None
    assert result.setup.version == 1
    assert result.setup.source == tmp_path / "xa.yaml"
    assert only_commune(result) == CommuneSpec(
        code="xa-mau", name="Xã Mẫu", villages=(VillageSpec("Thôn 1"), VillageSpec("Thôn 2"))
    )


def test_every_key(tmp_path: Path) -> None:
    (tmp_path / "forms").mkdir()
    for name in ("bao-cao-nam.yaml", "su-co.yaml"):
        (tmp_path / "forms" / name).write_text("id: x\n", encoding="utf-8")
    result = check(
        tmp_path,
        """\
        version: 1
        communes:
          - code: hiep-luc
            name: Xã Hiệp Lực
            province: Thái Nguyên
            timezone: Asia/Ho_Chi_Minh
            police_chats:
              - chat_id: -1009876543210
                title: Công an xã Hiệp Lực
              - chat_id: 123456789
              - -1005555555555
            villages:
              - Thôn Đại Sơn
              - name: Tổ dân phố Phố Mới
                kind: to_dan_pho
                renamed_from: Tổ dân phố 1
              - name: Thôn Nà Làng
                kind: thon
              - name: Tổ dân phố Chợ
                kind: Tổ dân phố
            forms: [forms/bao-cao-nam.yaml, forms/su-co.yaml]
        """,
    )
    assert only_commune(result) == CommuneSpec(
        code="hiep-luc",
        name="Xã Hiệp Lực",
        province="Thái Nguyên",
        timezone="Asia/Ho_Chi_Minh",
        police_chats=(
            PoliceChatSpec(-1009876543210, "Công an xã Hiệp Lực"),
            PoliceChatSpec(123456789),
            PoliceChatSpec(-1005555555555),
        ),
        villages=(
            VillageSpec("Thôn Đại Sơn"),
            VillageSpec("Tổ dân phố Phố Mới", VillageKind.TO_DAN_PHO, renamed_from="Tổ dân phố 1"),
            VillageSpec("Thôn Nà Làng"),
            VillageSpec("Tổ dân phố Chợ", VillageKind.TO_DAN_PHO),
        ),
        forms=(
            (tmp_path / "forms" / "bao-cao-nam.yaml").resolve(),
            (tmp_path / "forms" / "su-co.yaml").resolve(),
        ),
    )
    assert result.warnings == ()


def test_names_are_normalised_but_keep_their_diacritics(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "Thôn Đại Sơn")
    result = check(
        tmp_path,
        f"""\
        version: 1
        communes:
          - code: a
            name: "  Xã   Hiệp\u00a0Lực "
            province: " Thái  Nguyên"
            villages:
              - "{decomposed}"
              - "  Tổ dân phố\tPhố Mới  "
              - thôn nà làng
        """,
    )
    commune = only_commune(result)
    assert commune.name == "Xã Hiệp Lực"
    assert commune.province == "Thái Nguyên"
    assert [v.name for v in commune.villages] == ["Thôn Đại Sơn", "Tổ dân phố Phố Mới", "thôn nà làng"]
    assert unicodedata.is_normalized("NFC", commune.villages[0].name)


def test_optional_keys_may_be_left_empty(tmp_path: Path) -> None:
    commune = only_commune(
        check(
            tmp_path,
            """\
            version: 1
            communes:
              - code: a
                name: A
                province:
                timezone:
                police_chats:
                forms:
                villages: [Thôn 1]
            """,
        )
    )
    assert (commune.province, commune.timezone, commune.police_chats, commune.forms) == (None, None, (), ())


def test_same_chat_may_serve_two_communes(tmp_path: Path) -> None:
    # A district group may receive the alerts of several communes.
    result = check(
        tmp_path,
        """\
        version: 1
        communes:
          - {code: a, name: A, villages: [T], police_chats: [{chat_id: -100777}]}
          - {code: b, name: B, villages: [T], police_chats: [{chat_id: -100777}]}
        """,
    )
    assert result.ok


def test_parse_setup_takes_loaded_data(tmp_path: Path) -> None:
    data = {"version": 1, "communes": [{"code": "a", "name": "A", "villages": ["T1", {"name": "T2"}]}]}
    result = parse_setup(data, tmp_path / "x.yaml")
    assert only_commune(result).villages == (VillageSpec("T1"), VillageSpec("T2"))


# --- mistakes


def test_ten_mistakes_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "forms").mkdir()
    (tmp_path / "forms" / "a.yaml").write_text("id: a\n", encoding="utf-8")
    result = check(
        tmp_path,
        """\
        version: 1
        ghi_chu: x
        communes:
          - code: Hiệp Lực
            name: Xã Hiệp Lực
            timezone: Asia/Hanoi
            police_chats:
              - chat_id: "-1001111111111"
                title: Công an xã
              - chat_id: -1002222222222
              - chat_id: -1002222222222
            vilages: []
            villages:
              - Thôn Đại Sơn
              - Thôn Nà Làng
              - ""
              - Thôn  Đại sơn
              - name: Tổ dân phố Phố Mới
                kind: pho
                renamed_from: Thôn Nà Làng
              - name: Thôn Pác Cáp
                note: cũ
            forms: [forms/a.yaml, forms/khong-co.yaml]
          - code: hiep-luc
            name: Xã Hiệp Lực 2
            villages: [Thôn Một]
          - code: hiep-luc
            villages: [Thôn Hai]
        """,
    )
    c0 = "communes[0] (Hiệp Lực)"
    missing_form = (tmp_path / "forms" / "khong-co.yaml").resolve()
    assert result.setup is None
    assert found(result) == {
        ("ghi_chu", "khóa lạ 'ghi_chu' — ở đây chỉ dùng: version, communes", 2),
        (
            f"{c0} › code",
            "mã xã 'Hiệp Lực' không hợp lệ: chỉ dùng chữ thường không dấu, chữ số và dấu gạch nối — ví dụ 'hiep-luc'",
            4,
        ),
        (f"{c0} › timezone", "múi giờ lạ 'Asia/Hanoi' — có phải 'Asia/Ho_Chi_Minh'?", 6),
        (
            f"{c0} › police_chats[0] › chat_id",
            "chat_id phải là số nguyên — bỏ dấu ngoặc kép quanh -1001111111111",
            8,
        ),
        (f"{c0} › police_chats[2] › chat_id", "chat_id -1002222222222 trùng với police_chats[1]", 11),
        (f"{c0} › vilages", "khóa lạ 'vilages' — có phải 'villages'? ('villages' đã có ở dòng 13)", 12),
        (f"{c0} › villages[2]", "tên thôn không được để trống", 16),
        (f"{c0} › villages[3]", "tên thôn trùng với villages[0] 'Thôn Đại Sơn'", 17),
        (
            f"{c0} › villages[4] › kind",
            "loại lạ 'pho' — có phải 'to_dan_pho'?",
            19,
        ),
        (
            f"{c0} › villages[4] › renamed_from",
            "renamed_from 'Thôn Nà Làng' là tên của villages[1] 'Thôn Nà Làng' vẫn còn trong tệp — "
            "thôn đổi tên thì bỏ tên cũ khỏi danh sách",
            20,
        ),
        (f"{c0} › villages[5] › note", "khóa lạ 'note' — ở đây chỉ dùng: name, kind, renamed_from", 22),
        (f"{c0} › forms[1]", f"không thấy tệp biểu mẫu 'forms/khong-co.yaml' (tìm ở {missing_form})", 23),
        ("communes[2] (hiep-luc)", "thiếu khóa 'name' (ví dụ 'Xã Hiệp Lực')", 27),
        ("communes[2] (hiep-luc) › code", "mã xã 'hiep-luc' trùng với communes[1]", 27),
    }
    lines = [e.line for e in result.errors]
    assert lines == sorted(lines), "errors come in the order of the file"


def test_error_text_names_file_place_and_reason() -> None:
    error = SetupError(
        "deploy/x.yaml",
        "communes[0] (hiep-luc) › villages[3]",
        "tên thôn trùng với villages[1] 'Thôn Đại Sơn'",
    )
    assert (
        str(error)
        == "deploy/x.yaml: communes[0] (hiep-luc) › villages[3]: tên thôn trùng với villages[1] 'Thôn Đại Sơn'"
    )
    assert str(SetupError("x.yaml", "version", "sai", line=1)) == "x.yaml: version: sai (dòng 1)"
    assert str(SetupError("x.yaml", "", "lỗi", line=3, column=7)) == "x.yaml: lỗi (dòng 3, cột 7)"


def test_text_is_checked_under_the_name_given(tmp_path: Path) -> None:
    result = loads_setup("version: 1\ncommunes:\n  - {code: a, name: A, villages: [T, T]}\n", "deploy/x.yaml")
    assert [str(e) for e in result.errors] == [
        "deploy/x.yaml: communes[0] (a) › villages[1]: tên thôn trùng với villages[0] 'T' (dòng 3)"
    ]


def test_loaded_data_errors_have_no_lines(tmp_path: Path) -> None:
    data = {"version": 1, "communes": [{"code": "hiep-luc", "name": "X", "villages": ["A", "B", "C", "a"]}]}
    result = parse_setup(data, "deploy/x.yaml")
    assert [str(e) for e in result.errors] == [
        "deploy/x.yaml: communes[0] (hiep-luc) › villages[3]: tên thôn trùng với villages[0] 'A'"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "version: 1\ncommunes:\n  - code: a\n    name: b: c\n",
            (
                "",
                "lỗi cú pháp YAML: dấu ':' không đúng chỗ — thiếu dấu cách sau ':', hoặc giá trị có ':' mà chưa đặt trong ngoặc kép",
                4,
                12,
            ),
            id="colon",
        ),
        pytest.param(
            "version: 1\ncommunes:\n\t- code: a\n",
            ("", "lỗi cú pháp YAML: có ký tự Tab — chỉ thụt lề bằng dấu cách", 3, 1),
            id="tab",
        ),
        pytest.param(
            'version: 1\ncommunes:\n  - code: a\n    name: "Xã A\n',
            ("", "lỗi cú pháp YAML: tệp kết thúc giữa chừng — có dấu ngoặc kép chưa đóng?", 5, 1),
            id="unclosed-quote",
        ),
        pytest.param(
            "version: 1\ncommunes: [a\n",
            (
                "",
                "lỗi cú pháp YAML: danh sách trong '[...]' thiếu dấu ']' đóng hoặc thiếu dấu ',' giữa các mục",
                3,
                1,
            ),
            id="unclosed-bracket",
        ),
        pytest.param(
            "version: 1\n---\nversion: 1\n",
            ("", "lỗi cú pháp YAML: tệp chỉ được chứa một tài liệu YAML — bỏ dòng '---' thừa", 2, 1),
            id="two-documents",
        ),
    ],
)
def test_yaml_syntax_error_has_line_and_column(tmp_path: Path, text: str, expected: tuple) -> None:
    result = check(tmp_path, text)
    assert result.setup is None
    assert [(e.where, e.reason, e.line, e.column) for e in result.errors] == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", {("", "tệp trống — cần có 'version: 1' và danh sách 'communes'", None)}, id="empty"),
        pytest.param(
            "- a\n- b\n",
            {("", "đầu tệp phải là các khóa 'version' và 'communes', đang là một danh sách", 1)},
            id="top-list",
        ),
        pytest.param(
            "communes:\n  - {code: a, name: A, villages: [T]}\n",
            {("", "thiếu khóa 'version' (ghi 'version: 1' ở đầu tệp)", 1)},
            id="no-version",
        ),
        pytest.param(
            "version: 2\ncommunes:\n  - {code: a, name: A, villages: [T]}\n",
            {("version", "phiên bản 2 chưa được hỗ trợ — hãy ghi 'version: 1'", 1)},
            id="version-2",
        ),
        pytest.param(
            "version: '1'\ncommunes:\n  - {code: a, name: A, villages: [T]}\n",
            {("version", "version phải là số 1, đang là chữ '1'", 1)},
            id="version-text",
        ),
        pytest.param(
            "version: 1\n",
            {("", "thiếu khóa 'communes' (danh sách các xã)", 1)},
            id="no-communes",
        ),
        pytest.param("version: 1\ncommunes: []\n", {("communes", "cần ít nhất một xã", 2)}, id="no-commune"),
        pytest.param(
            "version: 1\ncomunes:\n  - {code: a, name: A, villages: [T]}\n",
            {
                ("comunes", "khóa lạ 'comunes' — có phải 'communes'?", 2),
                ("", "thiếu khóa 'communes' (danh sách các xã)", 1),
            },
            id="typo-top",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - {code: a, name: A, villages: [T], provice: X}\n",
            {("communes[0] (a) › provice", "khóa lạ 'provice' — có phải 'province'?", 3)},
            id="typo-commune",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - {code: a, name: A, villages: [{name: T, knd: thon}]}\n",
            {("communes[0] (a) › villages[0] › knd", "khóa lạ 'knd' — có phải 'kind'?", 3)},
            id="typo-village",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - {code: a, name: A, villages: [T], police_chats: [{chatid: -100}]}\n",
            {
                ("communes[0] (a) › police_chats[0] › chatid", "khóa lạ 'chatid' — có phải 'chat_id'?", 3),
                (
                    "communes[0] (a) › police_chats[0]",
                    "thiếu khóa 'chat_id' (gửi /start trong nhóm để bot cho biết mã)",
                    3,
                ),
            },
            id="typo-chat",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - name: A\n",
            {
                ("communes[0] (A)", "thiếu khóa 'code' (mã không dấu, ví dụ 'hiep-luc')", 3),
                ("communes[0] (A)", "thiếu khóa 'villages' (danh sách thôn, tổ dân phố)", 3),
            },
            id="missing-required",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - code: a\n    name: A\n    villages:\n",
            {("communes[0] (a) › villages", "đang để trống — cần ít nhất một thôn", 5)},
            id="villages-empty",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - code: a\n    name: A\n    villages: Thôn 1\n",
            {
                (
                    "communes[0] (a) › villages",
                    "villages phải là một danh sách (mỗi mục một dòng bắt đầu bằng '- '), đang là chữ 'Thôn 1'",
                    5,
                )
            },
            id="villages-not-list",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - {code: a, name: 12, villages: [T]}\n",
            {("communes[0] (a) › name", "tên xã phải là chữ, đang là số 12", 3)},
            id="name-number",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - {code: a, name: A, villages: [T, 7, [x]]}\n",
            {
                (
                    "communes[0] (a) › villages[1]",
                    "mỗi thôn là một tên, hoặc các khóa name/kind/renamed_from — đang là số 7",
                    3,
                ),
                (
                    "communes[0] (a) › villages[2]",
                    "mỗi thôn là một tên, hoặc các khóa name/kind/renamed_from — đang là một danh sách",
                    3,
                ),
            },
            id="village-wrong-type",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - {code: a, name: A, villages: [T, '" + "x" * 201 + "']}\n",
            {("communes[0] (a) › villages[1]", "tên thôn dài 201 ký tự, tối đa 200", 3)},
            id="name-too-long",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - {code: 'Xã A', name: A, villages: [T]}\n",
            {
                (
                    "communes[0] (Xã A) › code",
                    "mã xã 'Xã A' không hợp lệ: chỉ dùng chữ thường không dấu, chữ số và dấu gạch nối — ví dụ 'xa-a'",
                    3,
                )
            },
            id="code-not-slug",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - {code: a--b, name: A, villages: [T]}\n",
            {
                (
                    "communes[0] (a--b) › code",
                    "mã xã 'a--b' không hợp lệ: chỉ dùng chữ thường không dấu, chữ số và dấu gạch nối — ví dụ 'a-b'",
                    3,
                )
            },
            id="code-double-hyphen",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - {code: a, name: A, villages: [T]}\n  - {code: a, name: B, villages: [T]}\n",
            {("communes[1] (a) › code", "mã xã 'a' trùng với communes[0]", 4)},
            id="duplicate-code",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - {code: a, name: A, villages: [T], timezone: Mars/Base}\n",
            {
                (
                    "communes[0] (a) › timezone",
                    "múi giờ lạ 'Mars/Base' — ở Việt Nam dùng 'Asia/Ho_Chi_Minh'",
                    3,
                )
            },
            id="timezone",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - {code: a, name: A, villages: [T], timezone: Asia/Ho_Chi_Min}\n",
            {("communes[0] (a) › timezone", "múi giờ lạ 'Asia/Ho_Chi_Min' — có phải 'Asia/Ho_Chi_Minh'?", 3)},
            id="timezone-typo",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - {code: a, name: A, villages: [{name: T, kind: xom}]}\n",
            {
                (
                    "communes[0] (a) › villages[0] › kind",
                    f"loại lạ 'xom' — chỉ nhận một trong: {ALL_KINDS}",
                    3,
                )
            },
            id="kind",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - {code: a, name: A, villages: [{name: T, kind: to_dan_ph}]}\n",
            {("communes[0] (a) › villages[0] › kind", "loại lạ 'to_dan_ph' — có phải 'to_dan_pho'?", 3)},
            id="kind-typo",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - {code: a, name: A, villages: [T], police_chats: [{chat_id: 1.5}, {chat_id: 0}, {chat_id: true}]}\n",
            {
                (
                    "communes[0] (a) › police_chats[0] › chat_id",
                    "chat_id phải là số nguyên như -1001234567890, đang là số 1.5",
                    3,
                ),
                (
                    "communes[0] (a) › police_chats[1] › chat_id",
                    "chat_id 0 không phải mã cuộc trò chuyện Telegram",
                    3,
                ),
                (
                    "communes[0] (a) › police_chats[2] › chat_id",
                    "chat_id phải là số nguyên như -1001234567890, đang là đúng/sai (true/false)",
                    3,
                ),
            },
            id="chat-id-type",
        ),
        pytest.param(
            "version: 1\ncommunes:\n  - code: a\n    name: A\n    name: B\n    villages: [T]\n",
            {("communes[0] (a) › name", "khóa 'name' được ghi hai lần (lần đầu ở dòng 4) — chỉ giữ một", 5)},
            id="repeated-key",
        ),
    ],
)
def test_single_mistakes(tmp_path: Path, text: str, expected: set) -> None:
    result = check(tmp_path, text)
    assert result.setup is None
    assert found(result) == expected


@pytest.mark.parametrize(
    "spelling",
    ["Thôn  Đại sơn", "THÔN ĐẠI SƠN", " thôn đại  sơn ", unicodedata.normalize("NFD", "Thôn Đại Sơn")],
)
def test_duplicate_village_names_ignore_case_spaces_and_unicode_form(tmp_path: Path, spelling: str) -> None:
    result = check(
        tmp_path,
        f'version: 1\ncommunes:\n  - code: a\n    name: A\n    villages: [Thôn Đại Sơn, "{spelling}"]\n',
    )
    assert found(result) == {
        ("communes[0] (a) › villages[1]", "tên thôn trùng với villages[0] 'Thôn Đại Sơn'", 5)
    }


def test_old_and_new_tone_placement_are_the_same_name(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        "version: 1\ncommunes:\n  - code: a\n    name: A\n    villages: [Thôn Hoà Bình, Thôn Hòa Bình, Thôn Thuý Lĩnh, Thôn Thúy Lĩnh, Thôn Hoàn Sơn]\n",
    )
    assert reasons(result) == {
        "tên thôn trùng với villages[0] 'Thôn Hoà Bình'",
        "tên thôn trùng với villages[2] 'Thôn Thuý Lĩnh'",
    }


def test_village_names_in_different_communes_may_repeat(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        "version: 1\ncommunes:\n  - {code: a, name: A, villages: [Thôn 1]}\n  - {code: b, name: B, villages: [Thôn 1]}\n",
    )
    assert result.ok


def test_renamed_from_mistakes(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        """\
        version: 1
        communes:
          - code: a
            name: A
            villages:
              - Thôn 1
              - name: Thôn 2
                renamed_from: thôn 2
              - name: Thôn 3
                renamed_from: Thôn  1
              - name: Thôn 4
                renamed_from: Thôn cũ
              - name: Thôn 5
                renamed_from: THÔN CŨ
              - name: Thôn 6
                renamed_from: ""
        """,
    )
    assert found(result) == {
        (
            "communes[0] (a) › villages[1] › renamed_from",
            "renamed_from giống tên hiện tại — bỏ khóa này đi",
            8,
        ),
        (
            "communes[0] (a) › villages[2] › renamed_from",
            "renamed_from 'Thôn 1' là tên của villages[0] 'Thôn 1' vẫn còn trong tệp — thôn đổi tên thì bỏ tên cũ khỏi danh sách",
            10,
        ),
        (
            "communes[0] (a) › villages[4] › renamed_from",
            "renamed_from 'THÔN CŨ' đã dùng ở villages[3] — hai thôn không thể cùng đổi từ một tên",
            14,
        ),
        ("communes[0] (a) › villages[5] › renamed_from", "tên cũ (renamed_from) không được để trống", 16),
    }


def test_form_paths(tmp_path: Path) -> None:
    (tmp_path / "forms").mkdir()
    (tmp_path / "forms" / "a.yaml").write_text("id: a\n", encoding="utf-8")
    (tmp_path / "forms" / "dir.yaml").mkdir()
    absolute = str((tmp_path / "forms" / "a.yaml").resolve())
    result = check(
        tmp_path,
        f"""\
        version: 1
        communes:
          - code: a
            name: A
            villages: [T]
            forms:
              - forms/a.yaml
              - ./forms/a.yaml
              - forms/b.yaml
              - forms/dir.yaml
              - {absolute}
              - 5
        """,
    )
    where = "communes[0] (a) › forms"
    assert found(result) == {
        (f"{where}[1]", "biểu mẫu './forms/a.yaml' trùng với forms[0]", 8),
        (
            f"{where}[2]",
            f"không thấy tệp biểu mẫu 'forms/b.yaml' (tìm ở {(tmp_path / 'forms' / 'b.yaml').resolve()})",
            9,
        ),
        (
            f"{where}[3]",
            f"không thấy tệp biểu mẫu 'forms/dir.yaml' (tìm ở {(tmp_path / 'forms' / 'dir.yaml').resolve()})",
            10,
        ),
        (
            f"{where}[4]",
            f"đường dẫn '{absolute}' phải tính từ thư mục chứa tệp này, ví dụ 'forms/su-co.yaml'",
            11,
        ),
        (f"{where}[5]", "mỗi biểu mẫu là đường dẫn tới một tệp, đang là số 5", 12),
    }


def test_forms_are_relative_to_the_setup_file_not_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "deploy" / "forms").mkdir(parents=True)
    (tmp_path / "deploy" / "forms" / "su-co.yaml").write_text("id: su-co\n", encoding="utf-8")
    (tmp_path / "deploy" / "xa.yaml").write_text(
        "version: 1\ncommunes:\n  - {code: a, name: A, villages: [T], forms: [forms/su-co.yaml]}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    result = load_setup("deploy/xa.yaml")
    assert only_commune(result).forms == ((tmp_path / "deploy" / "forms" / "su-co.yaml").resolve(),)
    assert all(p.is_absolute() for p in only_commune(result).forms)


def test_warnings_do_not_stop_the_file(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        "version: 1\ncommunes:\n  - {code: a, name: A, villages: [T], police_chats: [-1001234567890]}\n"
        "  - {code: b, name: B, villages: [T]}\n",
    )
    assert result.ok
    assert {(w.where, w.reason) for w in result.warnings} == {
        (
            "communes[0] (a) › police_chats[0]",
            "chat_id -1001234567890 là số mẫu — thêm bot vào nhóm, gửi /start trong nhóm và chép mã nhóm bot trả lời vào đây",
        ),
        (
            "communes[1] (b)",
            "chưa có nơi nhận cảnh báo (police_chats) — báo cáo đột xuất sẽ không báo cho ai",
        ),
    }


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    missing = load_setup(tmp_path / "khong-co.yaml")
    assert [e.reason for e in missing.errors] == ["không thấy tệp"]
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"version: 1\ncommunes:\n  - {code: a, name: Th\xf4n}\n")
    (error,) = load_setup(latin1).errors
    assert (error.reason, error.line) == ("tệp không lưu bằng mã UTF-8 — hãy lưu lại với mã hóa UTF-8", 3)
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + textwrap.dedent(MINIMAL).encode())
    assert load_setup(bom).ok


def test_unknown_keys_are_checked_against_the_table() -> None:
    # The table is the single list of what a commune may hold; later issues add their keys there.
    assert list(COMMUNE_KEYS) == [
        "code", "name", "province", "timezone", "police_chats", "villages", "forms", "schedules",
        "quiet_hours", "report",
    ]  # fmt: skip


def test_schedule_errors_are_located_in_the_commune() -> None:
    result = loads_setup(
        textwrap.dedent(
            """\
            version: 1
            communes:
              - code: a
                name: Xã A
                villages: [Thôn 1]
                schedules:
                  - form: f
                    periods:
                      - {id: "{nam}-6T", label: "6 tháng", opens: "31/04", due_before: "20/05"}
            """
        ),
        "mem.yaml",
    )
    (error,) = result.errors
    assert error.where == "communes[0] (a) › schedules[0].periods[0]" and "'opens'" in error.reason
    assert [k for k, spec in COMMUNE_KEYS.items() if spec.required] == ["code", "name", "villages"]


# --- names


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Thôn Đại Sơn", "thôn  đại sơn", True),
        ("Thôn Đại Sơn", unicodedata.normalize("NFD", "THÔN ĐẠI SƠN"), True),
        ("Xóm Hoà", "Xóm Hòa", True),
        ("Thôn Quý", "Thôn Qúy", True),
        ("Thôn Đồng", "Thôn Đông", False),
        ("Thôn Hoàn", "Thôn Hòan", False),
        ("Thôn 1", "Thôn 11", False),
    ],
)
def test_name_key(a: str, b: str, same: bool) -> None:
    assert (name_key(a) == name_key(b)) is same
    assert name_key(name_key(a)) == name_key(a)


def test_normalize_and_code_slug() -> None:
    assert normalize_name("\u00a0Tổ  dân phố\n1 ") == "Tổ dân phố 1"
    assert code_slug("Xã Hiệp Lực") == "xa-hiep-luc"
    assert code_slug("Phường Đồng Quang") == "phuong-dong-quang"


# --- the shipped examples


def _form_errors(result: SetupResult) -> list[SetupError]:
    return [e for e in result.errors if "› forms[" in e.where]


def test_minimal_example_is_valid() -> None:
    result = load_setup(DEPLOY / "example-minimal.yaml")
    commune = only_commune(result)
    assert len(commune.villages) == 3 and commune.forms == ()


def test_hiep_luc_example_is_valid_apart_from_form_files() -> None:
    result = load_setup(DEPLOY / "hiep-luc.yaml")
    assert [e for e in result.errors if e not in _form_errors(result)] == []
    raw = yaml.safe_load((DEPLOY / "hiep-luc.yaml").read_text(encoding="utf-8"))
    (commune,) = raw["communes"]
    assert commune["forms"] == list(SHIPPED_FORMS)
    commune.pop("forms")
    parsed = only_commune(parse_setup(raw, DEPLOY / "hiep-luc.yaml"))
    assert (parsed.code, parsed.name, parsed.province) == ("hiep-luc", "Xã Hiệp Lực", "Thái Nguyên")
    assert len(parsed.villages) >= 12
    assert len(parsed.police_chats) == 1


def test_hiep_luc_example_forms_exist() -> None:
    # The form files are written in another change; until all three have landed this test is skipped,
    # after that the example must validate completely.
    missing = [p for p in SHIPPED_FORMS if not (DEPLOY / p).exists()]
    if missing:
        pytest.skip(f"form files not landed yet: {', '.join(missing)}")
    result = load_setup(DEPLOY / "hiep-luc.yaml")
    assert result.errors == ()
    assert only_commune(result).forms == tuple((DEPLOY / p).resolve() for p in SHIPPED_FORMS)


def test_documented_example_is_valid_apart_from_form_files(tmp_path: Path) -> None:
    doc = (DEPLOY.parent / "docs" / "setup-file.md").read_text(encoding="utf-8")
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "forms").mkdir()
    for form in SHIPPED_FORMS:
        (tmp_path / form).write_text("id: x\n", encoding="utf-8")
    commune = only_commune(check(tmp_path, example))
    assert commune.police_chats[1] == PoliceChatSpec(123456789)
    assert commune.villages[-1] == VillageSpec("Tổ dân phố Phố Mới", VillageKind.TO_DAN_PHO, "Tổ dân phố 1")


# --- quiet hours (no reminders at night)


def test_quiet_hours_default_to_the_night(tmp_path: Path) -> None:
    from bot.calendar.reminder_rules import DEFAULT_QUIET

    assert only_commune(check(tmp_path, MINIMAL)).quiet_hours == DEFAULT_QUIET


@pytest.mark.parametrize(
    ("written", "start", "end"),
    [
        ('"21:00-06:30"', (21, 0), (6, 30)),
        ('"22h-5h30"', (22, 0), (5, 30)),
        ('"12:00 - 13:30"', (12, 0), (13, 30)),
        ("false", (0, 0), (0, 0)),  # none at all
        ("không", (0, 0), (0, 0)),
    ],
)
def test_quiet_hours_are_read(
    tmp_path: Path, written: str, start: tuple[int, int], end: tuple[int, int]
) -> None:
    from datetime import time

    commune = only_commune(check(tmp_path, MINIMAL + f"        quiet_hours: {written}\n"))
    assert (commune.quiet_hours.start, commune.quiet_hours.end) == (time(*start), time(*end))


def test_quiet_hours_errors_are_listed_with_the_others(tmp_path: Path) -> None:
    text = MINIMAL.replace("code: xa-mau", "code: Xã Mẫu") + '        quiet_hours: "06:30-21:00"\n'
    result = check(tmp_path, text)
    assert found(result) == {
        (
            "communes[0] (Xã Mẫu) › code",
            "mã xã 'Xã Mẫu' không hợp lệ: chỉ dùng chữ thường không dấu, chữ số và dấu gạch nối — ví dụ 'xa-mau'",
            3,
        ),
        (
            "communes[0] (Xã Mẫu) › quiet_hours",
            "giờ yên lặng '06:30-21:00' dài 14 giờ 30 phút — tối đa 12 giờ; có phải '21:00-06:30'?",
            8,
        ),
    }


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ('"21:00"', "không hiểu giờ yên lặng '21:00'"),
        ("21", "giờ yên lặng phải có dạng 'HH:MM-HH:MM', đang là số 21"),
        ('"7:00-7:00"', "bắt đầu và kết thúc cùng lúc — muốn tắt thì ghi quiet_hours: false"),
        ("[21, 6]", "giờ yên lặng phải có dạng 'HH:MM-HH:MM', đang là một danh sách"),
    ],
)
def test_bad_quiet_hours(tmp_path: Path, written: str, reason: str) -> None:
    result = check(tmp_path, MINIMAL + f"        quiet_hours: {written}\n")
    (error,) = result.errors
    assert error.where == "communes[0] (xa-mau) › quiet_hours" and reason in error.reason and error.line == 8


def test_quiet_hours_misspelt_key_gets_a_suggestion(tmp_path: Path) -> None:
    result = check(tmp_path, MINIMAL + '        quiet_hour: "21:00-06:30"\n')
    assert reasons(result) == {"khóa lạ 'quiet_hour' — có phải 'quiet_hours'?"}
