"""The read loop's batch path gives exactly what reading each Azure file alone gives."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from auditkit.sources import read
from tests.batchcheck import (
    assert_batched_reads_as_file_by_file,
    write_folder,
)
from tests.test_azure_activity import LA_ROW, export, ndjson, rest

LA_HEADER = "TimeGenerated,OperationNameValue,ActivityStatusValue,Caller,CorrelationId,EventDataId"
# file name -> content; sorted order is the read order, mixing every container and odd record
FILES: dict[str, bytes] = {
    # one operation (Start then Success) inside one hourly blob: linked
    "y=2024/m=05/d=01/h=10/PT1H.json": ndjson(
        export(result="Start", corr="op1"), export(result="Success", corr="op1")).encode(),
    # the same correlation id in the next blob: an operation is linked within its file only
    "y=2024/m=05/d=01/h=11/PT1H.json": ndjson(
        export(result="Start", corr="op2"), export(corr="x", op="Microsoft.Sql/servers/delete",
                                                  time="2024-05-01T11:00:00Z")).encode(),
    "y=2024/m=05/d=01/h=12/PT1H.json": ndjson(
        export(result="Success", corr="op2"),
        export(category="NonInteractiveUserSignInLogs", identity="a@b.c")).encode()
    + b"not json {\n\n",
    "z1-eventhub.json": (json.dumps({"records": [export(result="Start", corr="eh"),
                                                 export(result="Success", corr="eh")]}) + "\n"
                         + json.dumps({"records": [export(corr="eh2")]}) + "\n").encode(),
    "z2-rest.json": json.dumps({"value": [rest(), rest(eid="e2", corr="c2", status="Failed")],
                                "nextLink": None}).encode(),
    "z3-la.json": json.dumps([LA_ROW]).encode(),
    "z4-la.csv": (LA_HEADER + "\n2024-05-01T10:00:00Z,MICROSOFT.SQL/SERVERS/WRITE,Success,"
                  "bob@corp.com,c7,la7\n").encode(),
    "z5-no-id.json.gz": gzip.compress(ndjson(export(corr="n1"), export(corr="n2")).encode()),
    "z6-empty.json": b"",
    "z7-crlf.json": ndjson(export(corr="w1"), rest(eid="w2")).replace("\n", "\r\n").encode(),
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_folder(tmp_path, FILES)


@pytest.mark.parametrize("batch_bytes", [24 * 2**20, 300])
def test_batches_equal_reading_each_file_alone(monkeypatch, folder, batch_bytes) -> None:
    assert_batched_reads_as_file_by_file(monkeypatch, folder, "azure_activity", batch_bytes)


def test_batch_accounting_per_file(folder) -> None:
    result = read(folder)
    counts = {Path(row["path"]).relative_to(folder).as_posix(): (
        row["format"], row["records"], row["events"], row["quarantined"])
        for row in result.files.iter_rows(named=True)}
    assert counts == {
        "y=2024/m=05/d=01/h=10/PT1H.json": ("azure_activity", 2, 2, 0),
        "y=2024/m=05/d=01/h=11/PT1H.json": ("azure_activity", 2, 2, 0),
        "y=2024/m=05/d=01/h=12/PT1H.json": ("azure_activity", 3, 1, 2),
        "z1-eventhub.json": ("azure_activity", 3, 3, 0),
        "z2-rest.json": ("azure_activity", 2, 2, 0),
        "z3-la.json": ("azure_activity", 1, 1, 0),
        "z4-la.csv": ("azure_activity", 1, 1, 0),
        "z5-no-id.json.gz": ("azure_activity", 2, 2, 0),
        "z6-empty.json": ("empty", 0, 0, 0),
        "z7-crlf.json": ("azure_activity", 2, 2, 0),
    }
    superseded = [n.rsplit(": ", 1)[-1] for n in result.notes if "superseded" in n]
    assert len(superseded) == 2  # h=10 and the Event Hub file; h=11's Start ends in h=12
    events = result.events
    h11 = events.filter(events.get_column("raw_ref").str.contains("h=11"))
    assert h11.get_column("outcome").to_list() == ["unknown", "success"]
