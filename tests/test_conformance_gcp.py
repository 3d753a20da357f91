"""Conformance over the public corpus: ../shared/corpus/{gcp_audit,gcp_cloudsql_pgaudit}/ and the
Cloud SQL pgAudit entry under pgaudit/ (see each PROVENANCE.md).

Every file is parsed or knowingly unsupported; every entry is an event or a quarantined row;
counts are exact. Skips cleanly when the corpus folder is absent.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from auditkit.errors import UnknownFormatError
from auditkit.sources import gcp_audit as _gcp_audit  # noqa: F401  (registers the format)
from auditkit.sources import read_file
from tests.conftest import corpus_dir

# file -> (format, records, events, quarantined, pgaudit events)
EXPECTED = {
    ("gcp_audit", "elastic_integrations/test-audit.first12lines.log"): (
        "gcp_audit", 12, 12, 0, 0),
    ("gcp_audit", "elastic_integrations/test-iamcredentials-googleapis-com.log"): (
        "gcp_audit", 1, 1, 0, 0),
    ("gcp_audit", "ibm_universal_connectors/pubsub-mysql__sample_audit_msg.DERIVED.ndjson"): (
        "gcp_audit", 2, 2, 0, 0),
    # lines 3 and 8: the fixture authors elided the payload ("..."): no methodName, quarantined
    ("gcp_audit", "panther_analysis_tests/panther_gcp_audit.ndjson"): (
        "gcp_audit", 61, 59, 2, 0),
    # Logstash's json filter dropped both @type keys: recognised as pgAudit by its fields
    ("gcp_cloudsql_pgaudit", "ibm_universal_connectors/pubsub-postgresql__a.log"): (
        "gcp_audit", 1, 1, 0, 1),
    # 11 pgAudit entries + 9 Cloud SQL server log lines (textPayload), quarantined with a reason
    ("gcp_cloudsql_pgaudit", "ibm_universal_connectors/pubsub-postgresql__logs_example.DERIVED.ndjson"): (  # noqa: E501
        "gcp_audit", 20, 11, 9, 11),
    ("pgaudit", "gcp_cloudsql_pgaudit_data_access_entry.json"): ("gcp_audit", 1, 1, 0, 1),
}
# Logstash rubydebug dumps (not JSON) and the Panther index TSV: not logs this source reads
UNSUPPORTED = {
    ("gcp_audit", "ibm_universal_connectors/pubsub-mysql__sample_audit_msg.rubydebug.log"),
    ("gcp_audit", "panther_analysis_tests/panther_gcp_audit.index.tsv"),
    ("gcp_cloudsql_pgaudit", "ibm_universal_connectors/pubsub-postgresql__logs_example.rubydebug.log"),  # noqa: E501
}
PANTHER = ("gcp_audit", "panther_analysis_tests/panther_gcp_audit.ndjson")
PG_EXAMPLE = (
    "gcp_cloudsql_pgaudit",
    "ibm_universal_connectors/pubsub-postgresql__logs_example.DERIVED.ndjson",
)


def _parse(source: str, name: str):
    return read_file(corpus_dir(source) / name)


def _events(key) -> pl.DataFrame:
    return _parse(*key)[1].events.with_columns(
        line=pl.col("raw_ref").str.extract(r":(\d+)$").cast(pl.Int64),
        risk=pl.col("extra").str.json_path_match("$.risk"),
    )


@pytest.mark.parametrize(("key", "expected"), sorted(EXPECTED.items()), ids=lambda v: str(v))
def test_counts(key, expected):
    name, parsed = _parse(*key)
    got = (name, parsed.records, parsed.events.height, parsed.quarantine.height,
           parsed.events.filter(pl.col("source") == "pgaudit").height)
    assert got == expected
    assert parsed.events.height + parsed.quarantine.height == parsed.records
    assert parsed.events["time"].null_count() == 0
    assert parsed.events["action"].null_count() == 0


@pytest.mark.parametrize("key", sorted(UNSUPPORTED), ids=str)
def test_unsupported_files_are_not_claimed(key):
    with pytest.raises(UnknownFormatError, match="not recognised"):
        _parse(*key)


@pytest.mark.parametrize("source", ["gcp_audit", "gcp_cloudsql_pgaudit"])
def test_every_corpus_file_is_covered(source):
    folder = corpus_dir(source)
    files = {(source, str(p.relative_to(folder))) for p in folder.rglob("*")
             if p.is_file() and p.name != "PROVENANCE.md"}
    assert files == {k for k in EXPECTED | dict.fromkeys(UNSUPPORTED) if k[0] == source}


# (file, line) -> (actor, actor_type, person, outcome)
IDENTITIES = [
    (PANTHER, 28, ("terraform@platform.iam.gserviceaccount.com", "service_account", None,
                   "success")),
    (PANTHER, 10, ("user@example.com", "service_account", None, "success")),  # serviceAccount:
    (PANTHER, 31, ("example_principal_subject", "unknown", None, "success")),
    (PANTHER, 42, (None, "unknown", None, "success")),  # authenticationInfo {}
    (PANTHER, 2, ("user1@serviceaccount.gcp.com", "iam_user", "user1@serviceaccount.gcp.com",
                  "failure")),  # VPC-SC policy denial
    (PANTHER, 5, ("some.user@company.com", "iam_user", "some.user@company.com", "failure")),
    (("gcp_audit", "elastic_integrations/test-audit.first12lines.log"), 4,
     ("xxx@xxx.xxx", "iam_user", None, "failure")),  # redacted e-mail: no person
    (("gcp_audit", "elastic_integrations/test-audit.first12lines.log"), 10,
     ("system:anonymous", "system", None, "success")),
    (("gcp_audit", "elastic_integrations/test-iamcredentials-googleapis-com.log"), 1,
     ("principal://iam.googleapis.com/projects/project-id/locations/global/"
      "workloadIdentityPools/...", "service_account", None, "success")),
]


@pytest.mark.parametrize(("key", "line", "expected"), IDENTITIES,
                         ids=[f"{k[1].split('/')[-1]}:{n}" for k, n, _ in IDENTITIES])
def test_identities(key, line, expected):
    row = _events(key).filter(pl.col("line") == line).row(0, named=True)
    assert (row["actor"], row["actor_type"], row["person"], row["outcome"]) == expected


def test_panther_details():
    events = _events(PANTHER)
    policy = events.filter(pl.col("line") == 2).row(0, named=True)
    assert json.loads(policy["extra"])["log_type"] == "policy"
    assert policy["error"].startswith("7: Request is prohibited by organization's policy")
    assert policy["src_ip"] == "1.2.3.4" and policy["category"] == "other"
    assert events["time"].min().year == 2020 and events["layer"].unique().to_list() == [
        "infrastructure"]
    # Panther fixtures reuse insertIds across tests (9 ids for 23 entries): event_id stays native
    assert events["event_id"].n_unique() == 45


# the risky actions present in the corpus: (line, action, risk)
RISKY = [
    (18, "storage.setIamPermissions", "high"),  # bucket opened to allUsers
    (21, "storage.setIamPermissions", "high"),
    (40, "UpdateCryptoKeyVersion", "high"),  # KMS key version DISABLED
    (43, "google.iam.admin.v1.CreateServiceAccountKey", "medium"),
]


def test_risky_actions_flagged():
    events = _events(PANTHER)
    flagged = events.filter(pl.col("risk").is_not_null()).select("line", "action", "risk")
    assert flagged.rows() == RISKY
    # SetIamPolicy without a Cloud SQL role is a permission change, not flagged
    set_policy = events.filter(pl.col("action") == "SetIamPolicy")
    assert set_policy.height == 5 and set_policy["risk"].null_count() == 5
    assert set(set_policy["category"]) == {"permission"}


def test_cloud_sql_pgaudit_statements():
    events = _events(PG_EXAMPLE).filter(pl.col("source") == "pgaudit")
    assert events["statement_id"].to_list() == [f"{i}.1" for i in range(1, 12)]
    assert set(events["session_id"]) == {"1150"} and set(events["actor"]) == {"postgres"}
    assert set(events["target"]) == {"my-gcp-project:postgres-test"}
    assert events["category"].value_counts(sort=True).rows() == [("write", 7), ("read", 4)]
    assert events["action"].to_list()[:3] == ["SELECT", "INSERT", "INSERT"]
    first = events.row(0, named=True)
    assert first["statement"].startswith('SELECT d.datname as "Name",')
    assert first["layer"] == "workflow" and first["database"] == "postgres"
    extra = json.loads(first["extra"])
    assert (extra["audit_class"], extra["audit_type"], extra["parameter"]) == (
        "READ", "SESSION", "<not logged>")
    quarantine = _parse(*PG_EXAMPLE)[1].quarantine
    assert quarantine["line"].to_list() == [1, 2, 3, 4, 5, 6, 7, 9, 10]
    assert quarantine["reason"].str.contains("textPayload").all()


def test_cloud_sql_mysql_entries():
    key = ("gcp_audit", "ibm_universal_connectors/pubsub-mysql__sample_audit_msg.DERIVED.ndjson")
    rows = _events(key).select(
        "layer", "source", "category", "action", "outcome", "error", "actor", "src_ip", "object",
        "target",
    ).rows()
    assert rows == [
        ("workflow", "gcp_audit", None, "SELECT", "success", None, "root", "136.226.255.2", None,
         "my-gcp-project:new-shefali-mysql8"),
        ("workflow", "gcp_audit", None, "DROP TABLE", "failure", "1051", "root",
         "106.220.176.187", "testuc.STU", "my-gcp-project:new-shefali-mysql8"),
    ]


@pytest.mark.parametrize("key", sorted(k for k in EXPECTED if k != PANTHER), ids=str)
def test_fast_envelope_decoding_matches_path_reading(key):
    """The batch decoder and the path-by-path reader give the same fields (Panther's elided
    ``"..."`` objects send that file down the path reader, covered by the tests above)."""
    text = (corpus_dir(key[0]) / key[1]).read_text()
    entries, _ = _gcp_audit.split_entries(text)
    fast = _gcp_audit.decode_envelope(entries)
    slow = _gcp_audit.flatten_json(entries)
    assert fast.select(slow.columns).equals(slow)
