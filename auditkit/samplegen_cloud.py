"""Deterministic AWS CloudTrail sample records for the sample week (standard library).

The cloud side of the :mod:`auditkit.samplegen` story: account ``111122223333``, region
``eu-west-1``, where the PostgreSQL server is the RDS instance ``db1-shop`` (parameter group
``db1-shop-params``) and the MariaDB server is the RDS instance ``reports-db``. A modest
background (daily automated snapshots, console sign-ins, a maintenance-window change) and the
night reader's cloud steps, all from one IAM Identity Center (SSO) role session.

Records have the shape CloudTrail writes (eventVersion 1.08/1.09): ``userIdentity`` of type
``AssumedRole`` with ``sessionContext.sessionIssuer`` for SSO role sessions, ``AWSService``
with ``invokedBy`` for RDS acting itself; ``responseElements`` null for read-only calls;
``errorCode``/``errorMessage`` and null ``responseElements`` for a denied call. Each day is one
gzip file ``{"Records":[...]}`` (compact JSON) in the S3 layout
``cloudtrail/AWSLogs/<account>/CloudTrail/<region>/2026/11/DD/<account>_CloudTrail_<region>_
202611DDT0000Z_<id>.json.gz`` (gzip mtime 0, ids and UUIDs from a fixed seed).

:func:`scenario` returns the records, :func:`render` a day's file bytes, :func:`expected_story`
the ground truth and :func:`write_sample_logs` writes the files and the README section.
"""

from __future__ import annotations

import gzip
import json
import random
import string
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from auditkit.samplegen import set_readme_section

__all__ = [
    "ACCOUNT",
    "REGION",
    "day_path",
    "expected_story",
    "readme_section",
    "render",
    "scenario",
    "write_sample_logs",
]

SEED = 20261111
ACCOUNT = "111122223333"
FOREIGN_ACCOUNT = "444455556666"
REGION = "eu-west-1"
WEEK = [date(2026, 11, d) for d in range(2, 9)]  # Mon 11-02 .. Sun 11-08
README_MARKER = "# Sample logs: AWS CloudTrail (account 111122223333, eu-west-1)"
SUBDIR = f"cloudtrail/AWSLogs/{ACCOUNT}/CloudTrail/{REGION}"

PG_INSTANCE = "db1-shop"
MARIADB_INSTANCE = "reports-db"
PARAM_GROUP = "db1-shop-params"
TRAIL = "management-events"
TRAIL_ARN = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{TRAIL}"
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/6f1c2a9e-4b7d-4e0a-9c35-1d2e8f7a0b64"
OFFICE_IP = "192.0.2.44"  # the office's internet egress (NAT) seen by AWS
NIGHT_IP = "198.51.100.77"

# SSO permission sets: (role name, role id)
ROLES = {
    "alice": ("AWSReservedSSO_ReadOnly_7e8f90", "AROAYQ4R7HZ2KD3LMN5PQ"),
    "carol": ("AWSReservedSSO_DBAdmin_abc123", "AROAYQ4R7HZ2C6VWX8YZA"),
    "dave": ("AWSReservedSSO_Support_def456", "AROAYQ4R7HZ2F9BCD2EFG"),
}
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
CONSOLE_UA = "AWS Internal"  # console-originated API calls
CLI_UA = (
    "aws-cli/2.18.4 md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0-45-generic md/arch#x86_64 "
    "lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe "
    "md/distrib#ubuntu.24 md/prompt#off md/command#{command}"
)

# the night reader, 2026-11-06 (UTC)
DAVE_SESSION_START = datetime(2026, 11, 6, 2, 23, 51)
PARAM_TIME = datetime(2026, 11, 6, 2, 25, 8)
SNAPSHOT = "db1-shop-manual-1106"
SNAPSHOT_TIME = datetime(2026, 11, 6, 2, 27, 19)
SHARE_TIME = datetime(2026, 11, 6, 2, 31, 2)
STOP_TIME = datetime(2026, 11, 6, 2, 33, 40)
STOP_ERROR = (
    f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{ROLES['dave'][0]}/dave@example.com is not "
    f"authorized to perform: cloudtrail:StopLogging on resource: {TRAIL_ARN} because no "
    "identity-based policy allows the cloudtrail:StopLogging action"
)
# carol's maintenance window change, 2026-11-03
MAINTENANCE_TIME = datetime(2026, 11, 3, 10, 42, 15)
MAINTENANCE_WINDOW = "sun:04:30-sun:05:00"

