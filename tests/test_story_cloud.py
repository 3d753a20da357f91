"""The AWS CloudTrail part of sample_logs/ (auditkit.samplegen_cloud ground truth)."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import polars as pl
import pytest

import auditkit
from auditkit import samplegen_cloud
from auditkit.sources import read_file
from tests.conftest import REPO

SAMPLES = REPO / "sample_logs"
STORY = samplegen_cloud.expected_story()
NIGHT = STORY["night"]
# what the catalogue (auditkit/data/cloud_actions_aws.yml) makes of the incident actions
EXPECTED = {
    "ModifyDBParameterGroup": ("audit_config", "high"),
    "CreateDBSnapshot": ("backup", None),  # snapshot creation is not rated by the catalogue
    "ModifyDBSnapshotAttribute": ("backup", "high"),
    "StopLogging": ("audit_config", "high"),
}


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def cloud() -> pl.DataFrame:
    result = auditkit.load([SAMPLES])
    return result.events.filter(pl.col("source") == "cloudtrail").with_columns(
        risk=pl.col("extra").str.json_path_match("$.risk")
    )


def test_files_are_what_the_generator_writes() -> None:
    days = samplegen_cloud.by_day(samplegen_cloud.scenario())
    assert [samplegen_cloud.day_path(d) for d in days] == STORY["files"]
    for day, records in days.items():
        data = (SAMPLES / samplegen_cloud.day_path(day)).read_bytes()
        assert data == samplegen_cloud.render(records)
        assert json.loads(gzip.decompress(data)) == {"Records": records}


def test_every_record_is_an_event() -> None:
    total = 0
    for name in STORY["files"]:
        fmt, parsed = read_file(SAMPLES / name)
        assert fmt == "cloudtrail"
        assert parsed.quarantine.height == 0
        assert parsed.records == parsed.events.height
        total += parsed.events.height
    assert total == len(samplegen_cloud.scenario())


def test_night_incidents(cloud) -> None:
    incidents = NIGHT["incidents"]
    rows = cloud.filter(pl.col("action").is_in([i["action"] for i in incidents])
                        & (pl.col("person") == NIGHT["person"])).sort("time")
    assert rows["action"].to_list() == [i["action"] for i in incidents]
    assert rows["time"].to_list() == [_utc(i["time"]) for i in incidents]
    assert rows["object"].to_list() == [i["object"] for i in incidents]
    assert rows["outcome"].to_list() == [i["outcome"] for i in incidents]
    assert set(rows["actor_type"]) == {"assumed_role"}
    assert set(rows["actor"]) == {NIGHT["actor"]}
    assert set(rows["src_ip"]) == {NIGHT["src_ip"]}
    assert [(a, c, r) for a, c, r in rows.select("action", "category", "risk").rows()] == [
        (a, *EXPECTED[a]) for a in rows["action"]
    ]
    stop = rows.filter(pl.col("action") == "StopLogging").row(0, named=True)
    assert stop["error"].startswith("AccessDenied: ")
    assert '"parameterName":"pgaudit.log","parameterValue":"none"' in rows["statement"][0]
    assert '"valuesToAdd":["444455556666"]' in rows["statement"][2]


def test_only_the_night_session_is_risky(cloud) -> None:
    risky = cloud.filter(pl.col("risk").is_not_null())
    assert set(risky["person"]) == {NIGHT["person"]}
    assert sorted(risky["action"]) == sorted(a for a, (_, r) in EXPECTED.items() if r)
    # every cloud record from the night address is dave's SSO session, none before it started
    night = cloud.filter(pl.col("src_ip") == NIGHT["src_ip"])
    assert set(night["person"]) == {NIGHT["person"]}
    assert night["time"].min() >= _utc(NIGHT["session_start"])


def test_background(cloud) -> None:
    automated = cloud.filter(pl.col("actor_type") == "system")
    assert automated.height == 14  # one automated snapshot per instance and day
    assert set(automated["action"]) == {"CreateDBSnapshot"}
    assert set(automated["actor"]) == {"rds.amazonaws.com"}
    logins = cloud.filter(pl.col("action") == "ConsoleLogin")
    assert set(logins["person"]) == {"alice@example.com", "carol@example.com"}
    assert set(logins["outcome"]) == {"success"}
    maint = STORY["maintenance"]
    modify = cloud.filter(pl.col("action") == "ModifyDBInstance")
    assert modify["object"].to_list() == maint["instances"]
    assert set(modify["person"]) == {maint["person"]}
    assert modify["time"][0] == _utc(maint["time"])
    assert modify["risk"].null_count() == modify.height
