"""Benchmark the cloudtrail source on an S3 trail folder.

Generates 1,000 gzip ``{"Records":[...]}`` files (~100 MB of JSON uncompressed) in the S3 layout
``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`` under ``benchmarks/data/cloudtrail/``, reads
the folder with ``auditkit.sources.read(..., progress=True)`` and prints MB/s of uncompressed JSON
and events/s, by wall-clock time and by this process's CPU time (the machine may be shared: CPU
time above wall time means both cores worked; far below, that other processes took the cores),
and the peak RSS. ``--repeat N`` reads the folder N times in the process (the first read pays the
one-time imports and catalogue load) and ends with the best and the median read. When DuckDB is
installed (``.[dev]``), the same folder read by DuckDB's ``read_json`` + ``unnest(Records)`` with
the envelope fields (``--no-duckdb`` skips it) is printed as the reference a user would try first:
it only extracts, where auditkit also maps identities, outcome, objects, the catalogue and keeps
per-file counts. Run:
``.venv/bin/python benchmarks/bench_cloudtrail.py [--files N] [--mb MB] [--repeat N]``.
"""

from __future__ import annotations

import gzip
import json
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from folder_reads import arguments, prepared, timed_reads

DATA = Path(__file__).resolve().parent / "data" / "cloudtrail"
ACCOUNT = "123456789012"
REGIONS = ("us-east-1", "eu-west-1")
AGENTS = (
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22 prompt/off",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10 md/arch#x86_64 lang/python#3.12.2",
    "AWS Internal",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko)",
)


def identity(rng: random.Random) -> tuple[dict, str]:
    """A userIdentity of a random kind, and the matching sourceIPAddress."""
    kind = rng.random()
    ip = f"203.0.113.{rng.randint(1, 254)}"
    if kind < 0.35:
        user = rng.choice(("alice", "bob", "deploy-bot"))
        return {
            "type": "IAMUser", "principalId": "AIDAEXAMPLE" + user.upper(),
            "arn": f"arn:aws:iam::{ACCOUNT}:user/{user}", "accountId": ACCOUNT,
            "accessKeyId": "AKIAEXAMPLE" + str(rng.randint(1000, 9999)), "userName": user,
        }, ip
    if kind < 0.8:
        sso = kind < 0.6
        role = "AWSReservedSSO_DBAdmin_8df5ccd37b" if sso else "app-backend"
        session = rng.choice(("carol@example.com", "dave@example.com")) if sso else "i-0abc123"
        path = "/aws-reserved/sso.amazonaws.com/" if sso else "/"
        return {
            "type": "AssumedRole", "principalId": f"AROAEXAMPLE:{session}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
            "accountId": ACCOUNT, "accessKeyId": "ASIAEXAMPLE" + str(rng.randint(1000, 9999)),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role", "principalId": "AROAEXAMPLE",
                    "arn": f"arn:aws:iam::{ACCOUNT}:role{path}{role}",
                    "accountId": ACCOUNT, "userName": role,
                },
                "webIdFederationData": {},
                "attributes": {"creationDate": "2026-11-02T08:00:00Z",
                               "mfaAuthenticated": rng.choice(("true", "false"))},
            },
        }, ip
    return {"type": "AWSService", "invokedBy": "rds.amazonaws.com"}, "rds.amazonaws.com"


