"""Conformance over the public corpus: ../shared/corpus/azure_activity/ (see its PROVENANCE.md).

Every file is detected as ``azure_activity``; every record is an event or a quarantined row;
counts are exact. Skips cleanly when the corpus folder is absent.
"""

from __future__ import annotations

import polars as pl
import pytest

from auditkit.sources import azure_activity as _azure_activity  # noqa: F401  (registers it)
from auditkit.sources import read_file
from tests.conftest import corpus_dir

# file -> (records, events, quarantined, events not superseded by their operation's final one)
EXPECTED = {
    # Event Hub body {"records": [...]}: Start + Failure of one listKeys operation
    "elastic_beats/activity_log.json": (2, 2, 0, 1),
    "elastic_beats/activitylogs_ipv6.log": (1, 1, 0, 1),
    "elastic_beats/supporttickets_write.log": (1, 1, 0, 1),
    "elastic_integrations/test-activitylogs-mixedcase-resourceid.log": (2, 2, 0, 2),
    # listKeys Start + two ResourceHealth "Updated" records (request body string, then object)
    "elastic_integrations/test-activitylogs-raw.log": (3, 3, 0, 3),
    "elastic_integrations/test-azure-activitylogs-duration-as-string-sample.log": (3, 3, 0, 3),
    # {time, category} only: test records of time formats, no operation -> quarantined
    "elastic_integrations/test-time-formats-corner-cases.log": (11, 0, 11, 0),
    "microsoft_docs/activity-log-schema.administrative-sample.rest.json": (1, 1, 0, 1),
    "microsoft_docs/activity-log-schema.storage-eventhub-sample.records.json": (1, 1, 0, 1),
}
EVENT_HUB_APP = "2a7e2503-d7e2-405a-a84c-c333b9f7cb73"
LIST_KEYS = "MICROSOFT.EVENTHUB/NAMESPACES/AUTHORIZATIONRULES/LISTKEYS/ACTION"


def _parse(name: str):
    return read_file(corpus_dir("azure_activity") / name)


def _events(name: str) -> pl.DataFrame:
    return _parse(name)[1].events.with_columns(
        risk=pl.col("extra").str.json_path_match("$.risk"),
        superseded_by=pl.col("extra").str.json_path_match("$.superseded_by"),
    )


def test_every_corpus_file_is_expected():
    root = corpus_dir("azure_activity")
    found = {
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.suffix != ".md"
    }
    assert found == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts(name):
    fmt, parsed = _parse(name)
    records, events, quarantined, counted = EXPECTED[name]
    assert fmt == "azure_activity"
    assert (parsed.records, parsed.events.height, parsed.quarantine.height) == (
        records, events, quarantined)
    assert parsed.records == parsed.events.height + parsed.quarantine.height
    superseded = parsed.events["extra"].str.json_path_match("$.superseded_by")
    assert superseded.null_count() == counted
    assert parsed.events["time"].null_count() == 0
    assert (parsed.events["source"] == "azure_activity").all()
    assert (parsed.events["layer"] == "infrastructure").all()


def test_start_failure_pair_is_one_failed_action():
    events = _events("elastic_beats/activity_log.json")
    assert events.select("outcome", "superseded_by", "event_id").rows() == [
        ("unknown", events["event_id"][1], events["event_id"][0]),
        ("failure", None, events["event_id"][1]),
    ]
    final = events.row(1, named=True)
    assert final["error"] == "Failed.NotFound (ParentResourceNotFound)"
    assert (final["actor"], final["actor_type"], final["person"]) == (
        EVENT_HUB_APP, "service_account", None)
    assert final["src_ip"] == "51.191.161.11"
    assert final["object"] == "AZURELSEVENTS/ROOTMANAGESHAREDACCESSKEY"


IDENTITIES = [
    # (file, event index, actor, actor_type, person, src_ip)
    ("microsoft_docs/activity-log-schema.administrative-sample.rest.json", 0,
     "rob@contoso.com", "iam_user", "rob@contoso.com", None),
    ("elastic_beats/supporttickets_write.log", 0,
     "admin@contoso.com", "iam_user", "admin@contoso.com", "81.2.69.143"),
    # the evidence says ServicePrincipal but the token carries a UPN: the user
    ("microsoft_docs/activity-log-schema.storage-eventhub-sample.records.json", 0,
     "admin@contoso.com", "iam_user", "admin@contoso.com", "111.111.111.11"),
    ("elastic_beats/activitylogs_ipv6.log", 0, "8a4de8b5-095c-47d0-a96f-a75130c61d53",
     "service_account", None, "2603:c022:c000:301:41db:be0e:16ba:b4d7"),
    ("elastic_integrations/test-activitylogs-raw.log", 1, None, "system", None, None),
    ("elastic_integrations/test-activitylogs-mixedcase-resourceid.log", 0, None, "unknown", None,
     "81.2.69.144"),
]


@pytest.mark.parametrize(("name", "index", "actor", "kind", "person", "ip"), IDENTITIES)
def test_identities(name, index, actor, kind, person, ip):
    row = _events(name).row(index, named=True)
    assert (row["actor"], row["actor_type"], row["person"], row["src_ip"]) == (
        actor, kind, person, ip)


def test_rest_sample_mapping():
    row = _events("microsoft_docs/activity-log-schema.administrative-sample.rest.json").row(
        0, named=True)
    assert row["time"].isoformat() == "2018-01-29T20:42:31.381067+00:00"
    assert (row["action"], row["category"], row["outcome"]) == (
        "Microsoft.Network/networkSecurityGroups/write", "network", "success")
    assert (row["target"], row["object"], row["object_type"]) == (
        "subscriptions/<subscription ID>/resourcegroups/myResourceGroup", "myNSG",
        "network_security_group")
    assert row["event_id"] == "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e"
    assert row["statement"] is None  # requestbody "" is no body
    assert row["risk"] is None  # an NSG write without a body that opens a DB port


def test_risky_actions_in_corpus_are_flagged_once():
    # the only risky operation in the corpus: Event Hub listKeys (credential read); the Start
    # record that a Failure supersedes is not flagged, a lone Start is
    for name, risks in [
        ("elastic_beats/activity_log.json", [None, "medium"]),
        ("elastic_beats/activitylogs_ipv6.log", ["medium"]),
        ("elastic_integrations/test-activitylogs-raw.log", ["medium", None, None]),
    ]:
        events = _events(name)
        assert events["risk"].to_list() == risks
        assert events.filter(pl.col("risk").is_not_null())["action"].to_list() == [LIST_KEYS]


def test_request_body_string_and_object_give_one_statement():
    events = _events("elastic_integrations/test-azure-activitylogs-duration-as-string-sample.log")
    string_body, object_body = events["statement"][1], events["statement"][2]
    assert string_body.startswith('{"id":"/subscriptions/abc-123-your-sub-id/')
    assert object_body.startswith('{"id":"/subscriptions/abc-123-your-sub-id/')  # \/ unescaped
    assert '"publicNetworkAccess":"Enabled"' in string_body


def test_time_corner_cases_are_quarantined_with_reason():
    _, parsed = _parse("elastic_integrations/test-time-formats-corner-cases.log")
    assert parsed.quarantine["line"].to_list() == list(range(1, 12))
    assert set(parsed.quarantine["reason"]) == {"Activity Log record without operationName"}
