"""sniff_csv_dialect on bytes: the dialects real exports are written in."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from lakegov.convert.dialect import (
    CsvDialect,
    iter_records,
    parse_record,
    sniff_csv_dialect,
    split_lines,
)
from lakegov.convert.options import DatasetOptions
from lakegov.errors import RejectedFile

ROWS = [
    ("1001", "Anna", "Lisbon", "2024-01-05", "12.50"),
    ("1002", "Björn", "New York, NY", "2024-02-11", "7.00"),
    ("1003", "Chloé", "Zürich", "2024-03-17", "100.25"),
    ("1004", "Dmitri", "Osaka", "2024-04-02", "3.10"),
    ("1005", "Eve", "Lagos", "2024-05-30", "45.00"),
    ("1006", "Farah", "Oslo", "2024-06-01", "0.99"),
]
HEADER = ("id", "name", "city", "signup_date", "amount")


def csv_text(
    rows: Sequence[tuple[str, ...]] | None = None,
    *,
    delimiter: str = ",",
    quote: str = '"',
    newline: str = "\n",
    header: tuple[str, ...] | None = HEADER,
) -> str:
    def field(v: str) -> str:
        if delimiter.strip() in v or quote in v or "\n" in v:
            return quote + v.replace(quote, quote * 2) + quote
        return v

    lines = [header] if header else []
    lines += rows if rows is not None else ROWS
    return "".join(delimiter.join(field(v) for v in row) + newline for row in lines)


def sniff(text: str, **options: object) -> CsvDialect:
    return sniff_csv_dialect(text.encode("utf-8"), DatasetOptions(**options))  # type: ignore[arg-type]


def test_plain_comma_file_with_header() -> None:
    d = sniff(csv_text())
    assert (d.delimiter, d.quote, d.escape, d.newline) == (",", '"', None, "\n")
    assert (d.skip_lines, d.header_lines, d.comment) == (0, 1, None)
    assert d.columns == HEADER


@pytest.mark.parametrize(("newline"), ["\n", "\r\n", "\r"])
def test_line_endings(newline: str) -> None:
    d = sniff(csv_text(newline=newline))
    assert d.newline == newline
    assert d.columns == HEADER


def test_cr_only_file_from_the_issue() -> None:
    d = sniff("a,b,c\r1,2,3\r4,5,6\r")
    assert d.newline == "\r"
    assert d.columns == ("a", "b", "c")
    assert d.header_lines == 1


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|", ", "])
def test_delimiters(delimiter: str) -> None:
    d = sniff(csv_text(delimiter=delimiter))
    assert d.delimiter == delimiter
    assert d.columns == HEADER


def test_comma_space_with_quoted_commas() -> None:
    text = 'id, city, n\n1, "New York, NY", 3\n2, Oslo, 4\n3, "Paris, TX", 5\n'
    d = sniff(text)
    assert d.delimiter == ", "
    assert d.quote == '"'


def test_comma_is_not_taken_for_comma_space_when_some_fields_have_no_space() -> None:
    d = sniff("id,name\n1, Anna\n2,Bob\n3, Carl\n")
    assert d.delimiter == ","


def test_apostrophe_quotes() -> None:
    d = sniff(csv_text(quote="'"))
    assert d.quote == "'"
    assert d.columns == HEADER


def test_apostrophe_inside_a_field_does_not_make_it_the_quote() -> None:
    rows = [("1", "O'Brien", '"New York, NY"'), ("2", "Lee", "Oslo"), ("3", "D'Arcy", "Rome")]
    text = "id,name,city\n" + "".join(",".join(r) + "\n" for r in rows)
    d = sniff(text)
    assert d.quote == '"'


def test_backslash_escapes() -> None:
    text = (
        "id,product,qty\n"
        '1,"Monitor 27\\" 4K",2\n'
        '2,"Mouse \\"silent\\", wireless",1\n'
        "3,Chair,4\n"
        '4,"Desk, standing",1\n'
    )
    d = sniff(text)
    assert (d.quote, d.escape) == ('"', "\\")
    lines = split_lines(text, d.newline)
    record = parse_record(lines, 2, d.delimiter, d.quote, d.escape)
    assert record.fields == ("2", 'Mouse "silent", wireless', "1")


def test_doubled_quotes_stay_the_default() -> None:
    d = sniff('id,product\n1,"Monitor 27"" 4K"\n2,Chair\n3,"Lamp, LED"\n')
    assert (d.quote, d.escape) == ('"', None)


def test_preamble_is_skipped_and_reported() -> None:
    text = "Report generated 2024-03-01 09:12 by ERP\n\n" + csv_text()
    d = sniff(text)
    assert d.skip_lines == 2
    assert d.skipped == ("Report generated 2024-03-01 09:12 by ERP", "")
    assert d.columns == HEADER


def test_preamble_with_a_delimiter_in_it() -> None:
    text = "Sales report, March 2024\nExported by: ERP, v2\n" + csv_text()
    d = sniff(text)
    assert d.skip_lines == 2
    assert d.columns == HEADER


def test_comment_lines_at_top_and_in_the_middle() -> None:
    body = csv_text().splitlines(keepends=True)
    text = "# export of customers\n# second comment\n" + "".join(body[:3]) + "# page 2\n"
    text += "".join(body[3:])
    d = sniff(text)
    assert d.comment == "#"
    assert d.skip_lines == 2
    assert d.columns == HEADER


def test_a_hash_in_data_rows_is_not_a_comment() -> None:
    d = sniff("tag,count\n#python,3\n#sql,4\n#rust,5\n")
    assert d.comment is None
    assert d.columns == ("tag", "count")


def test_no_header_keeps_row_one_as_data_with_generated_names() -> None:
    # the issue's file: dd.mm.yyyy dates, times, ids
    text = "28.01.2018,00:00,MG-8769,12.5\n28.01.2018,00:15,MG-8770,13.1\n28.01.2018,00:30,MG-8771,12.9\n"
    d = sniff(text)
    assert d.header_lines == 0
    assert d.columns == ("col_1", "col_2", "col_3", "col_4")


def test_no_header_with_typed_columns() -> None:
    d = sniff(csv_text(header=None))
    assert d.header_lines == 0
    assert d.columns == tuple(f"col_{i}" for i in range(1, 6))


def test_all_text_table_with_names_unseen_below_has_a_header() -> None:
    d = sniff("name,city\nAnna,Lisbon\nBob,Oslo\nCarl,Rome\n")
    assert d.header_lines == 1


def test_all_text_first_row_repeated_below_is_kept_as_data() -> None:
    d = sniff("Anna,Lisbon\nBob,Oslo\nAnna,Rome\n")
    assert d.header_lines == 0


def test_header_setting_wins_over_detection() -> None:
    assert sniff(csv_text(), header=False).header_lines == 0
    forced = sniff("Anna,Lisbon\nBob,Oslo\nAnna,Rome\n", header=True)
    assert (forced.header_lines, forced.columns) == (1, ("Anna", "Lisbon"))


def test_two_row_header_is_joined() -> None:
    text = "customer,customer,contact,amount\nid,name,city,eur\n" + "".join(
        f"{i},N{i},C{i},{i}.5\n" for i in range(10)
    )
    d = sniff(text)
    assert d.header_lines == 2
    assert d.columns == ("customer_id", "customer_name", "contact_city", "amount_eur")


def test_merged_cells_in_the_upper_header_row_carry_to_the_right() -> None:
    text = "customer,,contact\nid,name,city\n" + "".join(f"{i},N{i},C{i}\n" for i in range(10))
    d = sniff(text, header_rows=2)
    assert d.columns == ("customer_id", "customer_name", "contact_city")


def test_header_rows_setting() -> None:
    text = "title row,x,y\nid,name,n\n" + "".join(f"{i},N{i},{i}\n" for i in range(5))
    assert sniff(text, header_rows=2).columns == ("title row_id", "x_name", "y_n")


def test_skip_lines_setting() -> None:
    d = sniff("junk\nmore junk\n" + csv_text(), skip_lines=2)
    assert d.skip_lines == 2
    assert d.columns == HEADER


def test_a_stray_quote_does_not_swallow_the_sample() -> None:
    rows = list(ROWS) * 5
    rows[12] = ("1013", '"Anna', "Lisbon", "2024-01-05", "1.00")
    text = csv_text(rows).replace('"""Anna"', '"Anna')
    d = sniff(text)
    assert (d.delimiter, d.quote, d.header_lines) == (",", '"', 1)
    lines = split_lines(text, "\n")
    bad = [r for r in iter_records(lines, ",", '"', None) if not r.ok]
    assert [r.line + 1 for r in bad] == [14]  # physical line of the stray quote


