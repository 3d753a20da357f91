"""Benchmark the azure_activity source on a diagnostic-export folder.

Generates 1,000 gzip JSON Lines blobs (~100 MB of JSON uncompressed) in the Storage export layout
``insights-activity-logs/resourceId=/SUBSCRIPTIONS/<id>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json``
under ``benchmarks/data/azure/``: ARM operations on SQL, PostgreSQL and storage resources as
Start/Accept/Success records sharing a correlation id (some failed, some by service principals
or managed identities), with token claims and request bodies. Reads the folder with
``auditkit.sources.read(..., progress=True)`` and prints MB/s of uncompressed JSON and events/s
by wall-clock and CPU time, best and median over ``--repeat`` reads, and the peak RSS. Run:
``.venv/bin/python benchmarks/bench_azure.py [--files N] [--mb MB] [--repeat N]``.
"""

from __future__ import annotations

import gzip
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from folder_reads import arguments, prepared, timed_reads

DATA = Path(__file__).resolve().parent / "data" / "azure"
SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
GROUP = f"/SUBSCRIPTIONS/{SUBSCRIPTION}/RESOURCEGROUPS/SHOP-PROD"
RESOURCES = (
    (f"{GROUP}/PROVIDERS/MICROSOFT.SQL/SERVERS/ORDERS", "MICROSOFT.SQL/SERVERS/WRITE",
     {"properties": {"minimalTlsVersion": "1.2", "publicNetworkAccess": "Disabled"}}),
    (f"{GROUP}/PROVIDERS/MICROSOFT.SQL/SERVERS/ORDERS/FIREWALLRULES/OFFICE",
     "MICROSOFT.SQL/SERVERS/FIREWALLRULES/WRITE",
     {"properties": {"startIpAddress": "203.0.113.0", "endIpAddress": "203.0.113.255"}}),
    (f"{GROUP}/PROVIDERS/MICROSOFT.DBFORPOSTGRESQL/FLEXIBLESERVERS/PAY/CONFIGURATIONS/PGAUDIT.LOG",
     "MICROSOFT.DBFORPOSTGRESQL/FLEXIBLESERVERS/CONFIGURATIONS/WRITE",
     {"properties": {"value": "READ,WRITE,DDL", "source": "user-override"}}),
    (f"{GROUP}/PROVIDERS/MICROSOFT.STORAGE/STORAGEACCOUNTS/BACKUPS",
     "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION", None),
)
PEOPLE = ("alice@example.com", "bob@example.com", "carol@example.com")
APP_ID = "9f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b"


def claims(rng: random.Random) -> tuple[dict, str]:
    """Token claims of a person or of a service principal, and the caller."""
    if rng.random() < 0.7:
        person = rng.choice(PEOPLE)
        return {
            "aud": "https://management.core.windows.net/", "iss": "https://sts.windows.net/t/",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": person,
            "name": person.split("@")[0].title(), "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
            "http://schemas.microsoft.com/identity/claims/objectidentifier": str(uuid.UUID(
                int=rng.getrandbits(128))),
            "ipaddr": f"198.51.100.{rng.randint(1, 254)}", "idtyp": "user",
        }, person
    return {
        "aud": "https://management.core.windows.net/", "appid": APP_ID, "idtyp": "app",
        "http://schemas.microsoft.com/identity/claims/objectidentifier": APP_ID,
    }, APP_ID


def operation(rng: random.Random, when: datetime) -> list[dict]:
    """One ARM operation: Start, sometimes Accept, then Success or Failure (~1 KB each)."""
    resource_id, name, body = rng.choice(RESOURCES)
    correlation = str(uuid.UUID(int=rng.getrandbits(128)))
    token, caller = claims(rng)
    failed = rng.random() < 0.05
    stages = ["Start", *(["Accept"] if rng.random() < 0.3 else []),
              "Failure" if failed else "Success"]
    out = []
    for step, stage in enumerate(stages):
        record = {
            "time": (when + timedelta(seconds=2 * step)).strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
            "resourceId": resource_id, "operationName": name, "category": "Administrative",
            "resultType": stage, "resultSignature": "Forbidden.403" if stage == "Failure"
            else f"{stage}ed.OK", "durationMs": str(rng.randint(10, 4000)),
            "callerIpAddress": f"198.51.100.{rng.randint(1, 254)}",
            "correlationId": correlation, "level": "Error" if failed else "Information",
            "identity": {"authorization": {
                "scope": resource_id, "action": name,
                "evidence": {"role": "Contributor", "roleAssignmentScope": GROUP,
                             "principalId": token[
                                 "http://schemas.microsoft.com/identity/claims/objectidentifier"],
                             "principalType": "User" if caller != APP_ID else "ServicePrincipal"},
            }, "claims": token},
            "properties": {"statusCode": "Forbidden" if stage == "Failure" else "Created",
                           "serviceRequestId": str(uuid.UUID(int=rng.getrandbits(128))),
                           "eventCategory": "Administrative", "entity": resource_id,
                           "message": name, "hierarchy": f"t/{SUBSCRIPTION}"},
        }
        if body is not None and stage == "Start":
            record["properties"]["requestbody"] = json.dumps(body)
        out.append(record)
    return out


def generate(folder: Path, files: int, total_mb: float, seed: int = 13) -> int:
    """Write the blobs; returns the uncompressed JSON bytes written."""
    rng = random.Random(seed)
    per_file = max(1, int(total_mb * 1e6 / files / 3800))
    start = datetime(2026, 11, 1, tzinfo=UTC)
    written = 0
    for number in range(files):
        hour = start + timedelta(hours=number)
        blob = (folder / "insights-activity-logs" / f"resourceId={GROUP}"
                / hour.strftime("y=%Y/m=%m/d=%d/h=%H/m=00"))
        blob.mkdir(parents=True, exist_ok=True)
        records = []
        for _ in range(per_file):
            records.extend(operation(rng, hour + timedelta(seconds=rng.randint(0, 3500))))
        body = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
        written += len(body)
        (blob / "PT1H.json.gz").write_bytes(gzip.compress(body, compresslevel=6))
    return written


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    args = parser.parse_args()
    folder = DATA / f"export-{args.files}x{args.mb:g}mb"
    size = prepared(folder, lambda path: generate(path, args.files, args.mb))
    timed_reads(folder, size, args.files, args.repeat)


if __name__ == "__main__":
    main()
