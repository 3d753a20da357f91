"""Anomaly detectors on tiny frames: each fires on its case and stays quiet on a normal one."""

from __future__ import annotations

import datetime as dt
import itertools

import polars as pl
import pytest

from auditkit import anomalies
from auditkit.enrich import enrich
from auditkit.findings import FINDING_SCHEMA, find
from auditkit.schema import EVENT_SCHEMA

UTC = dt.UTC
_ids = itertools.count()


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """2026-11-<day> (02 is a Monday) at hour:minute UTC."""
    return dt.datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


def event(time: dt.datetime, actor: str = "alice", **fields) -> dict:
    return {"time": time, "actor": actor, "source": "pgaudit", "layer": "workflow",
            "outcome": "success", "actor_type": "db_user", "src_ip": "10.0.0.1",
            "client_app": "psql", "database": "shop", "session_id": f"s-{actor}",
            "event_id": f"e{next(_ids)}", **fields}


def frame(rows: list[dict]) -> pl.DataFrame:
    df = pl.DataFrame(rows, infer_schema_length=None)
    df = df.select((pl.col(c) if c in df.columns else pl.lit(None)).cast(t).alias(c)
                   for c, t in EVENT_SCHEMA.items())
    return enrich(df)


def run(rows: list[dict], name: str, settings: dict | None = None, **kw) -> pl.DataFrame:
    found = find(frame(rows), settings, only=[name], **kw)
    assert found.schema == pl.Schema(FINDING_SCHEMA)
    return found


def workdays(actor: str = "alice", statement: str = "SELECT id, name FROM public.customers",
             days=(2, 3, 4), hours=(9, 11, 15), **fields) -> list[dict]:
    """Normal office activity: a few reads per working day."""
    return [event(at(d, h, 5), actor, statement=statement, category="read", **fields)
            for d in days for h in hours]


# ---------------------------------------------------------------------------- helpers


def test_thousands_and_rows_text():
    df = pl.DataFrame({"n": [1, 999, 48210, 1234567]})
    assert df.select(anomalies.thousands(pl.col("n")))["n"].to_list() == [
        "1", "999", "48,210", "1,234,567"]
    texts = df.select(anomalies.rows_text(pl.col("n")).alias("t"))["t"].to_list()
    assert texts[:2] == ["1 row", "999 rows"]


# ---------------------------------------------------------------------------- first_seen


def test_first_seen_sensitive_column_at_night_from_new_address_is_high():
    rows = workdays() + [event(at(5, 2, 13), statement="SELECT name, ssn FROM public.customers",
                               category="read", src_ip="198.51.100.7", rows=48210)]
    found = run(rows, "first_seen")
    assert found.height == 1
    row = found.row(0, named=True)
    assert row["severity"] == "high"
    for fragment in ("alice read public.customers.ssn for the first time", "02:13 UTC",
                     "48,210 rows", "ssn", "usual hours (09–10, 11–12, 15–16 UTC)",
                     "198.51.100.7, an address never seen for alice"):
        assert fragment in row["reason"]


def test_first_seen_does_not_fire_on_what_was_seen_before():
    rows = workdays(days=(2, 3, 4, 5))
    assert run(rows, "first_seen").height == 0


# ---------------------------------------------------------------------------- exports


def test_export_with_copy_is_explained():
    rows = workdays(actor="dave") + [event(
        at(5, 2, 14), "dave", statement="COPY (SELECT card_number FROM payments.cards) TO STDOUT",
        category="export", action="COPY", rows=48210, object="payments.cards",
        src_ip="198.51.100.77")]
    found = run(rows, "exports")
    assert found.height == 1
    row = found.row(0, named=True)
    assert row["severity"] == "high" and row["object"] == "payments.cards"
    assert row["reason"].startswith(
        "dave exported 48,210 rows of payments.cards at 02:14 UTC on 2026-11-05 "
        "with COPY TO STDOUT")
    assert "card_number" in row["reason"] and "never seen for dave" in row["reason"]


def test_small_reads_are_not_exports():
    rows = workdays() + [event(at(5, 10), statement="SELECT id FROM public.orders", rows=5,
                               category="read")]
    assert run(rows, "exports").height == 0


# ---------------------------------------------------------------------------- volume


