"""``extra``: the JSON of a row's present fields, made per row or per group of key sets."""

from __future__ import annotations

import json

import polars as pl
import pytest

from auditkit import schema
from auditkit.schema import extra_json, extra_json_rows

FRAME = pl.DataFrame({
    "a": ["x", None, 'quote " and \\ back', None, "é ünïcode", None],
    "b": [True, False, None, None, True, None],
    "c": [None, "tab\there", "n", None, None, None],
    "d": [1, None, 3, None, None, None],
})
FIELDS = {"first": pl.col("a"), "flag": pl.col("b"), "text": pl.col("c"), "n": pl.col("d")}


def test_rows_equal_the_expression_row_for_row() -> None:
    expected = FRAME.select(extra=extra_json(**FIELDS)).get_column("extra")
    got = extra_json_rows(FRAME, **FIELDS)
    assert got.to_list() == expected.to_list()
    assert got.to_list()[3] == "{}" and json.loads(got[0]) == {"first": "x", "flag": True, "n": 1}
    assert json.loads(got[2])["first"] == 'quote " and \\ back'


def test_many_key_sets_fall_back_to_the_expression(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "MAX_KEY_SETS", 1)
    expected = FRAME.select(extra=extra_json(**FIELDS)).get_column("extra")
    assert extra_json_rows(FRAME, **FIELDS).to_list() == expected.to_list()


def test_an_empty_frame_gives_an_empty_column() -> None:
    got = extra_json_rows(FRAME.clear(), **FIELDS)
    assert got.len() == 0 and got.dtype == pl.String
