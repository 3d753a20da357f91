"""The Bytebase gateway in front of db1 for the sample week (``sample_logs/bytebase/``).

People sign in to Bytebase (SSO) and run their ad-hoc SQL in its SQL Editor; Bytebase runs it on
db1 through its data source, the PostgreSQL role ``bytebase`` from the Bytebase host, so the
engine log shows ``bytebase``, not the person, and the gateway log shows the person, not the
engine's records. The two are written together: :func:`plan` fixes what each person submits and
when; ``auditkit.samplegen`` runs each query on db1 (a session of ``bytebase`` per query, as
Bytebase's SQL Editor opens one per execution) and records when the engine executed it;
:func:`scenario` then writes the gateway's audit lines with the matching times.

The file is what Bytebase writes to stdout with "Enable audit logging to stdout" and
``--enable-json-logging`` (one slog JSON object per line, ``log_type`` ``audit``; the collector
kept the audit lines only). Deterministic (``random.Random(SEED)``, nothing from the clock).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

SEED = 20261113
DOMAIN = "example.com"  # the company IdP: the same e-mails as the AWS SSO session names
HOST = "10.0.3.10"  # bytebase.shop.internal
ROLE = "bytebase"  # the data-source role Bytebase uses on db1
APP = "bytebase"
INSTANCE = "instances/db1"
PROJECT = "projects/shop"
WORKSPACE = "workspaces/6c1f2b9e-0d53-4f3a-9a57-51e0d3f0b2c4"
DATA_SOURCE = "db1-admin"
RESULT_LIMIT = 1000
FILE = "bytebase/bytebase-audit.log"
README_MARKER = "# Sample logs: Bytebase"
WEEK = [date(2026, 11, d) for d in range(2, 9)]

USERS = {
    "alice": {"ip": "10.20.0.11", "ua": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
              "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"},
    "bob": {"ip": "10.20.0.17", "ua": "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) "
            "Gecko/20100101 Firefox/132.0"},
    "carol": {"ip": "10.20.0.5", "ua": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) "
              "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15"},
    "dave": {"ip": "10.20.0.24", "ua": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
             "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0"},
}
NIGHT_IP = "198.51.100.77"
NIGHT_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

_CUSTOMERS = ("TABLE", "public.customers")
_ORDERS = ("TABLE", "public.orders")
_ITEMS = ("TABLE", "public.order_items")
_SUMMARY = ("VIEW", "public.customer_summary")
_CARDS = ("TABLE", "payments.cards")

# Masking (Bytebase global masking rules): card data always, e-mails for the analysts.
_MASK_CARD = {"semanticTypeId": "card-number", "semanticTypeTitle": "Card number",
              "maskingRuleId": "pci-card-data", "algorithm": "Full mask",
              "context": "Global masking rule \"PCI card data\""}
_MASK_CVV = {"semanticTypeId": "card-cvv", "semanticTypeTitle": "Card CVV",
             "maskingRuleId": "pci-card-data", "algorithm": "Full mask",
             "context": "Global masking rule \"PCI card data\""}
_MASK_EMAIL = {"semanticTypeId": "email", "semanticTypeTitle": "Email",
               "maskingRuleId": "analyst-pii", "algorithm": "Range mask",
               "context": "Global masking rule \"PII for analysts\""}

# (statement with {placeholders}, tables as pgaudit names them, columns, column types, masks)
_Q = tuple[str, list[tuple[str, str]], list[str], list[str], dict[str, dict]]
ALICE: list[_Q] = [
    ("SELECT date_trunc('hour', created_at) AS hour, count(*) AS orders, sum(total) AS revenue "
     "FROM public.orders WHERE created_at >= now() - interval '1 day' GROUP BY 1 ORDER BY 1",
     [_ORDERS], ["hour", "orders", "revenue"], ["TIMESTAMPTZ", "INT8", "NUMERIC"], {}),
    ("SELECT sku, sum(qty) AS units FROM public.order_items GROUP BY sku ORDER BY units DESC "
     "LIMIT {n}", [_ITEMS], ["sku", "units"], ["TEXT", "INT8"], {}),
    ("SELECT c.id, c.name, c.email, sum(o.total) AS revenue FROM public.customers c JOIN "
     "public.orders o ON o.customer_id = c.id GROUP BY c.id, c.name, c.email ORDER BY revenue "
     "DESC LIMIT {n}", [_CUSTOMERS, _ORDERS], ["id", "name", "email", "revenue"],
     ["INT8", "TEXT", "TEXT", "NUMERIC"], {"email": _MASK_EMAIL}),
    ("SELECT * FROM public.customer_summary WHERE lifetime_value > {amount} ORDER BY "
     "lifetime_value DESC LIMIT 50", [_SUMMARY, _CUSTOMERS, _ORDERS],
     ["customer_id", "name", "orders", "lifetime_value"], ["INT8", "TEXT", "INT8", "NUMERIC"],
     {}),
    ("SELECT count(*) AS orders, avg(total) AS avg_basket FROM public.orders WHERE created_at "
     ">= DATE '{day}'", [_ORDERS], ["orders", "avg_basket"], ["INT8", "NUMERIC"], {}),
]
DAVE: list[_Q] = [
    ("SELECT id, name, email, phone FROM public.customers WHERE id = {cid}", [_CUSTOMERS],
     ["id", "name", "email", "phone"], ["INT8", "TEXT", "TEXT", "TEXT"], {}),
    ("SELECT id, total, created_at FROM public.orders WHERE customer_id = {cid} ORDER BY "
     "created_at DESC LIMIT 10", [_ORDERS], ["id", "total", "created_at"],
     ["INT8", "NUMERIC", "TIMESTAMPTZ"], {}),
    ("SELECT c.name, c.email, o.id AS order_id, o.total FROM public.customers c JOIN "
     "public.orders o ON o.customer_id = c.id WHERE o.id = {oid}", [_CUSTOMERS, _ORDERS],
     ["name", "email", "order_id", "total"], ["TEXT", "TEXT", "INT8", "NUMERIC"], {}),
]
DAVE_BILLING: _Q = (
    "SELECT id, customer_id, card_number, expiry FROM payments.cards WHERE customer_id = {cid}",
    [_CARDS], ["id", "customer_id", "card_number", "expiry"], ["INT8", "INT8", "TEXT", "TEXT"],
    {"card_number": _MASK_CARD},
)
BOB: list[_Q] = [
    ("SELECT id, customer_id, total, created_at FROM public.orders WHERE id = {oid}", [_ORDERS],
     ["id", "customer_id", "total", "created_at"], ["INT8", "INT8", "NUMERIC", "TIMESTAMPTZ"],
     {}),
    ("SELECT order_id, sku, qty, unit_price FROM public.order_items WHERE order_id = {oid}",
     [_ITEMS], ["order_id", "sku", "qty", "unit_price"], ["INT8", "TEXT", "INT4", "NUMERIC"], {}),
]
NIGHT_QUERY: _Q = (
    "SELECT card_number, cvv FROM payments.cards LIMIT 10", [_CARDS], ["card_number", "cvv"],
    ["TEXT", "TEXT"], {"card_number": _MASK_CARD, "cvv": _MASK_CVV},
)
NIGHT_LOGIN = datetime(2026, 11, 6, 2, 39, 52, 604_000, UTC)
NIGHT_QUERY_AT = datetime(2026, 11, 6, 2, 40, 31, 127_000, UTC)


def email(who: str) -> str:
    return f"{who}@{DOMAIN}"


def _at(d: date, hours: float) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(hours=hours)


def engine_statement(statement: str) -> str:
    """What the engine receives for a SQL Editor query: Bytebase's result-limit wrapper."""
    return f"WITH result AS ({statement}) SELECT * FROM result LIMIT {RESULT_LIMIT};"


