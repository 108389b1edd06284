"""XML files: records, columns, nested repeats, namespaces, typing, and unsafe documents."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from lakegov.convert.options import ColumnSpec, DatasetOptions, XmlOptions, options_from_document
from lakegov.errors import RejectedFile

Run = Callable[..., Any]

ORDERS = b"""<?xml version="1.0" encoding="UTF-8"?>
<!-- exported by the shop -->
<o:orders xmlns:o="urn:example:orders" xmlns:c="urn:example:customer"
          xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <o:order id="1" status="open">
    <o:placed>2026-11-20</o:placed>
    <c:customer><c:name>Ada</c:name><c:zip>02134</c:zip></c:customer>
    <o:price currency="EUR">10.50</o:price>
    <o:items>
      <o:item sku="A-1"><o:qty>2</o:qty></o:item>
      <o:item sku="B-2"><o:qty>1</o:qty></o:item>
    </o:items>
    <o:note xsi:nil="true"/>
  </o:order>
  <o:order id="2" status="shipped">
    <o:placed>2026-11-21</o:placed>
    <c:customer><c:name>Grace</c:name><c:zip>10001</c:zip></c:customer>
    <o:price currency="USD">4.25</o:price>
    <o:items><o:item sku="C-3"><o:qty>12345678901234567890</o:qty></o:item></o:items>
    <o:note>leave at door</o:note>
  </o:order>
</o:orders>
"""


def test_records_attributes_children_and_nested_repeats_become_typed_columns(run: Run) -> None:
    out = run(ORDERS, "orders.xml")
    assert out.result.format == "xml" and out.result.rows_out == 2
    assert out.table.column_names == [
        "id",
        "status",
        "placed",
        "customer_name",
        "customer_zip",
        "price",
        "price_currency",
        "items",
        "note",
    ]
    schema = out.table.schema
    assert schema.field("id").type == pa.int64()
    assert schema.field("placed").type == pa.date32()
    assert schema.field("customer_zip").type == pa.string()  # leading zeros stay text
    assert schema.field("price").type == pa.float64()
    # an integer beyond int64 inside a list is exact, as at the top level
    assert schema.field("items").type == pa.list_(
        pa.struct([("sku", pa.string()), ("qty", pa.decimal128(38, 0))])
    )
    first, second = out.table.to_pylist()
    assert first["customer_zip"] == "02134" and first["price_currency"] == "EUR"
    assert first["items"] == [{"sku": "A-1", "qty": Decimal(2)}, {"sku": "B-2", "qty": Decimal(1)}]
    assert first["note"] is None  # xsi:nil
    assert second["items"] == [{"sku": "C-3", "qty": Decimal("12345678901234567890")}]
    assert second["placed"] == dt.date(2026, 11, 21)


def test_an_element_repeated_in_a_later_record_is_a_list_in_every_record(run: Run) -> None:
    data = b"<rows><row><tag>a</tag></row><row><tag>b</tag><tag>c</tag></row><row/></rows>"
    out = run(data, "rows.xml")
    assert out.table.to_pylist() == [
        {"tag": [{"value": "a"}]},
        {"tag": [{"value": "b"}, {"value": "c"}]},
        {"tag": []},
    ]


def test_the_record_path_of_a_dataset_document_finds_deeper_records(run: Run) -> None:
    data = (
        b"<export><header><created>2026-11-20</created></header>"
        b"<customers><customer id='C1'><name>Ada</name></customer>"
        b"<customer id='C2'><name>Grace</name></customer></customers></export>"
    )
    with pytest.raises(RejectedFile) as err:
        run(data, "export.xml")
    assert err.value.reason_code == "malformed" and "xml.record_path" in err.value.reason
    _, options = options_from_document(
        {"match": {"prefix": "x/"}, "xml": {"record_path": "export/customers/customer"}}
    )
    out = run(data, "export.xml", options=options)
    assert out.table.to_pylist() == [{"id": "C1", "name": "Ada"}, {"id": "C2", "name": "Grace"}]


def test_record_path_steps_may_name_a_namespace(run: Run) -> None:
    data = b'<r xmlns:a="urn:a" xmlns:b="urn:b"><a:x><v>1</v></a:x><b:x><v>2</v></b:x></r>'
    options = DatasetOptions(xml=XmlOptions(("r", "{urn:b}x")))
    assert run(data, "r.xml", options=options).table.to_pylist() == [{"v": 2}]


def test_a_late_value_widens_its_column_like_csv(run: Run) -> None:
    rows = b"".join(b"<r><n>%d</n></r>" % i for i in range(30_000))
    out = run(b"<rows>" + rows + b"<r><n>007</n></r></rows>", "late.xml")
    assert out.table.schema.field("n").type == pa.string()
    assert out.table.column("n").to_pylist()[-1] == "007"


def test_a_declared_schema_sets_rows_aside_with_their_line(run: Run) -> None:
    data = b"<rows>\n<r><id>1</id></r>\n<r><id>x</id></r>\n<r><id>3</id></r>\n</rows>\n"
    options = DatasetOptions(columns=(ColumnSpec("id", "bigint"),), max_bad_row_fraction=0.5)
    out = run(data, "d.xml", options=options)
    assert out.table.column("id").to_pylist() == [1, 3]
    assert [(e["line"], e["reason_code"]) for e in out.exceptions] == [(3, "schema_mismatch")]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz><row><v>&lol9;</v></row><row><v a="&lol9;">x</v></row></lolz>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE data [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<data><row><v>&secret;</v></row></data>
"""

PARAMETER_XXE = b"""<?xml version="1.0"?>
<!DOCTYPE data [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<data><row><v>1</v></row></data>
"""

