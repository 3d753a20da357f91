"""Conformance of the cloudtrail source over the public corpus (``../shared/corpus/cloudtrail``).

Per file: exact records / events / quarantined counts; a few named records with their identity;
and the risky actions the corpus contains, each asserted flagged by the catalogue.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest

from auditkit.sources import cloudtrail, read_file
from tests.conftest import corpus_dir

GUIDE = "aws_docs_examples/cloudtrail-user-guide__"
SIGN_IN = GUIDE + "cloudtrail-event-reference-aws-console-sign-in-events__"
LOG_EXAMPLES = GUIDE + "cloudtrail-log-file-examples__"
# path under the corpus folder, records, events, quarantined
COUNTS = [
    ("aws_docs_examples/aws-cli-examples__cloudtrail__lookup-events.output.json", 1, 1, 0),
    (SIGN_IN + "block01.json", 1, 1, 0),
    (SIGN_IN + "block02.json", 1, 1, 0),
    (SIGN_IN + "block03.json", 1, 1, 0),
    (SIGN_IN + "block04.json", 1, 1, 0),
    (SIGN_IN + "block05.json", 1, 1, 0),
    (SIGN_IN + "block06.json", 1, 1, 0),
    (SIGN_IN + "block07.json", 1, 1, 0),
    (SIGN_IN + "block08.json", 1, 1, 0),
    (SIGN_IN + "block09.json", 1, 1, 0),
    (SIGN_IN + "block10.json", 1, 1, 0),
    ("aws_docs_examples/cloudtrail-user-guide__cloudtrail-event-reference__block01.json", 1, 0, 1),
    (LOG_EXAMPLES + "block01.json", 1, 1, 0),
    (LOG_EXAMPLES + "block02.json", 1, 1, 0),
    (LOG_EXAMPLES + "block03.json", 1, 1, 0),
    (LOG_EXAMPLES + "block04.json", 1, 1, 0),
    (LOG_EXAMPLES + "block05.json", 1, 1, 0),
    (LOG_EXAMPLES + "block06.json", 1, 1, 0),
    (LOG_EXAMPLES + "block07.json", 2, 0, 2),
    (GUIDE + "non-api-aws-service-events__block01.json", 1, 1, 0),
    ("aws_docs_examples/cloudtrail-user-guide__view-insights-events-cli__block01.json", 2, 0, 2),
    ("aws_docs_examples/rds-user-guide__USER_PerfInsights.CloudTrail__block01.json", 1, 1, 0),
    ("aws_docs_examples/rds-user-guide__logging-using-cloudtrail__block01.json", 1, 1, 0),
    ("elastic_integrations/test-assume-role-email-session-json.log", 1, 1, 0),
    ("elastic_integrations/test-cloudtrail-digest-json.log", 0, 0, 0),
    ("elastic_integrations/test-console-login-json.log", 3, 3, 0),
    ("elastic_integrations/test-create-db-instance-json.log", 1, 1, 0),
    ("elastic_integrations/test-delete-db-instance-json.log", 1, 1, 0),
    ("elastic_integrations/test-modify-db-cluster-snapshot-attribute-json.log", 1, 1, 0),
    ("elastic_integrations/test-modify-db-instance-json.log", 1, 1, 0),
    ("elastic_integrations/test-modify-db-snapshot-attributte-json.log", 1, 1, 0),
    ("elastic_integrations/test-restore-db-instnace-from-s3-json.log", 1, 1, 0),
    ("elastic_integrations/test-restore-db-instnace-from-snapshot-json.log", 1, 1, 0),
    ("elastic_integrations/test-us-gov-arn.log", 1, 1, 0),
    ("elastic_integrations/test-user-authentication.log", 1, 1, 0),
    ("otrf_security_datasets/ec2_proxy_s3_exfiltration_2020-09-14011940.json", 103, 103, 0),
    ("panther_analysis_tests/panther_cloudtrail_db_related.ndjson", 128, 128, 0),
    ("panther_analysis_tests/panther_cloudtrail_other.ndjson", 234, 233, 1),
    ("stratus_red_team/aws.credential-access.ec2-get-password-data.json", 34, 34, 0),
    ("stratus_red_team/aws.credential-access.ec2-steal-instance-credentials.json", 45, 45, 0),
    ("stratus_red_team/aws.credential-access.secretsmanager-batch-retrieve-secrets.json", 5, 5, 0),
    ("stratus_red_team/aws.credential-access.secretsmanager-retrieve-secrets.json", 21, 21, 0),
    ("stratus_red_team/aws.credential-access.ssm-retrieve-securestring-parameters.json", 10, 10, 0),
    ("stratus_red_team/aws.defense-evasion.cloudtrail-delete.json", 1, 1, 0),
    ("stratus_red_team/aws.defense-evasion.cloudtrail-event-selectors.json", 1, 1, 0),
    ("stratus_red_team/aws.defense-evasion.cloudtrail-stop.json", 1, 1, 0),
    ("stratus_red_team/aws.defense-evasion.dns-delete-logs.json", 1, 1, 0),
    ("stratus_red_team/aws.defense-evasion.organizations-leave.json", 3, 3, 0),
    ("stratus_red_team/aws.defense-evasion.vpc-remove-flow-logs.json", 1, 1, 0),
    ("stratus_red_team/aws.discovery.ec2-download-user-data.json", 19, 19, 0),
    ("stratus_red_team/aws.execution.ec2-launch-unusual-instances.json", 3, 3, 0),
    ("stratus_red_team/aws.execution.ec2-user-data.json", 35, 35, 0),
    ("stratus_red_team/aws.execution.ssm-send-command.json", 56, 56, 0),
    ("stratus_red_team/aws.execution.ssm-start-session.json", 29, 29, 0),
    ("stratus_red_team/aws.exfiltration.ec2-security-group-open-port-22-ingress.json", 1, 1, 0),
    ("stratus_red_team/aws.exfiltration.ec2-share-ami.json", 1, 1, 0),
    ("stratus_red_team/aws.exfiltration.ec2-share-ebs-snapshot.json", 1, 1, 0),
    ("stratus_red_team/aws.exfiltration.rds-share-snapshot.json", 1, 1, 0),
    ("stratus_red_team/aws.impact.bedrock-invoke-model.json", 15, 15, 0),
    ("stratus_red_team/aws.initial-access.console-login-without-mfa.json", 1, 1, 0),
    ("stratus_red_team/aws.lateral-movement.ec2-instance-connect.json", 3, 3, 0),
    ("stratus_red_team/aws.lateral-movement.ec2-serial-console-send-ssh-public-key.json", 4, 4, 0),
    ("stratus_red_team/aws.persistence.iam-backdoor-role.json", 1, 1, 0),
    ("stratus_red_team/aws.persistence.iam-backdoor-user.json", 1, 1, 0),
    ("stratus_red_team/aws.persistence.iam-create-admin-user.json", 3, 3, 0),
    ("stratus_red_team/aws.persistence.iam-create-backdoor-role.json", 2, 2, 0),
    ("stratus_red_team/aws.persistence.iam-create-user-login-profile.json", 3, 3, 0),
    ("stratus_red_team/aws.persistence.lambda-backdoor-function.json", 1, 1, 0),
    ("stratus_red_team/aws.persistence.lambda-layer-extension.json", 1, 1, 0),
    ("stratus_red_team/aws.persistence.lambda-overwrite-code.json", 1, 1, 0),
    ("stratus_red_team/aws.persistence.rolesanywhere-create-trust-anchor.json", 2, 2, 0),
    ("stratus_red_team/aws.persistence.sts-federation-token.json", 2, 2, 0),
    ("stratus_red_team/aws.privilege-escalation.iam-update-user-login-profile.json", 1, 1, 0),
]
# quarantined records: Insights events carry no eventName (3 doc files, 5 records); one Panther
# fixture has eventTime "redacted". The digest file is recognised: 0 records, a note.
QUARANTINE_REASONS = {
    GUIDE + "cloudtrail-event-reference__block01.json":
        {"CloudTrail Insights event (no eventName), not an API call"},
    "panther_analysis_tests/panther_cloudtrail_other.ndjson": {"unparseable eventTime"},
}
# file, raw_ref position, time (UTC), action, outcome, actor, actor_type, person
NAMED = [
    ("elastic_integrations/test-console-login-json.log", 1, "2014-07-16T15:49:27",
     "ConsoleLogin", "success", "arn:aws:iam::111122223333:user/JohnDoe", "iam_user", "JohnDoe"),
    ("elastic_integrations/test-console-login-json.log", 2, "2014-07-08T17:35:27",
     "ConsoleLogin", "failure", "arn:aws:iam::111122223333:user/JaneDoe", "iam_user", "JaneDoe"),
    ("elastic_integrations/test-assume-role-email-session-json.log", 1, "2019-10-02T22:12:29",
     "AssumeRole", "success",
     "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_SecurityAudit_8df5ccd37b/"
     "firstname.lastname@example.com", "assumed_role", "firstname.lastname@example.com"),
    ("elastic_integrations/test-user-authentication.log", 1, "2025-09-22T12:29:21",
     "UserAuthentication", "success", "redacted", "iam_user", "redacted@example.com"),
    ("elastic_integrations/test-us-gov-arn.log", 1, "2026-01-05T18:46:26",
     "UpdateInstanceInformation", "success",
     "arn:aws-us-gov:sts::111111111111:assumed-role/ExampleRole/i-example1234567890",
     "assumed_role", None),
    ("aws_docs_examples/aws-cli-examples__cloudtrail__lookup-events.output.json", 1,
     "2016-01-26T21:42:12", "ConsoleLogin", "success",
     "arn:aws:sts::123456789012:assumed-role/my-role/my-session-name", "assumed_role", None),
    (GUIDE + "non-api-aws-service-events__block01.json", 1,
     "2019-06-02T00:06:08", "RotateKey", "success", "AWS Internal", "system", None),
    ("otrf_security_datasets/ec2_proxy_s3_exfiltration_2020-09-14011940.json", 1,
     "2020-09-14T00:44:23", "DescribeInstanceTypes", "success",
     "arn:aws:iam::123456789123:user/pedro", "iam_user", "pedro"),
    ("stratus_red_team/aws.persistence.sts-federation-token.json", 2, "2024-11-30T08:43:18",
     "GetCallerIdentity", "success", "arn:aws:sts::742491224508:federated-user/stratus_red_team",
     "assumed_role", None),
    ("stratus_red_team/aws.credential-access.ec2-get-password-data.json", 1,
     "2024-07-30T21:31:21", "GetPasswordData", "failure",
     "arn:aws:sts::457448411975:assumed-role/stratus-red-team-ec2-get-password-data-role/"
     "aws-go-sdk-1722375070115152000", "assumed_role", None),
]
# file, record position, action, risks flagged (section 4.1 risky actions in the corpus)
RISKY = [
    ("stratus_red_team/aws.exfiltration.rds-share-snapshot.json", 1,
     "ModifyDBSnapshotAttribute", {"RDS snapshot shared with another account"}),
    ("elastic_integrations/test-modify-db-cluster-snapshot-attribute-json.log", 1,
     "ModifyDBClusterSnapshotAttribute", {"RDS cluster snapshot shared with another account"}),
    ("stratus_red_team/aws.exfiltration.ec2-share-ebs-snapshot.json", 1,
     "ModifySnapshotAttribute", {"EBS snapshot shared with another account or made public"}),
    ("stratus_red_team/aws.defense-evasion.cloudtrail-stop.json", 1, "StopLogging",
     {"CloudTrail logging stopped"}),
    ("stratus_red_team/aws.defense-evasion.cloudtrail-delete.json", 1, "DeleteTrail",
     {"CloudTrail trail deleted"}),
    ("stratus_red_team/aws.defense-evasion.cloudtrail-event-selectors.json", 1,
     "PutEventSelectors",
     {"CloudTrail event selectors changed (events may no longer be recorded)"}),
    # anonymised 0.0.0.0/0: any address with prefix length 0 is the whole internet
    ("stratus_red_team/aws.exfiltration.ec2-security-group-open-port-22-ingress.json", 1,
     "AuthorizeSecurityGroupIngress", {"security group opened to the internet"}),
    ("elastic_integrations/test-modify-db-instance-json.log", 1, "ModifyDBInstance",
     {"database made publicly accessible"}),
    ("elastic_integrations/test-delete-db-instance-json.log", 1, "DeleteDBInstance",
     {"RDS instance deleted", "deleted without a final snapshot",
      "automated backups deleted with the instance"}),
    (LOG_EXAMPLES + "block06.json", 1,
     "UpdateTrail", {"CloudTrail trail settings changed"}),
    ("panther_analysis_tests/panther_cloudtrail_db_related.ndjson", 14, "StopLogging",
     {"CloudTrail logging stopped"}),
    ("panther_analysis_tests/panther_cloudtrail_db_related.ndjson", 28,
     "AuthorizeSecurityGroupIngress", {"security group opened to the internet"}),
    ("panther_analysis_tests/panther_cloudtrail_db_related.ndjson", 36, "DisableKey",
     {"KMS key disabled (data encrypted with it becomes unreadable)"}),
    ("panther_analysis_tests/panther_cloudtrail_db_related.ndjson", 37, "ScheduleKeyDeletion",
     {"KMS key scheduled for deletion"}),
    ("panther_analysis_tests/panther_cloudtrail_db_related.ndjson", 44, "StopActivityStream",
     {"RDS Database Activity Stream stopped"}),
    ("panther_analysis_tests/panther_cloudtrail_db_related.ndjson", 47,
     "DeleteDBInstanceAutomatedBackup", {"RDS automated backups deleted"}),
    ("panther_analysis_tests/panther_cloudtrail_db_related.ndjson", 55, "ModifyDBInstance",
     {"deletion protection turned off"}),
    ("panther_analysis_tests/panther_cloudtrail_db_related.ndjson", 56, "ModifyDBCluster",
     {"deletion protection turned off", "automated backups disabled"}),
    ("panther_analysis_tests/panther_cloudtrail_db_related.ndjson", 67, "DeleteDBCluster",
     {"RDS cluster deleted"}),
    ("panther_analysis_tests/panther_cloudtrail_db_related.ndjson", 88, "ModifyDBInstance",
     {"database master password reset"}),
    ("panther_analysis_tests/panther_cloudtrail_db_related.ndjson", 95,
     "AuthorizeDBSecurityGroupIngress", {"DB security group opened to the internet"}),
    ("panther_analysis_tests/panther_cloudtrail_db_related.ndjson", 101, "DeleteDBSnapshot",
     {"RDS snapshot deleted"}),
    ("panther_analysis_tests/panther_cloudtrail_db_related.ndjson", 109, "StartExportTask",
     {"RDS snapshot exported to an S3 bucket"}),
    ("panther_analysis_tests/panther_cloudtrail_db_related.ndjson", 118, "DeleteTrail",
     {"CloudTrail trail deleted"}),
]
# not risky on purpose: un-sharing (valuesToRemove); publiclyAccessible only in the response
NOT_RISKY = [
    ("elastic_integrations/test-modify-db-snapshot-attributte-json.log", 1),
    ("elastic_integrations/test-create-db-instance-json.log", 1),
]


def parsed(relative: str):
    path = corpus_dir("cloudtrail") / relative
    return read_file(path, display=relative)


@pytest.mark.parametrize(("relative", "records", "events", "quarantined"), COUNTS,
                         ids=[c[0].split("/")[-1] for c in COUNTS])
def test_counts(relative: str, records: int, events: int, quarantined: int) -> None:
    name, result = parsed(relative)
    assert name == "cloudtrail"  # detected by content, not forced
    assert (result.records, result.events.height, result.quarantine.height) == (
        records, events, quarantined)
    assert result.records == result.events.height + result.quarantine.height
    frame = result.events
    assert frame.get_column("time").null_count() == 0
    assert set(frame.get_column("layer")) <= {"infrastructure"}
    assert frame.get_column("raw_ref").n_unique() == frame.height
    if relative in QUARANTINE_REASONS:
        assert set(result.quarantine.get_column("reason")) == QUARANTINE_REASONS[relative]


def test_every_corpus_file_is_covered() -> None:
    folder = corpus_dir("cloudtrail")
    listed = {c[0] for c in COUNTS}
    present = {
        str(p.relative_to(folder)) for p in folder.glob("*/*")
        if p.suffix not in {".md", ".tsv"} and not p.name.endswith(".csv")
    }
    assert present == listed


def test_digest_file_is_recognised_not_events() -> None:
    name, result = parsed("elastic_integrations/test-cloudtrail-digest-json.log")
    assert (name, result.records) == ("cloudtrail", 0)
    assert result.notes == [cloudtrail.DIGEST_NOTE]


def test_hostile_csv_export_is_not_claimed() -> None:
    path = corpus_dir("cloudtrail") / "otrf_security_datasets/AWS_S3_HoneyBucketLogs.csv"
    assert not cloudtrail.detect(path.read_bytes()[:65536])


def test_identity_counts_match_provenance() -> None:
    relative = "otrf_security_datasets/ec2_proxy_s3_exfiltration_2020-09-14011940.json"
    events = parsed(relative)[1].events
    counts = dict(events.group_by("actor_type").len().iter_rows())
    assert counts == {"iam_user": 87, "assumed_role": 11, "system": 5}
    assert events.filter(pl.col("actor_type") == "system").get_column("src_ip").unique()[0] == (
        "ec2.amazonaws.com")
    failures = parsed("stratus_red_team/aws.credential-access.ec2-get-password-data.json")[1]
    assert failures.events.get_column("outcome").value_counts().sort("outcome").rows() == [
        ("failure", 32), ("success", 2)]


def row_at(relative: str, position: int) -> dict:
    events = parsed(relative)[1].events
    return events.filter(pl.col("raw_ref") == f"{relative}:{position}").row(0, named=True)


@pytest.mark.parametrize(
    ("relative", "position", "time", "action", "outcome", "actor", "actor_type", "person"), NAMED
)
def test_named_records(relative, position, time, action, outcome, actor, actor_type, person):
    row = row_at(relative, position)
    expected_time = datetime.fromisoformat(time).replace(tzinfo=UTC)
    assert (row["time"], row["action"], row["outcome"]) == (expected_time, action, outcome)
    assert (row["actor"], row["actor_type"], row["person"]) == (actor, actor_type, person)


@pytest.mark.parametrize(("relative", "position", "action", "risks"), RISKY)
def test_risky_actions_in_corpus_are_flagged(relative, position, action, risks) -> None:
    row = row_at(relative, position)
    assert row["action"] == action
    extra = json.loads(row["extra"])
    assert extra["risk"] in ("high", "medium")
    assert set(extra["risks"]) == risks


@pytest.mark.parametrize(("relative", "position"), NOT_RISKY)
def test_benign_db_actions_not_flagged(relative: str, position: int) -> None:
    assert "risk" not in json.loads(row_at(relative, position)["extra"])


def test_database_objects_identified() -> None:
    row = row_at("stratus_red_team/aws.exfiltration.rds-share-snapshot.json", 1)
    assert (row["object"], row["object_type"], row["category"]) == (
        "exfiltration", "snapshot", "backup")
    row = row_at("elastic_integrations/test-delete-db-instance-json.log", 1)
    assert (row["object_type"], row["category"]) == ("instance", "provisioning")
    assert row["target"] == "000000000/us-east-1/test-cloudtrail-event-instance-31611-restored"
