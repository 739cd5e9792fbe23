"""The floor of an export: the same rows × columns as `baocao export` of a 3,000-village commune, written by
the fastest writer of the format and nothing else (no database, no bot code), as a whole command.

Excel: xlsxwriter in constant-memory mode (the villages sheet: 30 columns — numbers, a date and a time,
short and long texts — a details sheet of 2,523 items × 6 and a small information sheet, a bold header
row, as `bot/exports/excel.py` writes); --writer openpyxl for openpyxl's write-only mode. CSV: the csv
module, UTF-8 with a BOM. The values are made up here with the shapes of bench/summary.py's generator
(same counts of each kind of cell, texts of the same lengths), so the file is about the size of ours.

    .venv/bin/python bench/export_floor.py --format xlsx -o /tmp/floor.xlsx
    .venv/bin/python bench/export_floor.py --format csv --with-bot-imports

`--dump-cells OURS CELLS` (a preparation step, not timed) reads the export `baocao export` wrote (.xlsx or
.csv) and pickles its sheets' cells to CELLS; `--cells CELLS` then makes the floor write exactly those
rows × columns (every sheet, the same values and types) instead of made-up ones. Loading the pickle is the
floor's only extra work (~2 % of it); the made-up rows above write fewer columns than ours (31 against 43).

    .venv/bin/python bench/export_floor.py --dump-cells /tmp/ours.xlsx /tmp/cells-xlsx.pickle
    .venv/bin/python bench/export_floor.py --format xlsx --cells /tmp/cells-xlsx.pickle -o /tmp/floor.xlsx

`--with-bot-imports` first imports what `baocao export` imports before it reads the database, so that
floor is the writer's plus the command line's start-up, and the ratio to it is the export's own work.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
from datetime import datetime, timedelta

WORDS = ["đường", "xa", "thiếu", "kinh phí", "người", "camera", "đèn", "tổ tự quản", "họp", "dân"]
INTS = 17  # question columns holding whole numbers (of 24 questions in the shipped semiannual form)
SHORT_TEXTS = 4  # yes/no and choice answers written as text ("Có", "Khá")
LONG_TEXTS = 3  # free-text answers (proposals, difficulties)


def rows(villages: int, seed: int = 1) -> list[list[object]]:
    """The villages sheet's rows: STT, village, state, sent at, on time, version, then the answers."""
    rng = random.Random(seed)
    start = datetime(2026, 5, 1)
    out = []
    for n in range(1, villages + 1):
        row: list[object] = [
            n,
            f"Thôn {n:04d} xã 1",
            "Đã nộp",
            start + timedelta(hours=n % 400),
            "Đúng hạn",
            1,
        ]
        row += [rng.randint(0, 500) for _ in range(INTS)]
        row += [start - timedelta(days=n % 90)]
        row += [rng.choice(("Có", "Không", "Khá", "Tốt")) for _ in range(SHORT_TEXTS)]
        row += [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 48))) for _ in range(LONG_TEXTS)]
        out.append(row)
    return out


def items(count: int, seed: int = 2) -> list[list[object]]:
    """The details sheet: village, item number, kind, date, a number, a text."""
    rng = random.Random(seed)
    return [
        [f"Thôn {n % 3000:04d} xã 1", 1 + n % 3, "Trộm cắp", datetime(2026, 3, 1), rng.randint(0, 9), "mô tả"]
        for n in range(count)
    ]


def write_xlsx_xlsxwriter(data: list[list[object]], details: list[list[object]]) -> bytes:
    """xlsxwriter, constant memory, typed writes (the fastest way it writes)."""
    import xlsxwriter

    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(buffer, {"constant_memory": True, "strings_to_formulas": False})
    bold, when = wb.add_format({"bold": True}), wb.add_format({"num_format": "dd/mm/yyyy hh:mm"})
    for name, table in (("Các thôn", data), ("Chi tiết", details)):
        ws = wb.add_worksheet(name)
        ws.set_column(0, len(table[0]) - 1, 14)
        ws.freeze_panes(1, 2)
        for c in range(len(table[0])):
            ws.write_string(0, c, f"Cột {c}", bold)
        for r, row in enumerate(table, start=1):
            for c, v in enumerate(row):
                if isinstance(v, str):
                    ws.write_string(r, c, v)
                elif isinstance(v, datetime):
                    ws.write_datetime(r, c, v, when)
                else:
                    ws.write_number(r, c, v)
    info = wb.add_worksheet("Thông tin")
    for r in range(13):
        info.write_string(r, 0, f"Mục {r}", bold)
        info.write_string(r, 1, "giá trị")
    wb.close()
    return buffer.getvalue()