EXTERNAL_DTD_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE data SYSTEM "http://127.0.0.1:9/evil.dtd">
<data><row><v>&defined_elsewhere;</v></row></data>
"""


@pytest.mark.parametrize(
    "document",
    [BILLION_LAUGHS, XXE, PARAMETER_XXE, EXTERNAL_DTD_ENTITY],
    ids=["billion-laughs", "xxe", "parameter-entity", "external-dtd-entity"],
)
def test_entity_attacks_are_refused_as_xml_unsafe(run: Run, document: bytes) -> None:
    with pytest.raises(RejectedFile) as err:
        run(document, "evil.xml")
    assert err.value.reason_code == "xml_unsafe"
    assert "root:" not in err.value.reason  # nothing of /etc/passwd


def test_a_doctype_without_entities_is_read(run: Run) -> None:
    data = b'<!DOCTYPE data SYSTEM "data.dtd">\n<data><row><v>1</v></row></data>'
    assert run(data, "d.xml").table.to_pylist() == [{"v": 1}]


def test_xml_that_is_not_well_formed_is_malformed_with_its_line(run: Run) -> None:
    with pytest.raises(RejectedFile) as err:
        run(b"<rows>\n<r><v>1</v></r>\n<r><v>2</r>\n</rows>", "bad.xml")
    assert err.value.reason_code == "malformed" and err.value.bad_lines == [3]


def test_xml_is_detected_by_content_and_in_utf16(run: Run) -> None:
    data = '<?xml version="1.0" encoding="UTF-16"?><rows><r><name>Zoë</name></r></rows>'
    out = run(data.encode("utf-16"), "export")
    assert out.result.format == "xml" and out.table.to_pylist() == [{"name": "Zoë"}]


def test_an_empty_root_has_no_rows(run: Run) -> None:
    with pytest.raises(RejectedFile) as err:
        run(b"<rows/>", "empty.xml")
    assert err.value.reason_code == "empty"


def test_column_names_are_normalised_and_kept_distinct(run: Run) -> None:
    data = b'<rows><r Order-Id="1"><Order-Id>2</Order-Id><Line><Sku-Code>a</Sku-Code></Line><Line><Sku-Code>b</Sku-Code></Line></r></rows>'
    out = run(data, "n.xml")
    assert out.table.column_names == ["order_id", "order_id_2", "line"]
    assert out.table.column("line").to_pylist() == [[{"sku_code": "a"}, {"sku_code": "b"}]]
    raw = dataclasses.replace(DatasetOptions(), normalize_column_names=False)
    assert run(data, "n.xml", options=raw).table.column_names[:2] == ["Order-Id", "Order-Id_2"]


def test_the_previous_schema_is_the_floor_of_a_later_file_with_lists(run: Run) -> None:
    first = run(ORDERS, "orders.xml")
    later = b"<o:orders xmlns:o='urn:example:orders'><o:order id='3'><o:items><o:item sku='D'><o:qty>4</o:qty></o:item><o:item sku='E'/></o:items></o:order></o:orders>"
    out = run(later, "orders.xml", previous_schema=first.result.schema)
    assert out.result.schema_diff.kind == "none"
    # absent columns written as nulls (after the file's own), types as before
    assert dict(zip(out.table.schema.names, out.table.schema.types, strict=True)) == dict(
        zip(first.table.schema.names, first.table.schema.types, strict=True)
    )
    assert out.table.column("items").to_pylist() == [
        [{"sku": "D", "qty": Decimal(4)}, {"sku": "E", "qty": None}]
    ]


def test_predefined_entities_character_references_and_cdata_are_text(run: Run) -> None:
    data = b"<rows><r><n>A &amp; B &lt;c&gt; &#233;</n><d><![CDATA[x < y]]></d></r></rows>"
    assert run(data, "e.xml").table.to_pylist() == [{"n": "A & B <c> é", "d": "x < y"}]


def test_a_declared_encoding_is_decoded(run: Run) -> None:
    data = '<?xml version="1.0" encoding="ISO-8859-1"?><rows><r><n>Müller</n></r></rows>'
    assert run(data.encode("latin-1"), "l.xml").table.to_pylist() == [{"n": "Müller"}]


def test_an_xml_export_written_by_pandas_to_xml(run: Run, tmp_path: Any) -> None:
    # pandas' DataFrame.to_xml (lxml underneath) is how many Python jobs export XML: a
    # prefixed namespace, one element per column, empty elements for missing values
    import pandas as pd

    frame = pd.DataFrame(
        {
            "order_id": ["00017", "00018", "00019"],
            "placed": [dt.date(2026, 11, 20), dt.date(2026, 11, 21), None],
            "amount": [10.5, 4.25, 1200.0],
            "paid": [True, False, True],
            "note": ["a & b", None, "<urgent>"],
        }
    )
    path = tmp_path / "export.xml"
    frame.to_xml(path, index=False, namespaces={"shop": "urn:example:shop"}, prefix="shop")
    out = run(path.read_bytes(), "export.xml")
    assert out.result.format == "xml" and out.result.rows_out == 3
    schema = out.table.schema
    assert schema.field("order_id").type == pa.string()
    assert schema.field("placed").type == pa.date32()
    assert schema.field("amount").type == pa.float64()
    assert schema.field("paid").type == pa.bool_()
    assert out.table.to_pylist() == [
        {
            "order_id": "00017",
            "placed": dt.date(2026, 11, 20),
            "amount": 10.5,
            "paid": True,
            "note": "a & b",
        },
        {
            "order_id": "00018",
            "placed": dt.date(2026, 11, 21),
            "amount": 4.25,
            "paid": False,
            "note": None,
        },
        {"order_id": "00019", "placed": None, "amount": 1200.0, "paid": True, "note": "<urgent>"},
    ]