def record(rng: random.Random, when: datetime, region: str) -> dict:
    """One realistic RDS/KMS/EC2 CloudTrail record (~1-2 KB of JSON)."""
    db = f"orders-db-{rng.randint(1, 20)}"
    name, source, params, response = rng.choice(
        [
            ("DescribeDBInstances", "rds", {"dBInstanceIdentifier": db}, None),
            ("DescribeDBSnapshots", "rds", {"dBInstanceIdentifier": db, "maxRecords": 100}, None),
            ("ModifyDBInstance", "rds",
             {"dBInstanceIdentifier": db, "backupRetentionPeriod": 7, "applyImmediately": True,
              "allocatedStorage": 200},
             {"dBInstanceIdentifier": db, "dBInstanceClass": "db.r6g.large", "engine": "postgres",
              "dBInstanceStatus": "available", "masterUsername": "postgres",
              "endpoint": {"address": f"{db}.abc.{region}.rds.amazonaws.com", "port": 5432},
              "allocatedStorage": 100, "instanceCreateTime": "Oct 10, 2024 3:17:35 PM",
              "preferredBackupWindow": "03:00-04:00", "backupRetentionPeriod": 7,
              "dBParameterGroups": [{"dBParameterGroupName": "pg16-audit",
                                     "parameterApplyStatus": "in-sync"}],
              "pendingModifiedValues": {"allocatedStorage": 200},
              "dBInstanceArn": f"arn:aws:rds:{region}:{ACCOUNT}:db:{db}"}),
            ("CreateDBSnapshot", "rds",
             {"dBSnapshotIdentifier": f"{db}-snap-{rng.randint(1, 999)}",
              "dBInstanceIdentifier": db},
             {"dBSnapshotIdentifier": f"{db}-snap", "status": "creating", "engine": "postgres",
              "snapshotType": "manual", "encrypted": True}),
            ("Decrypt", "kms", {"encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                                "encryptionContext": {"aws:rds:db-id": db}}, None),
            ("AuthorizeSecurityGroupIngress", "ec2",
             {"groupId": "sg-0123456789abcdef0", "ipPermissions": {"items": [
                 {"ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432,
                  "ipRanges": {"items": [{"cidrIp": "10.0.0.0/16"}]}}]}},
             {"_return": True}),
        ]
    )
    ident, ip = identity(rng)
    out = {
        "eventVersion": "1.09", "userIdentity": ident,
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{source}.amazonaws.com", "eventName": name, "awsRegion": region,
        "sourceIPAddress": ip, "userAgent": rng.choice(AGENTS),
        "requestParameters": params, "responseElements": response,
        "requestID": str(uuid.UUID(int=rng.getrandbits(128))),
        "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
        "readOnly": name.startswith("Describe"), "eventType": "AwsApiCall",
        "managementEvent": True, "recipientAccountId": ACCOUNT, "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": f"{source}.{region}.amazonaws.com"},
    }
    if rng.random() < 0.05:
        out["errorCode"] = "AccessDenied"
        out["errorMessage"] = "User is not authorized to perform this operation"
    return out


def generate(folder: Path, files: int, total_mb: float, seed: int = 7) -> int:
    """Write the trail files; returns the uncompressed JSON bytes written."""
    rng = random.Random(seed)
    per_file = max(1, int(total_mb * 1e6 / files / 1200))
    start = datetime(2026, 11, 1, tzinfo=UTC)
    written = 0
    for n in range(files):
        region = REGIONS[n % len(REGIONS)]
        stamp = start + timedelta(minutes=5 * (n // len(REGIONS)))
        day = folder / "AWSLogs" / ACCOUNT / "CloudTrail" / region / stamp.strftime("%Y/%m/%d")
        day.mkdir(parents=True, exist_ok=True)
        name = f"{ACCOUNT}_CloudTrail_{region}_{stamp:%Y%m%dT%H%MZ}_{rng.getrandbits(64):016x}"
        records = [record(rng, stamp - timedelta(seconds=rng.randint(0, 299)), region)
                   for _ in range(per_file)]
        body = json.dumps({"Records": records}, separators=(",", ":")).encode()
        written += len(body)
        (day / f"{name}.json.gz").write_bytes(gzip.compress(body, compresslevel=1))
    return written


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--no-duckdb", dest="duckdb", action="store_false",
                        help="skip the DuckDB reference")
    args = parser.parse_args()
    folder = DATA / f"s3-{args.files}x{args.mb:g}mb"
    size = prepared(folder, lambda path: generate(path, args.files, args.mb))
    timed_reads(folder, size, args.files, args.repeat)
    if args.duckdb:
        duckdb_reference(folder, size, args.repeat)


def duckdb_reference(folder: Path, size: int, repeat: int) -> None:
    """DuckDB reading the folder's envelope fields (extraction only), best of ``repeat``."""
    try:
        import duckdb
    except ImportError:
        print("DuckDB reference skipped: duckdb is not installed (pip install -e '.[dev]')")
        return
    fields = ", ".join(f"r.{name}" for name in (
        "eventVersion", "eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress",
        "userAgent", "errorCode", "errorMessage", "requestID", "eventID", "eventType",
        "recipientAccountId", "userIdentity", "requestParameters", "responseElements"))
    query = (f"SELECT {fields} FROM (SELECT unnest(Records) AS r FROM "
             f"read_json('{folder}/**/*.json.gz', maximum_object_size=1000000000))")
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    walls = []
    for _ in range(repeat):
        started = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TEMP TABLE envelope AS {query}")  # materialised
        rows = con.execute("SELECT count(*) FROM envelope").fetchone()[0]
        walls.append(time.perf_counter() - started)
    print(f"reference, DuckDB {duckdb.__version__} read_json + unnest (extraction only, "
          f"{rows:,} rows): best {size / 1e6 / min(walls):.1f} MB/s, "
          f"median {size / 1e6 / statistics.median(walls):.1f} MB/s")


if __name__ == "__main__":
    main()