# instance facts used in responseElements
INSTANCES: dict[str, dict[str, Any]] = {
    PG_INSTANCE: {"engine": "postgres", "engineVersion": "16.4", "port": 5432,
                  "allocatedStorage": 200, "masterUsername": "postgres",
                  "licenseModel": "postgresql-license", "optionGroupName": "default:postgres-16",
                  "dbiResourceId": "db-7QZK3M2XH4RBN5TLV6YC8PWJDE",
                  "instanceCreateTime": "2024-03-12T09:18:44.512Z", "backup": (3, 0),
                  "window": "03:00-03:30"},
    MARIADB_INSTANCE: {"engine": "mariadb", "engineVersion": "10.11.9", "port": 3306,
                       "allocatedStorage": 100, "masterUsername": "admin",
                       "licenseModel": "general-public-license",
                       "optionGroupName": "reports-db-audit",
                       "dbiResourceId": "db-K2J8TQ4W6NVXB3ZL5HMR9CSAFU",
                       "instanceCreateTime": "2025-01-20T14:02:09.877Z", "backup": (3, 30),
                       "window": "03:30-04:00"},
}


def _ts(t: datetime) -> str:
    return f"{t:%Y-%m-%dT%H:%M:%SZ}"


class _Builder:
    """Collects records; ids come from one seeded RNG in story order."""

    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.records: list[dict[str, Any]] = []
        self.keys: dict[str, str] = {}

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def token(self, n: int, alphabet: str = string.ascii_uppercase + string.digits) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def sso(self, who: str, session_start: datetime) -> dict[str, Any]:
        """userIdentity of an IAM Identity Center role session (one access key per session)."""
        role, role_id = ROLES[who]
        key = f"{who}|{session_start}"
        if key not in self.keys:
            self.keys[key] = "ASIAYQ4R7HZ2" + self.token(8)
        return {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{who}@example.com",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{who}@example.com",
            "accountId": ACCOUNT,
            "accessKeyId": self.keys[key],
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/"
                           f"{REGION}/{role}",
                    "accountId": ACCOUNT,
                    "userName": role,
                },
                "attributes": {"creationDate": _ts(session_start), "mfaAuthenticated": "false"},
            },
        }

    def add(self, t: datetime, identity: dict[str, Any], source: str, name: str,
            request: dict[str, Any] | None = None, response: dict[str, Any] | None = None,
            *, ip: str, agent: str, read_only: bool, event_type: str = "AwsApiCall",
            version: str = "1.09", extra: dict[str, Any] | None = None,
            error: tuple[str, str] | None = None) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "eventVersion": version,
            "userIdentity": identity,
            "eventTime": _ts(t),
            "eventSource": source,
            "eventName": name,
            "awsRegion": REGION,
            "sourceIPAddress": ip,
            "userAgent": agent,
        }
        if error is not None:
            rec["errorCode"], rec["errorMessage"] = error
        rec["requestParameters"] = request
        rec["responseElements"] = response
        if extra:
            rec["additionalEventData"] = extra
        if event_type == "AwsApiCall":
            rec["requestID"] = self.uuid()
        rec["eventID"] = self.uuid()
        rec["readOnly"] = read_only
        rec["eventType"] = event_type
        rec["managementEvent"] = True
        rec["recipientAccountId"] = ACCOUNT
        rec["eventCategory"] = "Management"
        if event_type == "AwsApiCall" and identity.get("type") != "AWSService":
            host = source.replace(".amazonaws.com", f".{REGION}.amazonaws.com")
            rec["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                                 "clientProvidedHostHeader": host}
            if agent == CONSOLE_UA:
                rec["sessionCredentialFromConsole"] = "true"
        self.records.append(rec)
        return rec

    # --- building blocks -----------------------------------------------------------------

    def console_login(self, who: str, t: datetime) -> dict[str, Any]:
        ident = self.sso(who, t)
        del ident["accessKeyId"]
        return self.add(
            t, ident, "signin.amazonaws.com", "ConsoleLogin", None, {"ConsoleLogin": "Success"},
            ip=OFFICE_IP, agent=BROWSER, read_only=False, event_type="AwsConsoleSignIn",
            version="1.08",
            extra={"LoginTo": f"https://console.aws.amazon.com/console/home?region={REGION}",
                   "MobileVersion": "No", "MFAUsed": "No"},
        )

    def describe(self, who: str, session: datetime, t: datetime, name: str, ip: str, agent: str,
                 request: dict[str, Any] | None = None) -> None:
        self.add(t, self.sso(who, session), "rds.amazonaws.com", name, request, None,
                 ip=ip, agent=agent, read_only=True)


def _snapshot(b: _Builder, instance: str, snapshot: str, t: datetime, kind: str) -> dict:
    """responseElements of CreateDBSnapshot (the new snapshot, status creating)."""
    i = INSTANCES[instance]
    return {
        "dBSnapshotIdentifier": snapshot,
        "dBInstanceIdentifier": instance,
        "engine": i["engine"],
        "allocatedStorage": i["allocatedStorage"],
        "status": "creating",
        "port": i["port"],
        "availabilityZone": f"{REGION}a",
        "vpcId": "vpc-0a1b2c3d4e5f60718",
        "instanceCreateTime": i["instanceCreateTime"],
        "masterUsername": i["masterUsername"],
        "engineVersion": i["engineVersion"],
        "licenseModel": i["licenseModel"],
        "snapshotType": kind,
        "optionGroupName": i["optionGroupName"],
        "percentProgress": 0,
        "storageType": "gp3",
        "iops": 3000,
        "storageThroughput": 125,
        "encrypted": True,
        "kmsKeyId": KMS_KEY,
        "dBSnapshotArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:{snapshot}",
        "iAMDatabaseAuthenticationEnabled": False,
        "processorFeatures": [],
        "dbiResourceId": i["dbiResourceId"],
        "tagList": [],
        "originalSnapshotCreateTime": f"{t:%Y-%m-%dT%H:%M:%S}.{b.rng.randint(0, 999):03d}Z",
        "snapshotTarget": "region",
        "dedicatedLogVolume": False,
        "multiTenant": False,
    }


def _automated_snapshots(b: _Builder) -> None:
    """RDS takes the daily automated snapshot of both instances in their backup windows."""
    service = {"type": "AWSService", "invokedBy": "rds.amazonaws.com"}
    for day in WEEK:
        for instance, info in INSTANCES.items():
            hh, mm = info["backup"]
            t = datetime(day.year, day.month, day.day, hh, mm + b.rng.randint(1, 6),
                         b.rng.randint(0, 59))
            snap = f"rds:{instance}-{t:%Y-%m-%d-%H-%M}"
            b.add(t, dict(service), "rds.amazonaws.com", "CreateDBSnapshot",
                  {"dBSnapshotIdentifier": snap, "dBInstanceIdentifier": instance},
                  _snapshot(b, instance, snap, t, "automated"),
                  ip="rds.amazonaws.com", agent="rds.amazonaws.com", read_only=False,
                  version="1.08")


def _alice(b: _Builder) -> None:
    """alice (read-only permission set) glances at the instances Mon, Wed and Fri mornings."""
    for d in (2, 4, 6):
        login = datetime(2026, 11, d, 8, b.rng.randint(40, 58), b.rng.randint(0, 59))
        b.console_login("alice", login)
        b.describe("alice", login, login + timedelta(seconds=b.rng.randint(20, 50)),
                   "DescribeDBInstances", OFFICE_IP, CONSOLE_UA)


def _carol(b: _Builder) -> None:
    """carol (DBAdmin) moves both maintenance windows on 11-03 and checks backups on 11-05."""
    login = MAINTENANCE_TIME - timedelta(minutes=3, seconds=27)
    b.console_login("carol", login)
    b.describe("carol", login, login + timedelta(seconds=31), "DescribeDBInstances",
               OFFICE_IP, CONSOLE_UA)
    for n, instance in enumerate((PG_INSTANCE, MARIADB_INSTANCE)):
        t = MAINTENANCE_TIME + timedelta(minutes=2 * n, seconds=9 * n)
        i = INSTANCES[instance]
        request = {"dBInstanceIdentifier": instance, "applyImmediately": False,
                   "preferredMaintenanceWindow": MAINTENANCE_WINDOW}
        response = {
            "dBInstanceIdentifier": instance,
            "dBInstanceClass": "db.m6g.large",
            "engine": i["engine"],
            "dBInstanceStatus": "available",
            "masterUsername": i["masterUsername"],
            "endpoint": {"address": f"{instance}.c9akciq32.{REGION}.rds.amazonaws.com",
                         "port": i["port"], "hostedZoneId": "Z29XKXDKYMONMX"},
            "allocatedStorage": i["allocatedStorage"],
            "preferredBackupWindow": i["window"],
            "backupRetentionPeriod": 7,
            "preferredMaintenanceWindow": MAINTENANCE_WINDOW,
            "pendingModifiedValues": {},
            "multiAZ": True,
            "engineVersion": i["engineVersion"],
            "autoMinorVersionUpgrade": True,
            "publiclyAccessible": False,
            "storageType": "gp3",
            "storageEncrypted": True,
            "kmsKeyId": KMS_KEY,
            "dbiResourceId": i["dbiResourceId"],
            "deletionProtection": True,
            "dBInstanceArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:db:{instance}",
        }
        b.add(t, b.sso("carol", login), "rds.amazonaws.com", "ModifyDBInstance", request,
              response, ip=OFFICE_IP, agent=CONSOLE_UA, read_only=False)
    b.describe("carol", login, MAINTENANCE_TIME + timedelta(minutes=3, seconds=2),
               "DescribeDBInstances", OFFICE_IP, CONSOLE_UA)
    login = datetime(2026, 11, 5, 11, 7, 36)
    b.console_login("carol", login)
    for n, instance in enumerate((PG_INSTANCE, MARIADB_INSTANCE)):
        b.describe("carol", login, login + timedelta(seconds=40 + 25 * n), "DescribeDBSnapshots",
                   OFFICE_IP, CONSOLE_UA, {"dBInstanceIdentifier": instance,
                                           "snapshotType": "automated"})


def _night(b: _Builder) -> None:
    """dave's SSO CLI session from the night address, minutes after the two database exports."""
    s = DAVE_SESSION_START

    def cli(command: str) -> str:
        return CLI_UA.format(command=command)

    b.describe("dave", s, s + timedelta(seconds=21), "DescribeDBInstances", NIGHT_IP,
               cli("rds.describe-db-instances"))
    b.add(PARAM_TIME, b.sso("dave", s), "rds.amazonaws.com", "ModifyDBParameterGroup",
          {"dBParameterGroupName": PARAM_GROUP,
           "parameters": [{"parameterName": "pgaudit.log", "parameterValue": "none",
                           "isModifiable": False, "applyMethod": "pending-reboot"}]},
          {"dBParameterGroupName": PARAM_GROUP},
          ip=NIGHT_IP, agent=cli("rds.modify-db-parameter-group"), read_only=False)
    b.add(SNAPSHOT_TIME, b.sso("dave", s), "rds.amazonaws.com", "CreateDBSnapshot",
          {"dBSnapshotIdentifier": SNAPSHOT, "dBInstanceIdentifier": PG_INSTANCE},
          _snapshot(b, PG_INSTANCE, SNAPSHOT, SNAPSHOT_TIME, "manual"),
          ip=NIGHT_IP, agent=cli("rds.create-db-snapshot"), read_only=False)
    for seconds in (104, 196):  # waiting for the snapshot to become available
        b.describe("dave", s, SNAPSHOT_TIME + timedelta(seconds=seconds), "DescribeDBSnapshots",
                   NIGHT_IP, cli("rds.describe-db-snapshots"), {"dBSnapshotIdentifier": SNAPSHOT})
    b.add(SHARE_TIME, b.sso("dave", s), "rds.amazonaws.com", "ModifyDBSnapshotAttribute",
          {"dBSnapshotIdentifier": SNAPSHOT, "attributeName": "restore",
           "valuesToAdd": [FOREIGN_ACCOUNT]},
          {"dBSnapshotIdentifier": SNAPSHOT,
           "dBSnapshotAttributes": [{"attributeName": "restore",
                                     "attributeValues": [FOREIGN_ACCOUNT]}]},
          ip=NIGHT_IP, agent=cli("rds.modify-db-snapshot-attribute"), read_only=False)
    b.add(STOP_TIME, b.sso("dave", s), "cloudtrail.amazonaws.com", "StopLogging",
          {"name": TRAIL}, None, ip=NIGHT_IP, agent=cli("cloudtrail.stop-logging"),
          read_only=False, error=("AccessDenied", STOP_ERROR))


def scenario() -> list[dict[str, Any]]:
    """Every CloudTrail record of the week, in time order (ties keep story order)."""
    b = _Builder()
    _automated_snapshots(b)
    _alice(b)
    _carol(b)
    _night(b)
    return sorted(b.records, key=lambda r: r["eventTime"])


def _file_ids() -> dict[date, str]:
    rng = random.Random(SEED + 1)
    alphabet = string.ascii_letters + string.digits
    return {d: "".join(rng.choice(alphabet) for _ in range(16)) for d in WEEK}


def day_path(day: date) -> str:
    """The file of ``day`` relative to the sample folder (S3 trail layout)."""
    name = f"{ACCOUNT}_CloudTrail_{REGION}_{day:%Y%m%d}T0000Z_{_file_ids()[day]}.json.gz"
    return f"{SUBDIR}/{day:%Y/%m/%d}/{name}"


def render(records: list[dict[str, Any]]) -> bytes:
    """One trail file: gzip (mtime 0) of compact ``{"Records":[...]}``."""
    text = json.dumps({"Records": records}, separators=(",", ":"), ensure_ascii=False)
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def by_day(records: list[dict[str, Any]]) -> dict[date, list[dict[str, Any]]]:
    """The records of each day of the week (every day has at least the automated snapshots)."""
    days: dict[date, list[dict[str, Any]]] = {d: [] for d in WEEK}
    for r in records:
        days[date.fromisoformat(r["eventTime"][:10])].append(r)
    return days


def expected_story() -> dict[str, Any]:
    """Ground truth of the cloud part of the story (times are naive UTC)."""
    dave_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLES['dave'][0]}/dave@example.com"
    return {
        "account": ACCOUNT,
        "region": REGION,
        "files": [day_path(d) for d in WEEK],
        "instances": {"postgresql": PG_INSTANCE, "mariadb": MARIADB_INSTANCE},
        "night": {
            "person": "dave@example.com",
            "actor": dave_arn,
            "role": ROLES["dave"][0],
            "src_ip": NIGHT_IP,
            "session_start": DAVE_SESSION_START,
            "incidents": [
                {"action": "ModifyDBParameterGroup", "time": PARAM_TIME, "object": PARAM_GROUP,
                 "parameter": ("pgaudit.log", "none"), "outcome": "success"},
                {"action": "CreateDBSnapshot", "time": SNAPSHOT_TIME, "object": SNAPSHOT,
                 "outcome": "success"},
                {"action": "ModifyDBSnapshotAttribute", "time": SHARE_TIME, "object": SNAPSHOT,
                 "shared_with": FOREIGN_ACCOUNT, "outcome": "success"},
                {"action": "StopLogging", "time": STOP_TIME, "object": TRAIL,
                 "outcome": "failure", "error": "AccessDenied"},
            ],
        },
        "maintenance": {"person": "carol@example.com", "time": MAINTENANCE_TIME,
                        "instances": [PG_INSTANCE, MARIADB_INSTANCE],
                        "window": MAINTENANCE_WINDOW},
    }


