"""Benchmark the gcp_audit source on a Cloud Storage sink folder.

Generates 1,000 gzip NDJSON files (~100 MB of JSON uncompressed) in the sink layout
``cloudaudit.googleapis.com/<log>/YYYY/MM/DD/HH:00:00_HH:59:59_S0.json`` under
``benchmarks/data/gcp/``: Cloud SQL and IAM API calls (activity and data access, some denied,
some through service-account delegation) and Cloud SQL for PostgreSQL pgAudit entries, a few of
them long statements in chunks. Reads the folder with ``auditkit.sources.read(..., progress=True)``
and prints MB/s of uncompressed JSON and events/s by wall-clock and CPU time, best and median over
``--repeat`` reads, and the peak RSS. Run:
``.venv/bin/python benchmarks/bench_gcp.py [--files N] [--mb MB] [--repeat N]``.
"""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from folder_reads import arguments, prepared, timed_reads

DATA = Path(__file__).resolve().parent / "data" / "gcp"
PROJECT = "shop-prod"
PEOPLE = ("alice@example.com", "bob@example.com", "carol@example.com")
ROBOT = f"deployer@{PROJECT}.iam.gserviceaccount.com"
LOGS = ("activity", "data_access")
METHODS = (
    ("cloudsql.instances.get", "data_access", {"project": PROJECT, "instance": "orders"}),
    ("cloudsql.instances.list", "data_access", {"project": PROJECT}),
    ("cloudsql.instances.update", "activity",
     {"project": PROJECT, "instance": "orders",
      "body": {"settings": {"databaseFlags": [{"name": "pgaudit.log", "value": "all"}],
                            "backupConfiguration": {"enabled": True}}}}),
    ("cloudsql.backupRuns.insert", "activity", {"project": PROJECT, "instance": "orders"}),
    ("cloudsql.users.update", "activity",
     {"project": PROJECT, "instance": "orders", "name": "app_user"}),
    ("SetIamPolicy", "activity",
     {"resource": f"projects/{PROJECT}", "policy": {"bindings": [
         {"role": "roles/cloudsql.client", "members": [f"user:{PEOPLE[1]}"]}]}}),
)
STATEMENTS = (
    "SELECT id, total FROM public.orders WHERE customer_id = $1",
    "UPDATE public.orders SET status = 'shipped' WHERE id = $1",
    "SELECT card_number, cvv FROM payments.cards WHERE customer_id = $1",
)


def api_entry(rng: random.Random, when: datetime, n: int) -> dict:
    """One AuditLog API call (~1 KB of JSON)."""
    method, log, request = rng.choice(METHODS)
    robot = rng.random() < 0.3
    auth = {"principalEmail": ROBOT if robot else rng.choice(PEOPLE)}
    if robot and rng.random() < 0.5:
        auth["serviceAccountDelegationInfo"] = [
            {"firstPartyPrincipal": {"principalEmail": rng.choice(PEOPLE)}}]
    denied = rng.random() < 0.05
    return {
        "insertId": f"{n:x}x{rng.getrandbits(40):x}",
        "logName": f"projects/{PROJECT}/logs/cloudaudit.googleapis.com%2F{log}",
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "status": {"code": 7, "message": "PERMISSION_DENIED"} if denied else {},
            "authenticationInfo": auth,
            "requestMetadata": {
                "callerIp": f"203.0.113.{rng.randint(1, 254)}",
                "callerSuppliedUserAgent": "google-cloud-sdk gcloud/468.0.0 command/"
                                           "gcloud.sql.instances.patch",
                "requestAttributes": {"time": when.isoformat()}, "destinationAttributes": {},
            },
            "serviceName": "cloudsql.googleapis.com" if method != "SetIamPolicy"
            else "cloudresourcemanager.googleapis.com",
            "methodName": method,
            "authorizationInfo": [{"resource": "instances/orders", "permission": method,
                                   "granted": not denied, "resourceAttributes": {}}],
            "resourceName": f"projects/{PROJECT}/instances/orders",
            "request": {"@type": "type.googleapis.com/google.cloud.sql.v1.SqlInstancesRequest",
                        **request},
        },
        "resource": {"type": "cloudsql_database",
                     "labels": {"project_id": PROJECT, "database_id": f"{PROJECT}:orders",
                                "region": "europe-west1"}},
        "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "severity": "ERROR" if denied else "NOTICE",
        "receiveTimestamp": (when + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def pg_entries(rng: random.Random, when: datetime, n: int) -> list[dict]:
    """One pgAudit statement, in 1-3 chunks."""
    statement = rng.choice(STATEMENTS)
    count = 3 if rng.random() < 0.1 else 1
    size = -(-len(statement) // count)
    session, stmt = rng.randint(1000, 1100), n
    out = []
    for index in range(count):
        out.append({
            "insertId": f"pg{n:x}-{index}",
            "logName": f"projects/{PROJECT}/logs/cloudaudit.googleapis.com%2Fdata_access",
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "serviceName": "cloudsql.googleapis.com",
                "methodName": "cloudsql.instances.query",
                "resourceName": "instances/orders",
                "request": {
                    "@type": "type.googleapis.com/google.cloud.sql.audit.v1.PgAuditEntry",
                    "auditClass": "READ" if statement.startswith("SELECT") else "WRITE",
                    "auditType": "SESSION", "command": statement.split()[0],
                    "statement": statement[index * size:(index + 1) * size],
                    "parameter": "<not logged>", "object": "", "objectType": "",
                    "database": "shop", "user": "app_user", "databaseSessionId": session,
                    "statementId": stmt, "substatementId": 1, "chunkIndex": index + 1,
                    "chunkCount": count,
                },
            },
            "resource": {"type": "cloudsql_database",
                         "labels": {"project_id": PROJECT, "database_id": f"{PROJECT}:orders"}},
            "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "severity": "INFO",
        })
    return out


def generate(folder: Path, files: int, total_mb: float, seed: int = 11) -> int:
    """Write the sink files; returns the uncompressed JSON bytes written."""
    rng = random.Random(seed)
    per_file = max(1, int(total_mb * 1e6 / files / 1070))
    start = datetime(2026, 11, 1, tzinfo=UTC)
    written = n = 0
    for number in range(files):
        log = LOGS[number % len(LOGS)]
        hour = start + timedelta(hours=number // len(LOGS))
        day = folder / "cloudaudit.googleapis.com" / log / hour.strftime("%Y/%m/%d")
        day.mkdir(parents=True, exist_ok=True)
        lines: list[str] = []
        while len(lines) < per_file:
            when = hour + timedelta(seconds=rng.randint(0, 3599))
            n += 1
            found = pg_entries(rng, when, n) if log == "data_access" and rng.random() < 0.5 \
                else [api_entry(rng, when, n)]
            lines.extend(json.dumps(e, separators=(",", ":")) for e in found)
        body = ("\n".join(lines) + "\n").encode()
        written += len(body)
        name = f"{hour:%H}:00:00_{hour:%H}:59:59_S0.json.gz"
        (day / name).write_bytes(gzip.compress(body, compresslevel=6))
    return written


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    args = parser.parse_args()
    folder = DATA / f"sink-{args.files}x{args.mb:g}mb"
    size = prepared(folder, lambda path: generate(path, args.files, args.mb))
    timed_reads(folder, size, args.files, args.repeat)


if __name__ == "__main__":
    main()