def test_quoted_newlines_count_as_physical_lines() -> None:
    text = 'id,note\n1,"two\nlines"\n2,plain\n3,"three\nlines\nhere"\n4,x\n'
    lines = split_lines(text, "\n")
    records = list(iter_records(lines, ",", '"', None))
    assert [(r.line + 1, r.fields[0]) for r in records] == [
        (1, "id"),
        (2, "1"),
        (4, "2"),
        (5, "3"),
        (8, "4"),
    ]
    assert records[3].fields[1] == "three\nlines\nhere"


def test_empty_file_is_rejected() -> None:
    with pytest.raises(RejectedFile) as err:
        sniff("\n\n")
    assert err.value.reason_code == "empty"


def test_declared_delimiter_and_quote_win() -> None:
    d = sniff(csv_text(delimiter=";"), delimiter=";", quotechar="'")
    assert (d.delimiter, d.quote) == (";", "'")


def test_describe_names_what_was_found() -> None:
    d = sniff("Report\n\n" + csv_text(delimiter=";", newline="\r\n"))
    assert d.describe() == "delimiter ';', quote '\"', CRLF, header 1 row, 2 lines skipped"


def test_skip_lines_without_comments_is_what_a_comment_aware_reader_skips() -> None:
    d = sniff("# export\nReport\n# by ERP\n\n" + csv_text())
    assert (d.skip_lines, d.comment) == (4, "#")
    assert d.skip_lines_without_comments == 2


def test_a_bad_row_near_the_top_is_not_taken_for_a_preamble() -> None:
    d = sniff('a,b,c\n1,2,3\n4,5\n"multi\nline",7,8\n9,10,11,12\n13,14,15\n')
    assert (d.skip_lines, d.columns) == (0, ("a", "b", "c"))
    d = sniff("1,2,3\n4,5\n6,7,8\n9,10,11\n")
    assert (d.skip_lines, d.header_lines) == (0, 0)


def test_an_unclosed_quote_in_row_one_is_not_a_preamble() -> None:
    d = sniff('a,b\n1,"never closed\n2,3\n')
    assert (d.skip_lines, d.columns) == (0, ("a", "b"))


@pytest.mark.parametrize(
    ("text", "header"),
    [("code\n0x1F\n0x20\n", 1), ("12\n13\n14\n", 0), ("amount\n12\n13\n", 1)],
)
def test_single_column_files(text: str, header: int) -> None:
    d = sniff(text)
    assert d.header_lines == header
    assert d.columns == (("code",) if "code" in text else ("amount",) if header else ("col_1",))
