"""The read loop's batch path gives exactly what reading each file alone gives (CloudTrail)."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from auditkit.errors import InputError
from auditkit.sources import cloudtrail as ct
from auditkit.sources import read, read_file
from tests.batchcheck import (
    assert_batched_reads_as_file_by_file,
    assert_same_read,
    write_folder,
)

ACCOUNT = "111122223333"
IAM = {"type": "IAMUser", "principalId": "AIDAX", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
       "accountId": ACCOUNT, "userName": "alice"}


def rec(name: str, n: int, **over) -> dict:
    out = {"eventVersion": "1.09", "userIdentity": IAM,
           "eventTime": f"2024-10-10T15:{n % 60:02d}:35Z", "eventSource": "rds.amazonaws.com",
           "eventName": name, "awsRegion": "eu-west-1", "sourceIPAddress": "203.0.113.7",
           "requestParameters": {"dBInstanceIdentifier": f"db-{n}"}, "responseElements": None,
           "eventID": f"id-{n}", "eventType": "AwsApiCall", "recipientAccountId": ACCOUNT}
    out.update(over)
    return {k: v for k, v in out.items() if v is not ...}


def compact(*records: dict) -> bytes:
    return json.dumps({"Records": list(records)}, separators=(",", ":")).encode()


SHARED = rec("ModifyDBSnapshotAttribute", 9, requestParameters={
    "dBSnapshotIdentifier": "snap", "attributeName": "restore", "valuesToAdd": ["all"]})
DIGEST = {"awsAccountId": ACCOUNT, "digestStartTime": "2024-10-10T15:00:00Z",
          "digestEndTime": "2024-10-10T16:00:00Z", "digestS3Bucket": "trail",
          "digestS3Object": "AWSLogs/x.json.gz", "logFiles": []}
# file name -> content; sorted order is the read order, mixing every shape and failure
FILES: dict[str, bytes] = {
    "a01.json.gz": gzip.compress(compact(rec("DescribeDBInstances", 1), SHARED,
                                         rec("CreateDBSnapshot", 2, eventID=...))),
    "a02.json": compact(rec("DeleteDBInstance", 3), rec("Decrypt", 4, eventSource="kms"),
                        rec(..., 5, eventName=...), rec("StopDBInstance", 6, eventTime=...,
                                                        **{"@timestamp": "2024-10-10T15:06:00Z"})),
    "a03-digest.json.gz": gzip.compress(json.dumps(DIGEST).encode()),
    "a04-empty.json": b"",
    "a05.json": compact(rec("RebootDBInstance", 7)),
    "a06.ndjson": (json.dumps(rec("ListTagsForResource", 8)) + '\n{"eventName": \n\n'
                   + json.dumps(rec("AddTagsToResource", 10)) + "\n").encode(),
    "a07-pretty.json": json.dumps({"Records": [rec("CreateDBInstance", 11)]}, indent=2).encode(),
    # valid JSON the fast split cuts wrongly: the batch decode fails, the file goes the slow way
    "a08-bad-split.json": compact(rec("DescribeDBSnapshots", 12), rec("PutItems", 15, eventSource=
                                  "dynamodb", requestParameters={"items": [
                                      {"a": 1}, {"eventVersion": "not a record"}]})),
    "a09.json": compact(rec("ModifyDBInstance", 13), rec("DescribeDBInstances", 14)),
    "a10-truncated.json": b'[{"eventVersion":"1.09","eventSource":"rds","eventName":"X",',
    "a11.json.gz": gzip.compress(compact(*(rec("DescribeDBInstances", 20 + n)
                                           for n in range(5)))),
    "a12-insight.json": compact(rec(..., 30, eventName=..., eventType="AwsCloudTrailInsight"),
                                rec("DescribeDBInstances", 31, eventTime="yesterday")),
    "a13-not-gzip.json.gz": b"\x1f\x8bnot gzip at all",
    "a14.json": compact(rec("FailoverDBCluster", 40)),
    "a15-two-members.ndjson.gz": gzip.compress((json.dumps(rec("StartDBInstance", 41)) + "\n")
                                               .encode())
    + gzip.compress(json.dumps(rec("StopDBInstance", 42)).encode()),
    # a record forging the batch's file break: the batch decode fails, each file alone
    "a16-forged-break.json": compact(
        rec("DescribeDBInstances", 50, eventVersion=ct.FILE_BREAK_VERSION),
        rec("RebootDBInstance", 51),
    ),
    # not UTF-8 (a Latin-1 é): replaced with a note; ids hash the bytes as read
    "a17-latin1.json": compact(rec("ModifyDBInstance", 52, eventID=...)).replace(
        b"ModifyDBInstance", "Modify\xe9".encode("latin-1")),
    # UTF-8 beyond ASCII, a record without eventID: handed on as read, hashed when needed
    "a18-utf8.json": json.dumps({"Records": [rec("CreateDBSnapshot", 53, eventID=...,
                                                 userAgent="café/1.0")]},
                                separators=(",", ":"), ensure_ascii=False).encode(),
    # a record without eventVersion is not split off its neighbour: that line fails the batch
    # decode (never read as one record) and the file goes the slow way, both records kept
    "a19-no-version.json": compact(rec("DescribeDBInstances", 60),
                                   rec("RebootDBInstance", 61, eventVersion=...)),
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_folder(tmp_path, FILES)


@pytest.mark.parametrize("batch_bytes", [32 * 2**20, 400])
def test_batches_equal_reading_each_file_alone(monkeypatch, folder, batch_bytes) -> None:
    assert_batched_reads_as_file_by_file(monkeypatch, folder, "cloudtrail", batch_bytes)


def test_batch_accounting_per_file(folder) -> None:
    result = read(folder)
    files = {Path(row["path"]).name: row for row in result.files.iter_rows(named=True)}
    assert list(files) == sorted(FILES)
    counts = {name: (row["format"], row["records"], row["events"], row["quarantined"])
              for name, row in files.items()}
    assert counts == {
        "a01.json.gz": ("cloudtrail", 3, 3, 0),
        "a02.json": ("cloudtrail", 4, 3, 1),
        "a03-digest.json.gz": ("cloudtrail", 0, 0, 0),
        "a04-empty.json": ("empty", 0, 0, 0),
        "a05.json": ("cloudtrail", 1, 1, 0),
        "a06.ndjson": ("cloudtrail", 3, 2, 1),
        "a07-pretty.json": ("cloudtrail", 1, 1, 0),
        "a08-bad-split.json": ("cloudtrail", 2, 2, 0),
        "a09.json": ("cloudtrail", 2, 2, 0),
        "a10-truncated.json": ("unreadable", 1, 0, 1),
        "a11.json.gz": ("cloudtrail", 5, 5, 0),
        "a12-insight.json": ("cloudtrail", 2, 0, 2),
        "a13-not-gzip.json.gz": ("unreadable", 1, 0, 1),
        "a14.json": ("cloudtrail", 1, 1, 0),
        "a15-two-members.ndjson.gz": ("cloudtrail", 2, 2, 0),
        "a16-forged-break.json": ("cloudtrail", 2, 2, 0),
        "a17-latin1.json": ("cloudtrail", 1, 1, 0),
        "a18-utf8.json": ("cloudtrail", 1, 1, 0),
        "a19-no-version.json": ("cloudtrail", 2, 2, 0),
    }
    events = result.events
    refs = events.get_column("raw_ref").to_list()
    assert [ref.rsplit("/", 1)[1] for ref in refs[:3]] == [
        "a01.json.gz:1", "a01.json.gz:2", "a01.json.gz:3"]
    assert refs[-9].endswith("a14.json:1") and refs[-7].endswith("a15-two-members.ndjson.gz:2")
    assert refs[-6].endswith("a16-forged-break.json:1")
    assert [(ref.rsplit("/", 1)[1], action) for ref, action in zip(
        refs[-4:], events.get_column("action").to_list()[-4:], strict=True)] == [
        ("a17-latin1.json:1", "Modify\ufffd"), ("a18-utf8.json:1", "CreateDBSnapshot"),
        ("a19-no-version.json:1", "DescribeDBInstances"),
        ("a19-no-version.json:2", "RebootDBInstance")]
    for name in ("a17-latin1.json", "a18-utf8.json"):  # no eventID: the digest of the bytes read
        assert events.get_column("event_id").to_list()[refs.index(next(
            ref for ref in refs if ref.endswith(name + ":1")))] == (
            hashlib.sha256(FILES[name]).hexdigest()[:12] + ":1")
    assert any("a17-latin1.json: invalid UTF-8" in note for note in result.notes)
    # a record without eventID: the file's digest and position, as reading the file alone
    alone = read_file(folder / "a01.json.gz")[1].events
    assert events.get_column("event_id")[2] == alone.get_column("event_id")[2]
    assert alone.get_column("event_id")[2].endswith(":3")
    shared = events.filter(events.get_column("action") == "ModifyDBSnapshotAttribute")
    assert json.loads(shared.get_column("extra")[0])["risk"] == "high"
    bad = result.quarantine.filter(result.quarantine.get_column("file").str.ends_with("a02.json"))
    assert bad.select("line", "format", "reason").rows() == [(3, "cloudtrail", "no eventName")]
    assert bad.get_column("raw")[0] == json.dumps(rec(..., 5, eventName=...),
                                                  separators=(",", ":"))
    not_gzip = result.quarantine.filter(
        result.quarantine.get_column("file").str.ends_with("a13-not-gzip.json.gz"))
    with pytest.raises(OSError) as gzip_error:
        gzip.decompress(FILES["a13-not-gzip.json.gz"])
    assert not_gzip.get_column("reason")[0] == f"whole file: corrupt gzip data ({gzip_error.value})"
    notes = "\n".join(result.notes)
    assert ct.DIGEST_NOTE in notes and "empty file" in notes
    assert "1 records have no eventTime" in notes


def test_named_file_error_names_the_file(folder) -> None:
    with pytest.raises(InputError) as caught:
        read([folder / "a01.json.gz", folder / "a10-truncated.json", folder / "a14.json"])
    assert caught.value.path == str(folder / "a10-truncated.json")


@pytest.mark.parametrize(("max_size", "ahead"), [(0, 32 * 2**20), (10**9, 1), (200, 500)])
def test_loading_ahead_changes_nothing(monkeypatch, folder, max_size, ahead) -> None:
    """Files loaded ahead in the background, or in turn, give the same read in the same order."""
    usual = read(folder)
    monkeypatch.setattr("auditkit.sources.PREFETCH_MAX_SIZE", max_size)
    monkeypatch.setattr("auditkit.sources.PREFETCH_BYTES", ahead)
    other = read(folder)
    assert_same_read(other, usual)

