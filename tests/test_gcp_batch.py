"""The read loop's batch path gives exactly what reading each GCP file alone gives."""

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
from tests.test_gcp_audit import DATA_ACCESS, ONE, TWO, entry, ndjson, pg_entry

MYSQL = entry("cloudsql.instances.query", log=DATA_ACCESS, insert_id="my1", request={
    "@type": "type.googleapis.com/google.cloud.sql.audit.v1.MysqlAuditEntry", "cmd": "query",
    "query": "select 1", "user": "root", "ip": "10.0.0.9", "status": "successful"})
NO_ID = {**entry("cloudsql.instances.restart", auth={"principalEmail": "dan@corp.com"}),
         "insertId": None}
TEXT_PAYLOAD = {"insertId": "t1", "logName": DATA_ACCESS, "timestamp": "2024-05-01T10:00:03Z",
                "textPayload": "LOG:  connection received"}
CSV_HEADER = ("timestamp,logName,insertId,protopayload_auditlog.serviceName,"
              "protopayload_auditlog.methodName,protopayload_auditlog.authenticationInfo."
              "principalEmail")
# file name -> content; sorted order is the read order, mixing every container and odd entry
FILES: dict[str, bytes] = {
    "b01.json.gz": gzip.compress(ndjson(ONE, TWO).encode()),
    # chunks of one statement (and of another session's) in one file; a statement without ids
    "b02.json": ndjson(
        pg_entry("select 0", stmt=1),
        pg_entry("where b = 2", stmt=2, index=3, count=3),
        pg_entry("select a ", stmt=2, index=1, count=3),
        pg_entry("select 9", stmt=2, session=78),
        pg_entry("from t ", stmt=2, index=2, count=3),
    ).encode(),
    # the same session and statement ids in another file: never joined across files
    "b03.json": ndjson(pg_entry("select x ", stmt=2, index=1, count=2)).encode(),
    "b04.json": json.dumps([ONE, TWO], indent=2).encode(),
    "b05.json": json.dumps({"entries": [ONE, MYSQL], "nextPageToken": "x"}).encode(),
    "b06.json": (json.dumps(ONE) + "\r\n\r\nnot json\r\n" + json.dumps(TEXT_PAYLOAD)).encode(),
    "b07.json": json.dumps(NO_ID).encode(),  # no insertId: the file's digest and position
    "b08.json": b"",
    "b09.json": (json.dumps({"logName": DATA_ACCESS, "insertId": "bq1",
                             "protopayload_auditlog": {"methodName": "cloudsql.users.list",
                                                       "serviceName": "cloudsql.googleapis.com"}})
                 + "\n").encode(),
    "b10.csv": (CSV_HEADER + "\n2024-05-01 10:00:00 UTC," + DATA_ACCESS
                + ",c1,cloudsql.googleapis.com,cloudsql.users.update,carol@corp.com\n").encode(),
    "b11.json.gz": gzip.compress(ndjson(entry("cloudsql.instances.get", insert_id="z1"),
                                        NO_ID).encode()),
    "b12.json": ('{"insertId": "x", "logName": "' + DATA_ACCESS + '", "protoPayload": "..."}\n'
                 + json.dumps(TWO) + "\n").encode(),  # an elided payload: the path reader
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_folder(tmp_path, FILES)


@pytest.mark.parametrize("batch_bytes", [24 * 2**20, 300])
def test_batches_equal_reading_each_file_alone(monkeypatch, folder, batch_bytes) -> None:
    assert_batched_reads_as_file_by_file(monkeypatch, folder, "gcp_audit", batch_bytes)


def test_batch_accounting_per_file(folder) -> None:
    result = read(folder)
    counts = {Path(row["path"]).name: (row["format"], row["records"], row["events"],
                                       row["quarantined"])
              for row in result.files.iter_rows(named=True)}
    assert counts == {
        "b01.json.gz": ("gcp_audit", 2, 2, 0),
        "b02.json": ("gcp_audit", 3, 3, 0),
        "b03.json": ("gcp_audit", 1, 1, 0),
        "b04.json": ("gcp_audit", 2, 2, 0),
        "b05.json": ("gcp_audit", 2, 2, 0),
        "b06.json": ("gcp_audit", 3, 1, 2),
        "b07.json": ("gcp_audit", 1, 1, 0),
        "b08.json": ("empty", 0, 0, 0),
        "b09.json": ("gcp_audit", 1, 1, 0),
        "b10.csv": ("gcp_audit", 1, 1, 0),
        "b11.json.gz": ("gcp_audit", 2, 2, 0),
        "b12.json": ("gcp_audit", 2, 1, 1),
    }
    notes = [n for n in result.notes if "b02.json" in n]
    assert notes == [f"{result.files['path'][1]}: 2 pgAudit chunk entries merged into the "
                     "statements they continue (records count reassembled statements)"]
    events = result.events
    b03 = events.filter(events.get_column("raw_ref").str.ends_with("b03.json:1"))
    assert b03.get_column("statement").to_list() == ["select x "]  # not joined to b02's