def plan() -> list[dict]:
    """Every gateway action of the week, oldest first: logins, queries (with what the engine will
    run), the change request for bob's migration and carol's approval. Deterministic."""
    rng = random.Random(SEED)
    items: list[dict] = []

    def login(who: str, t: datetime, ip: str | None = None, ua: str | None = None) -> None:
        items.append({"kind": "login", "who": who, "time": t, "ip": ip or USERS[who]["ip"],
                      "ua": ua or USERS[who]["ua"]})

    def query(who: str, t: datetime, q: _Q, database: str = "shop", ip: str | None = None,
              ua: str | None = None, **values) -> None:
        sql, tables, columns, types, masks = q
        statement = sql.format(**values)
        items.append({
            "kind": "query", "who": who, "time": t, "ip": ip or USERS[who]["ip"],
            "ua": ua or USERS[who]["ua"], "database": database, "statement": statement,
            "engine_statement": engine_statement(statement), "tables": tables,
            "columns": columns, "types": types, "masked": [masks.get(c, {}) for c in columns],
            "rows": rng.randint(1, 40) if "{n}" not in sql else values["n"],
        })

    def spread(d: date, n: int, windows: list[tuple[float, float]]) -> list[datetime]:
        return sorted(_at(d, rng.uniform(*rng.choice(windows))) for _ in range(n))

    for d in WEEK:
        if d.weekday() >= 5:
            continue
        login("alice", _at(d, rng.uniform(8.80, 8.96)))
        for t in spread(d, rng.randint(16, 22), [(9.6, 11.9), (13.0, 17.4)]):
            query("alice", t, rng.choice(ALICE), n=rng.choice((10, 20, 25)),
                  amount=rng.choice((250, 500, 1000)), day=d.isoformat())
        login("dave", _at(d, rng.uniform(9.82, 9.98)))
        times = spread(d, rng.randint(12, 16), [(10.0, 12.4), (14.0, 16.9)])
        for i, t in enumerate(times):
            cid, oid = int(rng.triangular(1, 5200, 800)), rng.randint(100_000, 100_900)
            if d == date(2026, 11, 5) and i in (2, 5):  # after carol's card GRANT of 11-04
                query("dave", t, DAVE_BILLING, database="billing", cid=cid)
            else:
                query("dave", t, rng.choice(DAVE), cid=cid, oid=oid)
        if d.weekday() in (0, 1, 3):
            login("bob", _at(d, rng.uniform(10.58, 10.83)))
            for t in spread(d, rng.randint(4, 7), [(10.9, 11.95)]):
                query("bob", t, rng.choice(BOB), oid=rng.randint(100_000, 100_900))
    # context: bob's migration CHG-1187 is a Bytebase issue, approved by carol before it ran
    items.append({"kind": "issue", "who": "bob", "time": _at(date(2026, 11, 2), 16.52),
                  "ip": USERS["bob"]["ip"], "ua": USERS["bob"]["ua"], "issue": 1187,
                  "title": "CHG-1187 order notes + order status"})
    login("carol", _at(date(2026, 11, 3), 10.205))
    items.append({"kind": "approve", "who": "carol", "time": _at(date(2026, 11, 3), 10.238),
                  "ip": USERS["carol"]["ip"], "ua": USERS["carol"]["ua"], "issue": 1187,
                  "comment": "OPS-4412"})
    # the night reader: signs in from home, the gateway masks the card columns
    login("dave", NIGHT_LOGIN, ip=NIGHT_IP, ua=NIGHT_UA)
    query("dave", NIGHT_QUERY_AT, NIGHT_QUERY, database="billing", ip=NIGHT_IP, ua=NIGHT_UA)
    items[-1]["rows"] = 10
    items.sort(key=lambda item: item["time"])
    for n, item in enumerate(items):
        item["id"] = n
    return items