def write_sheets_xlsxwriter(sheets: list[tuple[str, list[list[object]]]]) -> bytes:
    """xlsxwriter, constant memory, typed writes of given sheets (the first row of each in bold)."""
    import xlsxwriter

    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(buffer, {"constant_memory": True, "strings_to_formulas": False})
    bold, when = wb.add_format({"bold": True}), wb.add_format({"num_format": "dd/mm/yyyy hh:mm"})
    for name, table in sheets:
        ws = wb.add_worksheet(name)
        ws.set_column(0, max(len(row) for row in table) - 1, 14)
        ws.freeze_panes(1, 2)
        for r, row in enumerate(table):
            for c, v in enumerate(row):
                if v is None:
                    continue
                if isinstance(v, str):
                    ws.write_string(r, c, v, bold if r == 0 else None)
                elif isinstance(v, datetime):
                    ws.write_datetime(r, c, v, when)
                else:
                    ws.write_number(r, c, v)
    wb.close()
    return buffer.getvalue()


def dump_cells(ours: str, target: str) -> int:
    """Read an export (.xlsx with openpyxl, .csv with the csv module) and pickle its sheets' cells."""
    import pickle

    sheets: list[tuple[str, list[list[object]]]] = []
    if ours.endswith(".csv"):
        import csv

        with open(ours, encoding="utf-8-sig", newline="") as fh:
            sheets.append(("csv", [list(row) for row in csv.reader(fh)]))
    else:
        from openpyxl import load_workbook

        wb = load_workbook(ours, read_only=True)
        for ws in wb.worksheets:
            sheets.append((ws.title, [list(row) for row in ws.iter_rows(values_only=True)]))
    with open(target, "wb") as fh:
        pickle.dump(sheets, fh, protocol=pickle.HIGHEST_PROTOCOL)
    cells = sum(v is not None for _, table in sheets for row in table for v in row)
    print(f"{target}: {len(sheets)} sheets, {cells} cells", file=sys.stderr)
    return 0


def write_xlsx_openpyxl(data: list[list[object]], details: list[list[object]]) -> bytes:
    """openpyxl's write-only workbook, plain values (its fastest way)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for name, table in (("Các thôn", data), ("Chi tiết", details)):
        ws = wb.create_sheet(name)
        ws.append([f"Cột {c}" for c in range(len(table[0]))])
        for row in table:
            ws.append(row)
    info = wb.create_sheet("Thông tin")
    for r in range(13):
        info.append([f"Mục {r}", "giá trị"])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def write_csv(data: list[list[object]], header: bool = True) -> bytes:
    """The csv module into UTF-8 with a BOM (dates as dd/mm/yyyy hh:mm)."""
    import csv

    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    text.write("\ufeff")
    writer = csv.writer(text)
    if header:
        writer.writerow([f"Cột {c}" for c in range(len(data[0]))])
    for row in data:
        writer.writerow([v.strftime("%d/%m/%Y %H:%M") if isinstance(v, datetime) else v for v in row])
    text.flush()
    text.detach()
    return raw.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Make the rows, write them, put the bytes in -o (or nowhere)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--format", choices=["xlsx", "csv"], default="xlsx")
    parser.add_argument("--writer", choices=["xlsxwriter", "openpyxl"], default="xlsxwriter")
    parser.add_argument("--villages", type=int, default=3000)
    parser.add_argument("--items", type=int, default=2523)
    parser.add_argument("-o", "--output")
    parser.add_argument("--cells", metavar="PICKLE", help="write these cells (from --dump-cells) instead")
    parser.add_argument(
        "--dump-cells", nargs=2, metavar=("OURS", "PICKLE"), help="prepare --cells; not timed"
    )
    parser.add_argument(
        "--with-bot-imports",
        action="store_true",
        help="first import what `baocao export` imports before it reads the database (bot.cli.common, "
        "bot.cli.exports and the format's writer): the floor of the export's own work, start-up set apart",
    )
    args = parser.parse_args(argv)
    if args.with_bot_imports:
        import importlib
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        writer = "bot.exports.csv_export" if args.format == "csv" else "bot.exports.excel"
        for name in ("bot.cli.common", "bot.cli.exports", writer):  # the command imports its format's only
            importlib.import_module(name)
    if args.dump_cells:
        return dump_cells(*args.dump_cells)
    if args.cells:
        import pickle

        with open(args.cells, "rb") as fh:
            sheets = pickle.load(fh)
        if args.format == "csv":
            content = write_csv(sheets[0][1], header=False)
        else:
            content = write_sheets_xlsxwriter(sheets)
        if args.output:
            with open(args.output, "wb") as fh:
                fh.write(content)
        print(len(content), file=sys.stderr)
        return 0
    data = rows(args.villages)
    if args.format == "csv":
        content = write_csv(data)
    elif args.writer == "openpyxl":
        content = write_xlsx_openpyxl(data, items(args.items))
    else:
        content = write_xlsx_xlsxwriter(data, items(args.items))
    if args.output:
        with open(args.output, "wb") as fh:
            fh.write(content)
    print(len(content), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