def _counts(records: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r["eventName"]] = counts.get(r["eventName"], 0) + 1
    return dict(sorted(counts.items()))


def readme_section(records: list[dict[str, Any]]) -> str:
    """The README section on the CloudTrail records (appended after reports-db's)."""
    days = by_day(records)
    files = "\n".join(f"| `{day_path(d)}` | {len(days[d])} |" for d in WEEK)
    ops = ", ".join(f"{name} {n}" for name, n in _counts(records).items())
    dave = f"{ROLES['dave'][0]}/dave@example.com"
    rows = [
        ("alice@example.com", f"`{ROLES['alice'][0]}`",
         "console sign-in Mon, Wed, Fri ~08:45 UTC, looks at the instances"),
        ("carol@example.com", f"`{ROLES['carol'][0]}`",
         f"11-03 {MAINTENANCE_TIME:%H:%M} UTC: `ModifyDBInstance` of both instances to the "
         f"maintenance window `{MAINTENANCE_WINDOW}`; 11-05: looks at the automated snapshots"),
        ("dave@example.com", f"`{ROLES['dave'][0]}`",
         "only the night session below (AWS CLI v2)"),
    ]
    people = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    return f"""
{README_MARKER}

Written by the same `python scripts/make_sample_logs.py sample_logs` (module
`auditkit.samplegen_cloud`, seed {SEED}); identical bytes on every run (gzip mtime 0, fixed
file ids, event/request ids from the seed). The ground truth is
`auditkit.samplegen_cloud.expected_story()`.

## Account

AWS account `{ACCOUNT}`, region `{REGION}`: db1 is the RDS for PostgreSQL instance
`{PG_INSTANCE}` (parameter group `{PARAM_GROUP}`, backup window 03:00-03:30 UTC) and reports-db
the RDS for MariaDB instance `{MARIADB_INSTANCE}` (backup window 03:30-04:00 UTC); both are
encrypted with a customer managed KMS key. The trail `{TRAIL}` writes management events
to S3; the files are laid out as S3 keeps them, one gzip `{{"Records":[...]}}` file per day (a
real trail delivers one every few minutes):

| file | records |
|---|---|
{files}

Records by eventName: {ops}.

People sign in through IAM Identity Center: their records are `AssumedRole` sessions of the
permission-set roles `AWSReservedSSO_<set>_<id>/<email>` (the session name is the person).
The office reaches AWS from {OFFICE_IP} (NAT). Automated snapshots are `CreateDBSnapshot` calls
by RDS itself (`userIdentity.type` `AWSService`, `invokedBy` `rds.amazonaws.com`).

| who | permission set role | what |
|---|---|---|
{people}

## Planted incidents (continuing the story)

8. **The night reader, part three** - after the exports from db1 (02:14 UTC) and reports-db
   (02:21 UTC), dave uses his SSO role session `{dave}` (created
   {DAVE_SESSION_START} UTC) from {NIGHT_IP} with the AWS CLI:
   - {PARAM_TIME} UTC `ModifyDBParameterGroup` `{PARAM_GROUP}`: `pgaudit.log` = `none`
     (`applyMethod` `pending-reboot`: it takes effect at the next reboot, none happens this week,
     which is why db1 keeps writing AUDIT records);
   - {SNAPSHOT_TIME} UTC `CreateDBSnapshot` `{SNAPSHOT}` of `{PG_INSTANCE}` (two
     `DescribeDBSnapshots` follow while it is created);
   - {SHARE_TIME} UTC `ModifyDBSnapshotAttribute` `{SNAPSHOT}`: `attributeName` `restore`,
     `valuesToAdd` `["{FOREIGN_ACCOUNT}"]` (an account outside the organisation can now restore
     the database, cards included);
   - {STOP_TIME} UTC `StopLogging` on the trail `{TRAIL}` fails: `AccessDenied` (the Support
     permission set does not allow it), so the trail kept recording.

What auditkit makes of it: every record is an event (source `cloudtrail`, layer
`infrastructure`, actor the session ARN, person the session name, actor_type `assumed_role`;
the automated snapshots are `system`). The catalogue (`auditkit/data/cloud_actions_aws.yml`)
flags three of the four incident actions with `extra.risk` `high` (the parameter group change,
the share with another account, StopLogging); dave's manual `CreateDBSnapshot` is category
`backup` without a risk (the catalogue does not rate snapshot creation). Categories:
`audit_config` for the parameter group (it touches `pgaudit.*`) and StopLogging, `backup` for
the snapshot and the share.
"""


def write_sample_logs(outdir: str | Path) -> dict[str, int]:
    """Write the day files under ``outdir/cloudtrail/`` and append (or replace) the CloudTrail
    section of ``outdir/README.md``. Returns records per file."""
    outdir = Path(outdir)
    records = scenario()
    counts: dict[str, int] = {}
    for day, chunk in by_day(records).items():
        path = outdir / day_path(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(render(chunk))
        counts[day_path(day)] = len(chunk)
    set_readme_section(outdir / "README.md", README_MARKER, readme_section(records))
    return counts
