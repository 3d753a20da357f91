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