# --------------------------------------------------------------------------- records


def _time(t: datetime) -> str:
    frac = f"{t.microsecond:06d}".rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _record(item: dict, t: datetime, latency_ms: int, **fields) -> dict:
    rec = {"time": _time(t), "level": "INFO", "msg": fields["method"], "log_type": "audit",
           "parent": fields.pop("parent", PROJECT)}
    rec["method"] = fields.pop("method")
    rec["resource"] = fields.pop("resource")
    if fields.get("user", True):
        rec["user"] = fields.pop("user", f"users/{email(item['who'])}")
    fields.pop("user", None)
    rec["latency_ms"] = latency_ms
    rec["client_ip"] = item["ip"]
    rec["user_agent"] = item["ua"]
    rec["severity"] = "INFO"
    rec.update(fields)
    return rec


def scenario() -> list[dict]:
    """The gateway's audit lines for the week (dicts in file order), timed after the engine."""
    from auditkit import samplegen

    _, world = samplegen._build()
    engine = world.facts["gateway"]
    rng = random.Random(SEED + 1)
    records = []
    for item in plan():
        kind = item["kind"]
        if kind == "login":
            lat = rng.randint(140, 420)  # SSO code exchange with the IdP
            who = email(item["who"])
            records.append(_record(
                item, item["time"] + timedelta(milliseconds=lat), lat, parent=WORKSPACE,
                method="/bytebase.v1.AuthService/Login", resource=who, user=False,
                request=_json({"email": who, "web": True, "idpName": "idps/okta"}),
                response=_json({"user": {"name": f"users/{who}", "email": who,
                                         "title": item["who"].capitalize(),
                                         "userType": "USER"}}),
            ))
        elif kind == "query":
            done = engine[item["id"]]["done"]
            t = done + timedelta(microseconds=rng.randint(600, 3500))
            lat = max(1, round((t - item["time"]).total_seconds() * 1000))
            resource = f"{INSTANCE}/databases/{item['database']}"
            request = {"name": resource, "statement": item["statement"], "limit": RESULT_LIMIT,
                       "dataSourceId": DATA_SOURCE}
            result = {
                "columnNames": item["columns"], "columnTypeNames": item["types"],
                "rowsCount": str(item["rows"]), "statement": item["engine_statement"],
                "latency": f"{engine[item['id']]['engine_ms'] / 1000:.3f}s",
                "masked": item["masked"],
            }
            records.append(_record(
                item, t, lat, method="/bytebase.v1.SQLService/Query", resource=resource,
                request=_json(request), response=_json({"results": [result]}),
            ))
        elif kind == "issue":
            lat = rng.randint(40, 120)
            issue = f"{PROJECT}/issues/{item['issue']}"
            records.append(_record(
                item, item["time"] + timedelta(milliseconds=lat), lat,
                method="/bytebase.v1.IssueService/CreateIssue", resource=PROJECT,
                request=_json({"parent": PROJECT, "issue": {
                    "title": item["title"], "type": "DATABASE_CHANGE",
                    "plan": f"{PROJECT}/plans/{item['issue']}"}}),
                response=_json({"name": issue, "title": item["title"], "status": "OPEN"}),
            ))
        elif kind == "approve":
            lat = rng.randint(30, 90)
            issue = f"{PROJECT}/issues/{item['issue']}"
            records.append(_record(
                item, item["time"] + timedelta(milliseconds=lat), lat,
                method="/bytebase.v1.IssueService/ApproveIssue", resource=issue,
                request=_json({"name": issue, "comment": item["comment"]}),
                response=_json({"name": issue, "approvalStatus": "APPROVED"}),
            ))
    records.sort(key=lambda r: r["time"])
    return records


