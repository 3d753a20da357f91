"""Cutting JSON containers into one text per record (shared by the JSON sources)."""

from __future__ import annotations

import json

import pytest

from auditkit.sources.jsontext import document_texts, json_lines, list_texts


@pytest.mark.parametrize(
    ("body", "records"),
    [
        ('[{"a":1},{"a":2}]', [{"a": 1}, {"a": 2}]),
        ('{"entries":[{"a":1}],"nextPageToken":"x"}', [{"a": 1}]),
        ('{\n  "records": [\n    {"a": "x\\ny"}\n  ]\n}', [{"a": "x\ny"}]),
        ('{"a":1,"note":"entries"}', [{"a": 1, "note": "entries"}]),
        ("[]", []),
    ],
)
def test_document_texts(body, records):
    texts = document_texts(body, ("entries", "records"))
    assert [json.loads(t) for t in texts] == records


@pytest.mark.parametrize("body", ['{"a":1}\n{"a":2}\n', "not json", ""])
def test_not_one_document(body):
    assert document_texts(body, ("entries",)) is None


def test_list_texts_of_an_invalid_document_is_none():
    assert list_texts('{"Records":[{"a":1},', "Records") is None


def test_json_lines_keep_line_numbers():
    frame = json_lines('{"a":1}\r\n\n{"a":2}\n')
    assert frame.rows() == [('{"a":1}', 1), ('{"a":2}', 3)]


# Polars re-serialises nested values without escaping backslashes; every container keeps them.
TRICKY = {"path": "C:\\temp\\new", "pattern": "^\\d+$", "ends": "x\\", "quoted": 'say "hi"',
          "embedded": json.dumps({"q": 'a "b" \\ c'})}


@pytest.mark.parametrize("shape", ["array", "wrapper", "pretty"])
def test_backslashes_survive_the_split(shape):
    records = [{"requestParameters": TRICKY, "n": 1}, {"n": 2, "s": "\\\\server\\share"}]
    body = {
        "array": json.dumps(records),
        "wrapper": json.dumps({"records": records}),
        "pretty": json.dumps({"records": records}, indent=2),
    }[shape]
    texts = document_texts(body, ("records",))
    assert [json.loads(t) for t in texts] == records


def test_a_text_holding_the_sentinel_is_left_alone():
    from auditkit.sources.jsontext import SENTINEL, protect_backslashes

    for text in (json.dumps({"a": "x\\y" + SENTINEL}, ensure_ascii=False),
                 json.dumps({"a": "x\\y" + SENTINEL})):
        assert protect_backslashes(text.encode()) == (text.encode(), False)