def _days_of(counts: dict[int, int], actor: str = "bob") -> list[dict]:
    return [event(at(day, 10, i // 60, i % 60), actor, statement="SELECT id FROM public.orders",
                  category="read") for day, n in counts.items() for i in range(n)]


def test_volume_far_above_own_days():
    found = run(_days_of({2: 20, 3: 22, 4: 18, 5: 21, 6: 400}), "volume")
    assert found.height == 1
    reason = found["reason"][0]
    assert reason.startswith("bob ran 400 statements on 2026-11-06")
    assert "median of bob's days (21" in reason and "robust z-score" in reason


def test_volume_severity_grows_with_the_ratio():
    medium = run(_days_of({2: 20, 3: 22, 4: 18, 5: 21, 6: 150}), "volume")
    high = run(_days_of({2: 20, 3: 22, 4: 18, 5: 21, 6: 400}), "volume")
    assert (medium["severity"].to_list(), high["severity"].to_list()) == (["medium"], ["high"])


def test_volume_normal_day_does_not_fire():
    assert run(_days_of({2: 20, 3: 22, 4: 18, 5: 21, 6: 25}), "volume").height == 0


# ---------------------------------------------------------------------------- off_hours


def test_off_hours_outside_configured_and_own_hours():
    rows = workdays() + [event(at(5, 2, 30), statement="SELECT id FROM public.orders",
                               category="read")]
    found = run(rows, "off_hours")
    assert found.height == 1
    row = found.row(0, named=True)
    assert row["severity"] == "medium"
    assert "alice was active at 02:30 UTC on Thu 2026-11-05" in row["reason"]
    assert "outside working hours 08–19 UTC Mon–Fri" in row["reason"]
    assert "usual hours (09–10, 11–12, 15–16 UTC)" in row["reason"]


def test_off_hours_respects_the_accounts_own_pattern_and_settings():
    # a nightly job: always at 02:00, so 02:00 is its usual hour
    rows = workdays(actor="etl", hours=(2,), days=(2, 3, 4, 5))
    assert run(rows, "off_hours").height == 0
    # and configured hours that include the night make it quiet too
    night = workdays() + [event(at(5, 2, 30), statement="SELECT 1", category="read")]
    wide = {"working_hours": {"start": 0, "end": 24}}
    assert run(night, "off_hours", wide).height == 0


# ---------------------------------------------------------------------------- privilege


def test_superuser_grant_is_high_and_nosuperuser_is_not():
    rows = [
        event(at(3, 10), "carol", statement="ALTER ROLE support_3 SUPERUSER", category="permission",
              action="ALTER ROLE", object="role:support_3"),
        event(at(3, 11), "carol", statement="ALTER ROLE support_3 NOSUPERUSER",
              category="permission", action="ALTER ROLE", object="role:support_3"),
    ]
    found = run(rows, "privilege").sort("time")
    assert found["severity"].to_list() == ["high", "low"]
    assert "carol gave superuser-level attributes (SUPERUSER)" in found["reason"][0]
    assert "changed role support_3" in found["reason"][1]


def test_sensitive_column_grant_is_high():
    rows = [event(at(4, 15, 36), "carol", category="permission", action="GRANT",
                  statement="GRANT SELECT (id, card_number) ON payments.cards TO dave",
                  object="payments.cards")]
    row = run(rows, "privilege").row(0, named=True)
    assert row["severity"] == "high"
    assert "granted access to sensitive columns (card_number) of payments.cards" in row["reason"]


# ---------------------------------------------------------------------------- failed_logins


def _logins(failures: int, success: bool) -> list[dict]:
    rows = [event(at(5, 3, 41, 10 * i), "carol", source="postgres", category="auth",
                  action="LOGIN", outcome="failure", src_ip="203.0.113.50",
                  error="password authentication failed") for i in range(failures)]
    if success:
        rows.append(event(at(5, 3, 42, 50), "carol", source="postgres", category="auth",
                          action="LOGIN", src_ip="203.0.113.50"))
    return rows


def test_failed_login_burst_then_success_is_high():
    found = run(_logins(6, True), "failed_logins")
    row = found.row(0, named=True)
    assert row["severity"] == "high" and len(row["event_ids"]) == 7
    assert row["reason"] == (
        "6 failed logins for carol from 203.0.113.50 between 03:41 UTC and 03:41 UTC on "
        "2026-11-05, then a successful login as carol from the same address at 03:42 UTC.")


def test_a_few_failed_logins_are_not_a_burst():
    assert run(_logins(2, True), "failed_logins").height == 0
    assert run(_logins(6, False), "failed_logins")["severity"].to_list() == ["medium"]


# ---------------------------------------------------------------------------- schema_change


def test_unapproved_ddl_outside_hours():
    rows = [event(at(7, 23), "bob", statement="CREATE TABLE public.t (id int)", category="schema",
                  action="CREATE TABLE", object="public.t")]
    row = run(rows, "schema_change").row(0, named=True)
    assert row["severity"] == "medium"
    assert ("bob ran CREATE TABLE on public.t at 23:00 UTC on 2026-11-07 outside working hours "
            "08–19 UTC Mon–Fri and with no approval found") in row["reason"]


def test_approved_ddl_in_hours_does_not_fire():
    rows = [
        event(at(3, 10, 31), "bob", category="schema", action="CREATE TABLE", object="public.t",
              statement="/* CHG-1 Approved-by: carol */ CREATE TABLE public.t (id int)"),
        event(at(3, 10, 32), "bob", category="schema", action="CREATE INDEX", object="public.i",
              statement="CREATE INDEX i ON public.t (id)"),
    ]
    assert run(rows, "schema_change").height == 0


# ---------------------------------------------------------------------------- audit_tampering


def test_switching_pgaudit_off_is_high_even_when_refused():
    rows = [event(at(4, 13, 13), "bob", source="postgres", statement="SET pgaudit.log = 'none';",
                  category="audit_config", action="SET", outcome="failure",
                  error='permission denied to set parameter "pgaudit.log"')]
    row = run(rows, "audit_tampering").row(0, named=True)
    assert row["severity"] == "high"
    assert row["reason"].startswith(
        "bob tried to switch auditing off with “SET pgaudit.log = 'none'” at 13:13 UTC")


def test_ordinary_set_is_not_tampering():
    rows = [event(at(4, 13), statement="SET application_name = 'x'", category="config",
                  action="SET"),
            event(at(4, 14), statement="ALTER DATABASE billing SET pgaudit.log_rows = on",
                  category="config", action="ALTER DATABASE")]
    found = run(rows, "audit_tampering")
    # raising the audit level is a change worth noting, not a switch-off
    assert found["severity"].to_list() == ["medium"]


# ---------------------------------------------------------------------------- cloud_risk


def test_catalogued_cloud_risk():
    extra = '{"risk":"high","risks":["CloudTrail logging stopped"]}'
    rows = [event(at(6, 2, 33), "arn:aws:sts::1:assumed-role/R/dave", source="cloudtrail",
                  layer="infrastructure", category="audit_config", action="StopLogging",
                  object="management-events", outcome="failure", error="AccessDenied: no",
                  extra=extra, person="dave@example.com"),
            event(at(6, 2, 34), source="cloudtrail", layer="infrastructure", category="other",
                  action="DescribeDBInstances", extra='{"read_only":true}')]
    found = run(rows, "cloud_risk")
    assert found.height == 1
    assert found["reason"][0] == (
        "dave@example.com tried StopLogging on management-events at 02:33 UTC on 2026-11-06 and "
        "was refused (AccessDenied): CloudTrail logging stopped, from 10.0.0.1.")


# ---------------------------------------------------------------------------- new_source


def test_new_address_after_the_baseline():
    rows = workdays() + [event(at(5, 10), statement="SELECT 1", category="read",
                               src_ip="198.51.100.77")]
    found = run(rows, "new_source")
    assert found.height == 1
    assert found["reason"][0].startswith(
        "alice connected from 198.51.100.77 for the first time at 10:00 UTC on 2026-11-05 "
        "(before: 10.0.0.1)")


def test_known_address_and_client_versions_do_not_fire():
    rows = workdays(client_app="DBeaver 24.1.3 - Main") + [
        event(at(5, 10), statement="SELECT 1", category="read", client_app="DBeaver 24.2.0 - SQL")]
    assert run(rows, "new_source").height == 0


def test_detect_from_makes_everything_before_it_the_baseline():
    rows = workdays() + [event(at(3, 10), statement="SELECT 1", category="read",
                               src_ip="10.9.9.9")]
    assert run(rows, "new_source").height == 1
    assert run(rows, "new_source", detect_from=at(4, 0)).height == 0


@pytest.mark.parametrize("name", anomalies.ANOMALY_DETECTORS)
def test_every_detector_is_quiet_on_one_ordinary_event(name):
    assert run([event(at(2, 10), statement="SELECT 1", category="read")], name).height == 0


def test_allow_lists_and_settings_file(tmp_path):
    rows = workdays() + [event(at(5, 2, 30), statement="SELECT 1", category="read")]
    assert run(rows, "off_hours", {"allow_actors": ["alice"]}).height == 0
    settings = tmp_path / "s.yml"
    settings.write_text("detectors:\n  off_hours: {allow_src_ips: ['10.0.0.1']}\n")
    assert run(rows, "off_hours", str(settings)).height == 0
    assert run(rows, "off_hours").height == 1


def test_cli_findings_with_detect_from(tmp_path):
    from auditkit.cli import main

    rows = workdays() + [event(at(5, 10), statement="SELECT 1", category="read",
                               src_ip="198.51.100.77")]
    events = tmp_path / "events.parquet"
    frame(rows).write_parquet(events)
    out = tmp_path / "findings.csv"
    assert main(["findings", str(events), "--detector", "new_source", "--detect-from",
                 "2026-11-04", "-o", str(out)]) == 0
    found = pl.read_csv(out)
    assert found["detector"].to_list() == ["new_source"]
    assert "198.51.100.77" in found["reason"][0]


def test_cloud_audit_and_iam_changes_are_named_by_action():
    rows = [
        event(at(4, 10), "sa@p.iam.gserviceaccount.com", source="gcp_audit",
              layer="infrastructure", category="audit_config", action="SetIamPolicy",
              object="projects/p", statement='{"policy":{"auditConfigs":[]}}'),
        event(at(4, 11), "sa@p.iam.gserviceaccount.com", source="gcp_audit",
              layer="infrastructure", category="permission", action="SetIamPolicy",
              object="projects/p", statement='{"policy":{"bindings":[]}}'),
    ]
    tampering = run(rows, "audit_tampering").row(0, named=True)
    assert tampering["severity"] == "medium"
    assert "changed the audit configuration with SetIamPolicy on projects/p" in tampering["reason"]
    iam = run(rows, "privilege").row(0, named=True)
    assert iam["severity"] == "medium"
    assert "changed cloud permissions (SetIamPolicy on projects/p)" in iam["reason"]
    assert "bindings" not in iam["reason"]


def test_working_hours_in_a_time_zone():
    # 08:30 UTC is 09:30 in Berlin (UTC+1 in November): inside 08-19 UTC, before 10:00 there
    rows = workdays() + [event(at(5, 8, 30), statement="SELECT 1", category="read")]
    assert run(rows, "off_hours").height == 0
    berlin = {"working_hours": {"start": 10, "end": 19, "tz": "Europe/Berlin"}}
    reason = run(rows, "off_hours", berlin)["reason"][0]
    assert "alice was active at 08:30 UTC" in reason
    assert "outside working hours 10–19 Europe/Berlin Mon–Fri" in reason
    assert "usual hours (10–11, 12–13, 16–17 Europe/Berlin)" in reason


def test_events_without_the_optional_enrichment_columns():
    events = frame(workdays() + [event(at(5, 2), statement="SELECT ssn FROM public.customers",
                                       category="read", src_ip="10.9.9.9")])
    found = find(events.drop("is_export", "sql_category"))
    assert "first_seen" in found["detector"].to_list()


def test_first_seen_counts_the_first_success_after_a_refused_attempt():
    denied = "SELECT name, ssn FROM public.customers"
    rows = workdays() + [
        event(at(5, 2, 10), statement=denied, category="read", outcome="failure",
              error="permission denied"),
        event(at(5, 2, 20), statement=denied, category="read"),
    ]
    found = run(rows, "first_seen")
    assert found["time"].to_list() == [at(5, 2, 20)]


def test_platform_written_clients_and_addresses_are_no_new_source():
    rows = workdays(client_app="aws-cli/2.15.30") + [
        event(at(5, 10), statement="{}", category="other", client_app="AWS Internal"),
        event(at(5, 11), statement="{}", category="other", client_app="rds.amazonaws.com",
              src_ip="rds.amazonaws.com"),
    ]
    assert run(rows, "new_source").height == 0
    rows.append(event(at(5, 12), statement="{}", category="other", client_app="Boto3/1.34.69"))
    found = run(rows, "new_source")
    assert found["reason"].to_list() == [
        "alice used the client Boto3 for the first time at 12:00 UTC on 2026-11-05 (before: "
        "aws-cli); 1 events from it within 24 hours."]