def render(records: list[dict]) -> bytes:
    return "".join(_json(r) + "\n" for r in records).encode("utf-8")


def expected_story() -> dict:
    """Ground truth: the gateway's records, the bypass and the evidence that names its person."""
    from auditkit import samplegen

    _, world = samplegen._build()
    records = scenario()
    queries = [r for r in records if r["method"].endswith("SQLService/Query")]
    bypass = world.facts["bypass"]
    night_login = next(r for r in records if r["client_ip"] == NIGHT_IP
                       and r["method"].endswith("AuthService/Login"))
    night_query = next(r for r in queries if r["client_ip"] == NIGHT_IP)
    per_db: dict[str, int] = {}
    for r in queries:
        db = r["resource"].rsplit("/", 1)[-1]
        per_db[db] = per_db.get(db, 0) + 1
    return {
        "records": len(records),
        "by_method": _count(r["method"].rsplit("/", 1)[-1] for r in records),
        "queries_by_user": _count(r["user"].removeprefix("users/") for r in queries),
        # statements the same people sent to db1 directly (their own roles), for comparison
        "direct_statements": {
            email(who): sum(s.stmt_id for s in world.sessions if s.user == who and not s.extra)
            for who in ("alice", "bob", "dave")
        },
        "queries_by_database": per_db,
        "gateway_role": ROLE,
        "gateway_host": HOST,
        "bypass": {
            "actor": "app_user", "database": "billing", "src_ip": NIGHT_IP, "client_app": "psql",
            "connect_time": bypass["connect_time"], "statement": bypass["statement"],
            "statement_time": bypass["statement_time"], "rows": bypass["rows"],
            "session_id": samplegen.session_id_for(bypass["session"].start,
                                                   bypass["session"].pid),
            "object": "payments.cards",
            "likely_person": email("dave"),
            "evidence": {"login_time": datetime.fromisoformat(night_login["time"]),
                         "query_time": datetime.fromisoformat(night_query["time"])},
        },
        "approval": {"issue": f"{PROJECT}/issues/1187", "approver": email("carol"),
                     "creator": email("bob")},
    }


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def readme_section(records: list[dict]) -> str:
    st = expected_story()
    b = st["bypass"]
    methods = ", ".join(f"{m} {n}" for m, n in st["by_method"].items())
    users = ", ".join(f"{u} {n}" for u, n in st["queries_by_user"].items())
    share = "; ".join(
        f"{who.split('@')[0]}: {n} statements through the gateway, {st['direct_statements'][who]} "
        "direct" for who, n in st["queries_by_user"].items()
    )

    def fmt(t: datetime) -> str:
        return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d} UTC"

    return f"""
{README_MARKER} gateway in front of db1

Written by the same `python scripts/make_sample_logs.py sample_logs` (module
`auditkit.samplegen_bytebase`, seed {SEED}, together with the PostgreSQL week: the engine side of
every gateway query is in the db1 logs); identical bytes on every run. The ground truth is
`auditkit.samplegen_bytebase.expected_story()`.

## Gateway

Bytebase at `bytebase.shop.internal` ({HOST}), project `shop`, instance `db1` with the data
source `{DATA_SOURCE}`: Bytebase connects to db1 as the PostgreSQL role `{ROLE}` from {HOST} with
`application_name={APP}`, one connection per SQL Editor execution, and sends the statement
wrapped in its result limit (`WITH result AS (...) SELECT * FROM result LIMIT {RESULT_LIMIT};`).
So for a query through the gateway, db1's AUDIT record says `{ROLE}` and the gateway's record
says who; the gateway writes its record when the query returned, a few milliseconds after
db1's. People sign in with SSO (the company IdP, the same e-mails as the AWS SSO sessions).
Masking: global rules mask card data (`card_number`, `cvv`) for everybody and e-mails for the
analysts; the decisions are in each Query's `response.results[].masked`.

The file is the stdout audit stream (`--enable-json-logging`, one JSON object per line, `msg` =
`method`, no `status_code` = success), audit lines only:

| file | records |
|---|---|
| `{FILE}` | {len(records)} |

Records by method: {methods}. Queries by user: {users}.

## What goes through the gateway

On weekdays alice, dave and bob run much of their ad-hoc SQL in Bytebase (alice's reports, dave's
customer lookups, bob's order checks); their direct DBeaver / pgAdmin / psql sessions of the
PostgreSQL story go on as before ({share}), and `shop-api` (`app_user`) always connects directly.
Context:
bob's migration CHG-1187 is issue `projects/shop/issues/1187` (created 11-02), approved by
carol on 11-03 before he ran it with psql.

## Planted incident (continuing the story)

9. **The night reader, part four: the shared account** - after the exports, the snapshot share
   and the failed `StopLogging`, dave signs in to Bytebase from {NIGHT_IP} at
   {fmt(b["evidence"]["login_time"])} and queries `payments.cards` through the gateway
   ({fmt(b["evidence"]["query_time"])}): card number and CVV come back masked. At
   {fmt(b["connect_time"])} a psql session connects to `billing` directly as **`app_user`**
   (shop-api's shared account, never used from that address nor with psql) from {NIGHT_IP}
   (session `{b["session_id"]}`) and runs `{b["statement"]}` ({b["rows"]:,} rows, unmasked;
   the statement dave was denied as himself at 02:14). db1 records only `app_user`; the gateway
   has no record of it. What names the likely person is the gateway: dave's own sign-in and
   query from the same address four minutes before, and nobody else on that address that
   night. Remove those two gateway records and nothing names him.
"""


def write_sample_logs(outdir: str | Path) -> dict[str, int]:
    """Write ``outdir/bytebase/...`` and the Bytebase section of ``outdir/README.md``."""
    from auditkit.samplegen import set_readme_section

    outdir = Path(outdir)
    records = scenario()
    path = outdir / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render(records))
    set_readme_section(outdir / "README.md", README_MARKER, readme_section(records))
    return {FILE: len(records)}
