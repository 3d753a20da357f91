"""gcp_audit: GCP Cloud Audit Logs (LogEntry + AuditLog), incl. Cloud SQL database audit entries.

Containers: a single LogEntry object, a JSON array (``gcloud logging read --format=json``),
``{"entries": [...]}`` (Entries API) and NDJSON (Cloud Storage sinks); rows of a BigQuery sink
export as JSON (``protopayload_auditlog`` with ``requestJson`` strings, nested or flattened to
dotted keys) or CSV (dotted column names). Entries are decoded in batches with the explicit
``ENVELOPE`` schema (scalar leaves only); ``request``/``serviceData``/``resource.labels`` are taken
as JSON strings by path, so heterogeneous bodies never shape a schema. A batch holding an entry
that does not fit (not JSON, an elided ``"..."`` object) is read path by path (``FIELDS``,
``PAYLOAD_FIELDS``; same result, slower) so that one odd entry is quarantined, not the file.

Three kinds of entries become events:

- **API calls** (``source=gcp_audit``, ``layer=infrastructure``): ``methodName`` is the action,
  ``principalEmail`` the actor, ``status.code`` the outcome; ``statement`` is the compact JSON of
  ``request`` (``serviceData`` when there is no request: it holds IAM policy deltas). Category
  comes from the catalogue ``auditkit/data/cloud_actions_gcp.yml`` (which also flags risky
  actions), else from ``METHOD_CATEGORY``.
- **Cloud SQL for PostgreSQL pgAudit** (``request`` is a ``PgAuditEntry``; ``source=pgaudit``,
  ``layer=workflow``, since they are pgaudit's records mapped exactly like the pgaudit source's).
  Long statements arrive in chunks: the entries of one (instance, databaseSessionId, statementId,
  substatementId) are joined in ``chunkIndex`` order into **one** event; a statement whose chunks
  are not exactly 1..chunkCount keeps what arrived and is flagged ``extra.truncated``.
  *Records count reassembled statements*: a continuation chunk is not a record of its own (a note
  says how many chunk entries were merged), so ``records = events + quarantined`` holds.
- **Cloud SQL for MySQL audit** (``MysqlAuditEntry``; ``source=gcp_audit``, ``layer=workflow``):
  the DB user, client IP, query; category left null for SQL analysis (``auth`` for connections).

Many files at once (``read_batch``, used by the read loop for folders: Cloud Storage sinks
write a file per log and hour): the NDJSON files of a batch are split and decoded together and
every entry is mapped in one pass, with the same results per file as ``read``; chunks of a pgAudit
statement are joined within their file only.

Quarantined: lines that are not JSON objects, entries without ``protoPayload`` (Cloud SQL server
logs in ``textPayload``: read them with the postgres source) or without ``methodName``.
The Logstash rubydebug dumps in the public corpus are not JSON and are not detected.

Identity: ``actor_type`` is ``service_account`` for ``*.gserviceaccount.com`` principals,
``serviceAccount:`` subjects and federated workload identities (``principal://``), ``system``
for ``system:*`` (GKE), ``iam_user`` for other e-mails; ``person`` is the actor when it is a human
e-mail, else the human at the start of a ``serviceAccountDelegationInfo`` chain
(``extra.delegated_by`` is that first caller whatever it is).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import polars as pl

from auditkit.schema import extra_json, object_name
from auditkit.sources import (
    BATCH_FILE,
    BatchParsed,
    FileContext,
    Parsed,
    Source,
    batch_quarantine,
    file_column,
    per_file,
    read_alone,
    register,
    with_digests,
)
from auditkit.sources.catalogue import apply_catalogue
from auditkit.sources.jsontext import document_texts, numbered_lines
from auditkit.sources.pgaudit import category as pgaudit_category

# flat field -> JSON paths into one LogEntry, first found wins (LogEntry, BigQuery nested rows,
# BigQuery rows flattened to dotted keys)
_PP = ("$.protoPayload", "$.protopayload_auditlog")
FIELDS: dict[str, tuple[str, ...]] = {
    "log_name": ("$.logName",),
    "insert_id": ("$.insertId",),
    "timestamp": ("$.timestamp",),
    "receive_timestamp": ("$.receiveTimestamp",),
    "severity": ("$.severity",),
    "resource_type": ("$.resource.type", "$['resource.type']"),
    "labels": ("$.resource.labels",),
    "operation_id": ("$.operation.id", "$['operation.id']"),
    "text_payload": ("$.textPayload",),
}
# inside protoPayload / protopayload_auditlog
PAYLOAD_FIELDS: dict[str, tuple[str, ...]] = {
    "service": ("$.serviceName",),
    "method": ("$.methodName",),
    "resource_name": ("$.resourceName",),
    "principal_email": ("$.authenticationInfo.principalEmail",),
    "principal_subject": ("$.authenticationInfo.principalSubject",),
    "delegated_by": (
        "$.authenticationInfo.serviceAccountDelegationInfo[0].firstPartyPrincipal.principalEmail",
        "$.authenticationInfo.serviceAccountDelegationInfo[0].principalSubject",
    ),
    "caller_ip": ("$.requestMetadata.callerIp",),
    "user_agent": ("$.requestMetadata.callerSuppliedUserAgent",),
    "status_code": ("$.status.code",),
    "status_message": ("$.status.message",),
    "request": ("$.request", "$.requestJson"),
    "service_data": ("$.serviceData", "$.servicedata_v1_iam"),
}
# BigQuery rows flattened to dotted keys (JSON or CSV header): the payload fields' own names
FLAT_PREFIX = "protopayload_auditlog."
FLAT_PATHS = {
    "request": "requestJson",
    "service_data": "serviceDataJson",
}
LABEL_PREFIX = "resource.labels."

# Cloud SQL database audit entries inside ``request``
PG_FIELDS = {
    "audit_class": "auditClass", "audit_type": "auditType", "command": "command",
    "statement": "statement", "parameter": "parameter", "object": "object",
    "object_type": "objectType", "database": "database", "user": "user",
    "session": "databaseSessionId", "statement_id": "statementId",
    "substatement_id": "substatementId", "chunk_index": "chunkIndex", "chunk_count": "chunkCount",
}
MYSQL_FIELDS = {
    "cmd": "cmd", "query": "query", "user": "user", "priv_user": "privUser", "ip": "ip",
    "status": "status", "err_code": "errCode", "thread_id": "threadId", "query_id": "queryId",
    "msg_type": "msgType", "db": "objects[0].db", "name": "objects[0].name",
    "obj_type": "objects[0].objType",
}
PG_TYPE = "PgAuditEntry"
MYSQL_TYPE = "MysqlAuditEntry"
MYSQL_AUTH_COMMANDS = ("connect", "quit", "change_user")
TEXT_PAYLOAD_REASON = "not an audit entry: server log line in textPayload (use the postgres source)"

# methodName -> category when the catalogue has no entry; first match wins (case-insensitive)
METHOD_CATEGORY: tuple[tuple[str, str], ...] = (
    (r"setiampolicy$|setiampermissions$", "permission"),
    (r"(?:^|\.)(?:get|list|aggregatedlist|search|lookup|check|test)\w*$", "other"),
    (r"\.iam\.|iam\.admin\.|serviceaccountkey|addgroupmember", "permission"),
    (r"\.(?:firewalls|networks|subnetworks|routes|addresses|routers)\.", "network"),
    (r"backup|snapshot|\.export$|\.import$", "backup"),
    (r"(?:^|\.)(?:insert|create|delete|clone)\w*$", "provisioning"),
    (r"(?:^|\.)(?:update|patch|set|stop|start|restart|reset)\w*$", "config"),
)
REDACTED_EMAILS = ("xxx@xxx.xxx",)
EMAIL = r"^[^@\s:/]+@[^@\s:/]+\.[^@\s:/]+$"
SERVICE_ACCOUNT = r"(?i)\.gserviceaccount\.com$|^serviceaccount:|^principal(?:set)?://"

_ENTRY_KEYS = re.compile(rb'"(?:protoPayload|protopayload_auditlog[.\w]*)"\s*:')
_ENVELOPE_KEYS = (re.compile(rb'"logName"\s*:'), re.compile(rb'"insertId"\s*:'))
_BIGQUERY_HEADER = re.compile(rb"^[^\n]*\bprotopayload_auditlog\.methodName\b")


def detect(head: bytes) -> bool:
    """A LogEntry JSON container with AuditLog payloads, or a BigQuery export CSV header."""
    text = head.lstrip()
    if not text.startswith((b"{", b"[")):  # first: the header regex is slow on a long JSON line
        return bool(_BIGQUERY_HEADER.match(text))  # else rubydebug dumps, text logs
    if _ENTRY_KEYS.search(head):
        return True
    return all(p.search(head) for p in _ENVELOPE_KEYS) and b"cloudaudit.googleapis.com" in head


# ---------------------------------------------------------------------------------------------
# containers -> one JSON text per entry


def split_entries(text: str) -> tuple[pl.DataFrame, list[str]]:
    """One JSON file's entries: ``_raw`` (one entry's JSON text or a bad line) and ``_pos``
    (line for NDJSON, entry ordinal for JSON documents), and notes."""
    found, notes, _ = file_entries(text)
    if isinstance(found, str):
        return numbered_lines({0: found}).drop(BATCH_FILE), notes
    return found, notes


def _first(column: pl.Expr, paths: tuple[str, ...], bigquery: bool) -> pl.Expr:
    """The first of ``paths`` found; BigQuery-only paths are tried only in BigQuery exports (each
    path parses the JSON again)."""
    wanted = [p for p in paths if bigquery or not _BIGQUERY_PATH.search(p)]
    return pl.coalesce([column.str.json_path_match(p) for p in wanted])


_BIGQUERY_PATH = re.compile(r"protopayload_auditlog|Json$|servicedata_|\['")


def flatten_json(entries: pl.DataFrame, bigquery: bool = False) -> pl.DataFrame:
    """Flat fields of each entry (``FIELDS``, ``PAYLOAD_FIELDS``), all strings.

    ``bigquery``: the text holds BigQuery export rows (``protopayload_auditlog``), nested or
    flattened to dotted keys.
    """
    raw = pl.col("_raw")
    frame = entries.with_columns(
        _pp=_first(raw, _PP, bigquery),
        **{name: _first(raw, paths, bigquery) for name, paths in FIELDS.items()},
    )
    pp = pl.col("_pp")
    flat_payload = {}
    for name, paths in PAYLOAD_FIELDS.items():
        expr = _first(pp, paths, bigquery)
        if bigquery:
            dotted = f"$['{FLAT_PREFIX}{FLAT_PATHS.get(name, paths[0][2:])}']"
            expr = pl.coalesce(expr, raw.str.json_path_match(dotted))
        flat_payload[name] = expr
    frame = frame.with_columns(
        **flat_payload,
        _has_payload=pp.is_not_null()
        | raw.str.contains(f'"{FLAT_PREFIX}methodName"', literal=True),
    )
    # an entry where some path matched is a JSON object; check the others (rare) by parsing
    found = pl.any_horizontal(pl.col(c).is_not_null() for c in ("_pp", *FIELDS))
    ok = pl.when(found).then(pl.lit(True)).otherwise(
        raw.str.json_path_match("$").is_not_null() & raw.str.strip_chars().str.starts_with("{")
    )
    return frame.with_columns(_ok=ok)


S = pl.String()
_AUDIT_PAYLOAD = pl.Struct({
    "serviceName": S, "methodName": S, "resourceName": S,
    "authenticationInfo": pl.Struct({
        "principalEmail": S, "principalSubject": S,
        "serviceAccountDelegationInfo": pl.List(pl.Struct({
            "firstPartyPrincipal": pl.Struct({"principalEmail": S}), "principalSubject": S,
        })),
    }),
    "requestMetadata": pl.Struct({"callerIp": S, "callerSuppliedUserAgent": S}),
    "status": pl.Struct({"code": S, "message": S}),
    "requestJson": S,  # BigQuery exports only
})
# the LogEntry envelope: scalar leaves only (objects of free form are read by JSON path)
ENVELOPE = pl.Struct({
    "logName": S, "insertId": S, "timestamp": S, "receiveTimestamp": S, "severity": S,
    "textPayload": S,
    "resource": pl.Struct({"type": S}),
    "operation": pl.Struct({"id": S}),
    "protoPayload": _AUDIT_PAYLOAD,
    "protopayload_auditlog": _AUDIT_PAYLOAD,
})


def decode_envelope(entries: pl.DataFrame) -> pl.DataFrame:
    """Flat fields of each entry decoded with ``ENVELOPE`` in one pass (the fast path).

    Raises a Polars error when any entry does not fit (not JSON, a string where an object is
    expected); ``flatten_json`` then reads the entries path by path.
    """
    e = pl.col("_e")
    pp = pl.coalesce(e.struct.field("protoPayload"), e.struct.field("protopayload_auditlog"))
    pp_raw = pl.coalesce(
        pl.col("_raw").str.json_path_match("$.protoPayload"),
        pl.col("_raw").str.json_path_match("$.protopayload_auditlog"),
    )
    auth = pp.struct.field("authenticationInfo")
    first_delegate = auth.struct.field("serviceAccountDelegationInfo").list.first()
    meta, status = pp.struct.field("requestMetadata"), pp.struct.field("status")
    raw = pl.col("_raw")
    decoded = entries.with_columns(_e=raw.str.json_decode(ENVELOPE), _pp=pp_raw)
    return decoded.with_columns(
        _ok=pl.lit(True),
        _has_payload=pl.col("_pp").is_not_null(),
        log_name=e.struct.field("logName"),
        insert_id=e.struct.field("insertId"),
        timestamp=e.struct.field("timestamp"),
        receive_timestamp=e.struct.field("receiveTimestamp"),
        severity=e.struct.field("severity"),
        resource_type=e.struct.field("resource").struct.field("type"),
        labels=raw.str.json_path_match("$.resource.labels"),
        operation_id=e.struct.field("operation").struct.field("id"),
        text_payload=e.struct.field("textPayload"),
        service=pp.struct.field("serviceName"),
        method=pp.struct.field("methodName"),
        resource_name=pp.struct.field("resourceName"),
        principal_email=auth.struct.field("principalEmail"),
        principal_subject=auth.struct.field("principalSubject"),
        delegated_by=pl.coalesce(
            first_delegate.struct.field("firstPartyPrincipal").struct.field("principalEmail"),
            first_delegate.struct.field("principalSubject"),
        ),
        caller_ip=meta.struct.field("callerIp"),
        user_agent=meta.struct.field("callerSuppliedUserAgent"),
        status_code=status.struct.field("code"),
        status_message=status.struct.field("message"),
        request=pl.coalesce(pl.col("_pp").str.json_path_match("$.request"),
                            pp.struct.field("requestJson")),
        service_data=pl.col("_pp").str.json_path_match("$.serviceData"),
    ).drop("_e")


BATCH = 20_000  # entries decoded at once: one odd entry sends only its batch to the slow path


def flatten(entries: pl.DataFrame, bigquery: bool) -> pl.DataFrame:
    """Flat fields of every entry: ``decode_envelope`` per batch, ``flatten_json`` for a batch
    holding an entry that does not fit the envelope schema or BigQuery rows with dotted keys."""
    parts = []
    for batch in entries.iter_slices(BATCH):
        dotted = bigquery and batch["_raw"].str.contains(f'"{FLAT_PREFIX}', literal=True).any()
        try:
            parts.append(flatten_json(batch, bigquery) if dotted else decode_envelope(batch))
        except pl.exceptions.PolarsError:
            parts.append(flatten_json(batch, bigquery))
    if not parts:
        return flatten_json(entries, bigquery).select(pl.col(BATCH_FILE), pl.exclude(BATCH_FILE))
    columns = [BATCH_FILE, "_raw", "_pos", "_ok", "_pp", "_has_payload", *FIELDS, *PAYLOAD_FIELDS]
    return pl.concat([part.select(columns) for part in parts], how="vertical_relaxed")


def flatten_csv(text: str) -> pl.DataFrame:
    """Flat fields of a BigQuery export CSV (dotted column names)."""
    table = pl.read_csv(text.encode(), infer_schema=False)
    cols = set(table.columns)

    def col(name: str) -> pl.Expr:
        return pl.col(name) if name in cols else pl.lit(None, pl.String)

    labels = sorted(c for c in cols if c.startswith(LABEL_PREFIX))
    label_json = (
        pl.struct(**{c[len(LABEL_PREFIX):]: pl.col(c) for c in labels}).struct.json_encode()
        if labels else pl.lit(None, pl.String)
    )
    payload = {
        name: col(FLAT_PREFIX + FLAT_PATHS.get(name, paths[0][2:]))
        for name, paths in PAYLOAD_FIELDS.items()
    }
    return table.select(
        _raw=pl.concat_str(pl.all().fill_null(""), separator=","),
        _pos=pl.int_range(2, pl.len() + 2, dtype=pl.Int64),  # line 1 is the header
        _ok=pl.lit(True),
        _has_payload=col(FLAT_PREFIX + "methodName").is_not_null(),
        labels=label_json,
        **{name: col(paths[0][2:]) for name, paths in FIELDS.items() if name != "labels"},
        **payload,
    )


# ---------------------------------------------------------------------------------------------
# mapping


def parse_time(value: pl.Expr) -> pl.Expr:
    """RFC 3339 (0-9 fraction digits, Z or offset), BigQuery ``... UTC``, or epoch seconds.

    Re-exports that drop the zone (``2024-07-22 14:20:56.237``) are UTC, as Cloud Logging writes.
    """
    iso = value.str.replace(r" UTC$", "Z").str.replace(r"^(\d{4}-\d\d-\d\d) ", "${1}T")
    iso = pl.when(iso.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$")).then(iso).otherwise(iso + "Z")
    parsed = iso.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    epoch = (value.cast(pl.Float64, strict=False) * 1_000_000).cast(pl.Int64, strict=False)
    return pl.coalesce(parsed, epoch.cast(pl.Datetime("us", "UTC")))


def log_type(log_name: pl.Expr) -> pl.Expr:
    """``activity``, ``data_access``, ``system_event``, ``policy`` (or the log id)."""
    return log_name.str.extract(r"(?:%2F|/)logs/(?:cloudaudit\.googleapis\.com(?:%2F|/))?(.+)$")


def method_category(method: pl.Expr) -> pl.Expr:
    """Category of a method not in the catalogue (declarative: ``METHOD_CATEGORY``)."""
    lowered = method.str.to_lowercase()
    expr = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
    for pattern, cat in METHOD_CATEGORY:
        expr = expr.when(lowered.str.contains(pattern)).then(pl.lit(cat))
    return expr.otherwise(pl.lit("other"))


def is_person(identity: pl.Expr) -> pl.Expr:
    """A human's e-mail: not a service account, not a redaction placeholder."""
    return (
        identity.str.contains(EMAIL)
        & ~identity.str.contains(SERVICE_ACCOUNT)
        & ~identity.str.to_lowercase().is_in(REDACTED_EMAILS)
    ).fill_null(False)


def actor_type(actor: pl.Expr, subject: pl.Expr) -> pl.Expr:
    """``service_account``, ``system``, ``iam_user`` or ``unknown``."""
    return (
        pl.when(actor.is_null())
        .then(pl.lit("unknown"))
        .when(actor.str.contains(SERVICE_ACCOUNT) | subject.str.contains(SERVICE_ACCOUNT))
        .then(pl.lit("service_account"))
        .when(actor.str.starts_with("system:"))
        .then(pl.lit("system"))
        .when(actor.str.contains("@"))
        .then(pl.lit("iam_user"))
        .otherwise(pl.lit("unknown"))
    )


def _target() -> pl.Expr:
    labels = pl.col("labels")
    return pl.coalesce(
        labels.str.json_path_match("$.database_id"),
        labels.str.json_path_match("$.instance_id"),
        labels.str.json_path_match("$.bucket_name"),
        labels.str.json_path_match("$.project_id"),
        pl.col("log_name").str.extract(r"^((?:projects|organizations|folders)/[^/]+)"),
    )


def _common(ctxs: Sequence[FileContext]) -> dict[str, pl.Expr]:
    position = pl.col("_pos").cast(pl.String)
    return {
        "time": parse_time(pl.coalesce("timestamp", "receive_timestamp")),
        "target": _target(),
        "event_id": pl.coalesce("insert_id", per_file([c.digest + ":" for c in ctxs]) + position),
        "raw_ref": per_file([c.display + ":" for c in ctxs]) + position,
        "_pos": pl.col("_pos"),
        BATCH_FILE: pl.col(BATCH_FILE),
    }


def _req(name: str) -> pl.Expr:
    return pl.col("request").str.json_path_match(f"$.{name}")


def api_events(frame: pl.DataFrame, ctxs: Sequence[FileContext]) -> pl.DataFrame:
    """AuditLog API calls -> infrastructure events."""
    email, subject = pl.col("principal_email"), pl.col("principal_subject")
    actor = pl.coalesce(email, subject)
    code = pl.col("status_code").cast(pl.Int64, strict=False)
    failed = code.is_not_null() & (code != 0)
    delegated = pl.col("delegated_by").str.strip_prefix("user:")
    kind = actor_type(actor, subject)
    human = actor.str.strip_prefix("user:")  # principalSubject "user:alice@corp.com"
    events = frame.select(
        **_common(ctxs),
        source=pl.lit("gcp_audit"),
        layer=pl.lit("infrastructure"),
        category=method_category(pl.col("method")),
        action=pl.col("method"),
        outcome=pl.when(failed).then(pl.lit("failure")).otherwise(pl.lit("success")),
        error=pl.when(failed).then(
            pl.concat_str(code.cast(pl.String), pl.lit(": "),
                          pl.col("status_message").fill_null("")).str.strip_suffix(": ")
        ),
        actor=actor,
        actor_type=kind,
        person=pl.when((kind == "iam_user") & is_person(human)).then(human)
        .when(is_person(delegated)).then(delegated),
        src_ip=pl.col("caller_ip"),
        client_app=pl.col("user_agent"),
        object=pl.col("resource_name"),
        object_type=pl.col("resource_type"),
        statement=pl.coalesce("request", "service_data"),
        _api_service=pl.col("service"),
        extra=extra_json(
            log_type=log_type(pl.col("log_name")),
            service=pl.col("service"),
            severity=pl.col("severity"),
            delegated_by=pl.col("delegated_by"),
            principal_subject=subject,
            operation_id=pl.col("operation_id"),
            labels=pl.col("labels"),
        ),
    )
    return apply_catalogue(events, "gcp", service="_api_service").drop("_api_service")


def pgaudit_events(
    frame: pl.DataFrame, ctxs: Sequence[FileContext]
) -> tuple[pl.DataFrame, dict[int, int]]:
    """PgAuditEntry chunks -> one workflow event per reassembled statement (pgaudit mapping),
    and how many continuation chunks were merged, per file (chunks join within a file)."""
    chunks = frame.with_columns(
        **{name: _req(key) for name, key in PG_FIELDS.items()},
        _instance=pl.coalesce(_target(), pl.col("resource_name")),
    ).with_columns(
        _index=pl.col("chunk_index").cast(pl.Int64, strict=False).fill_null(1),
        _count=pl.col("chunk_count").cast(pl.Int64, strict=False).fill_null(1),
        # entries without session/statement ids cannot be chunks of anything: keep each apart
        _key=pl.when(pl.col("session").is_null() | pl.col("statement_id").is_null())
        .then(pl.lit("#") + pl.col("_pos").cast(pl.String)),
    )
    keys = [BATCH_FILE, "_instance", "session", "statement_id", "substatement_id", "_key"]
    stmts = (
        chunks.sort("_index", "_pos")
        .group_by(keys, maintain_order=True)
        .agg(
            pl.col("statement").str.join(""),
            pl.col("parameter").drop_nulls().str.join(""),
            pl.exclude(*keys, "statement", "parameter", "_index", "_pos", "_count").first(),
            _pos=pl.col("_pos").min(),
            _indexes=pl.col("_index"),
            _count=pl.col("_count").max(),
            _chunks=pl.len(),
        )
        .sort(BATCH_FILE, "_pos")
    )
    complete = pl.col("_indexes").list.sort() == pl.int_ranges(1, pl.col("_count") + 1)
    klass, command, statement = pl.col("audit_class"), pl.col("command"), pl.col("statement")
    top_key = pl.concat_str(
        per_file([c.digest + ":" for c in ctxs]), pl.col("_instance").fill_null(""), pl.lit("/"),
        pl.col("session").fill_null(""), pl.lit("/"),
        pl.coalesce("statement_id", pl.lit("#") + pl.col("_pos").cast(pl.String)),
    )
    return stmts.select(
        **_common(ctxs),
        source=pl.lit("pgaudit"),
        layer=pl.lit("workflow"),
        category=pgaudit_category(klass, command, statement),
        action=command,
        outcome=pl.lit("success"),
        actor=pl.col("user"),
        actor_type=pl.lit("db_user"),
        person=pl.when(is_person(pl.col("user"))).then(pl.col("user")),
        database=pl.col("database"),
        object=object_name(pl.col("object_type"), pl.col("object").replace("", None)),
        object_type=pl.col("object_type").replace("", None).str.to_lowercase(),
        statement=statement,
        session_id=pl.col("session"),
        statement_id=pl.concat_str("statement_id", pl.lit("."), "substatement_id"),
        extra=extra_json(
            stmt_group=top_key,
            audit_type=pl.col("audit_type"),
            audit_class=klass,
            substatement_id=pl.col("substatement_id").cast(pl.Int64, strict=False),
            parameter=pl.col("parameter").replace("", None),
            truncated=pl.when(~complete).then(True),
            chunks=pl.when(pl.col("_chunks") > 1).then(pl.col("_chunks")),
            log_type=log_type(pl.col("log_name")),
            service=pl.col("service"),
            method=pl.col("method"),
        ),
    ), merged_per_file(chunks, stmts)


def merged_per_file(chunks: pl.DataFrame, stmts: pl.DataFrame) -> dict[int, int]:
    """Continuation chunks merged into their statements, per file index (none: absent)."""
    if chunks.height == stmts.height:
        return {}
    counts = chunks.group_by(BATCH_FILE).len().join(
        stmts.group_by(BATCH_FILE).len(), on=BATCH_FILE, how="left", suffix="_stmts"
    )
    return {
        index: entries - (statements or 0)
        for index, entries, statements in counts.iter_rows()
        if entries - (statements or 0)
    }


def mysql_events(frame: pl.DataFrame, ctxs: Sequence[FileContext]) -> pl.DataFrame:
    """MysqlAuditEntry -> workflow events (category null for queries: SQL analysis decides)."""
    rec = frame.with_columns(**{name: _req(key) for name, key in MYSQL_FIELDS.items()})
    cmd = pl.col("cmd").str.to_lowercase()
    failed = pl.col("status").str.to_lowercase() == "unsuccessful"
    obj = pl.when(pl.col("name").is_not_null()).then(
        pl.concat_str(pl.col("db").fill_null(""), pl.lit("."), pl.col("name")).str.strip_prefix(".")
    )
    return rec.select(
        **_common(ctxs),
        source=pl.lit("gcp_audit"),
        layer=pl.lit("workflow"),
        category=pl.when(cmd.is_in(MYSQL_AUTH_COMMANDS)).then(pl.lit("auth")),
        action=pl.col("cmd").str.replace_all("_", " ").str.to_uppercase(),
        outcome=pl.when(failed).then(pl.lit("failure"))
        .when(pl.col("status").is_null()).then(pl.lit("unknown"))
        .otherwise(pl.lit("success")),
        error=pl.when(failed).then(pl.col("err_code")),
        actor=pl.col("user"),
        actor_type=pl.lit("db_user"),
        person=pl.when(is_person(pl.col("user"))).then(pl.col("user")),
        src_ip=pl.col("ip"),
        database=pl.col("db"),
        object=obj,
        object_type=pl.col("obj_type").str.to_lowercase(),
        statement=pl.col("query"),
        session_id=pl.col("thread_id"),
        statement_id=pl.col("query_id"),
        extra=extra_json(
            log_type=log_type(pl.col("log_name")),
            service=pl.col("service"),
            method=pl.col("method"),
            priv_user=pl.col("priv_user"),
            msg_type=pl.col("msg_type"),
            err_code=pl.col("err_code"),
        ),
    )


def quarantine_reason() -> pl.Expr:
    """Why an entry cannot be an event (null when it can)."""
    return (
        pl.when(~pl.col("_ok"))
        .then(pl.lit("not a JSON object"))
        .when(pl.col("text_payload").is_not_null() & ~pl.col("_has_payload"))
        .then(pl.lit(TEXT_PAYLOAD_REASON))
        .when(~pl.col("_has_payload"))
        .then(pl.lit("LogEntry without protoPayload (not an audit log entry)"))
        .when(pl.col("method").is_null())
        .then(pl.lit("AuditLog entry without methodName"))
    )


def read(text: str, ctx: FileContext) -> Parsed:
    """Read Cloud Audit Log entries from any container this module knows."""
    return read_alone(read_batch, text, ctx)


def file_entries(text: str) -> tuple[pl.DataFrame | str, list[str], bool]:
    """One file's entries: a frame (CSV rows already flat, JSON documents as texts) or, for
    NDJSON, the text itself (its lines numbered later, with the batch's other NDJSON files);
    notes; whether they are BigQuery rows."""
    head = text.lstrip()[:4096]
    if not head.startswith(("{", "[")) and _BIGQUERY_HEADER.match(head.encode()):
        return flatten_csv(text), ["BigQuery export CSV: positions are file lines"], True
    bigquery = "protopayload_auditlog" in head
    stripped = text.strip()
    texts = document_texts(stripped, ("entries",))
    if texts is None:
        return text, [], bigquery
    if stripped.startswith("["):
        note = "a JSON array: positions are entry numbers"
    elif texts.len() == 1 and texts[0] == stripped:
        note = None
    else:
        note = 'an {"entries": [...]} document: positions are entry numbers'
    frame = pl.DataFrame({"_raw": texts.rename("_raw")}).with_columns(
        _pos=pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
    )
    return frame, [note] if note else [], bigquery


def read_batch(contents: Sequence[bytes], ctxs: Sequence[FileContext]) -> BatchParsed:
    """Parse several files (UTF-8 bytes) as ``read`` would each: NDJSON files (Cloud Storage
    sinks write one per hour and log) are split and decoded together, other containers file by
    file, and all entries mapped in one pass."""
    notes: list[list[str]] = [[] for _ in contents]
    flats: list[pl.DataFrame] = []
    entries: dict[bool, list[pl.DataFrame]] = {False: [], True: []}  # by BigQuery rows or not
    lines: dict[bool, dict[int, str]] = {False: {}, True: {}}  # NDJSON files' texts
    for index, content in enumerate(contents):
        found, file_notes, bigquery = file_entries(content.decode())
        notes[index].extend(file_notes)
        if isinstance(found, str):
            lines[bigquery][index] = found
        elif "_ok" in found.columns:  # BigQuery CSV: flat already
            flats.append(found.with_columns(file_column(index)))
        else:
            entries[bigquery].append(found.with_columns(file_column(index)))
    for bigquery in (False, True):
        if lines[bigquery]:
            entries[bigquery].append(numbered_lines(lines[bigquery]))
        if entries[bigquery]:
            batch = pl.concat(entries[bigquery], how="diagonal").sort(
                BATCH_FILE, maintain_order=True
            )
            flats.append(flatten(batch.select(BATCH_FILE, "_raw", "_pos"), bigquery))
    if not flats:
        flats.append(flatten(pl.DataFrame(schema={BATCH_FILE: pl.Int64, "_raw": pl.String,
                                                  "_pos": pl.Int64}), False))
    flat = (
        pl.concat(flats, how="diagonal_relaxed")
        .sort(BATCH_FILE, "_pos", maintain_order=True)
        .with_columns(_reason=quarantine_reason())
    )
    bad = flat.filter(pl.col("_reason").is_not_null())
    good = flat.filter(pl.col("_reason").is_null()).with_columns(
        _type=pl.col("request").str.json_path_match("$['@type']"),
    )
    typ = pl.col("_type")
    untyped = typ.is_null() & (pl.col("method") == "cloudsql.instances.query")
    is_pg = typ.str.ends_with(PG_TYPE).fill_null(False) | (
        untyped & _req("auditClass").is_not_null()
    ).fill_null(False)
    is_mysql = typ.str.ends_with(MYSQL_TYPE).fill_null(False) | (
        untyped & _req("cmd").is_not_null()
    ).fill_null(False)
    pg_rows = good.filter(is_pg)
    if pg_rows.height or good.select(pl.col("insert_id").is_null().any()).item():
        ctxs = with_digests(ctxs, contents)  # ids and statement groups name the file's digest
    pg, merged = pgaudit_events(pg_rows, ctxs)
    parts = [
        api_events(good.filter(~is_pg & ~is_mysql), ctxs),
        pg,
        mysql_events(good.filter(is_mysql & ~is_pg), ctxs),
    ]
    events = pl.concat([p for p in parts if p.height] or parts[:1], how="diagonal_relaxed")
    events = events.sort(BATCH_FILE, "_pos", maintain_order=True).drop("_pos")
    for index, count in merged.items():
        notes[index].append(
            f"{count} pgAudit chunk entries merged into the statements they continue "
            "(records count reassembled statements)"
        )
    quarantine = batch_quarantine(bad, ctxs, "gcp_audit")
    entries_per_file = dict(flat.get_column(BATCH_FILE).value_counts().iter_rows())
    return BatchParsed(
        events=events,
        quarantine=quarantine,
        # a continuation chunk is part of its statement's record
        records=[entries_per_file.get(i, 0) - merged.get(i, 0) for i in range(len(contents))],
        notes=notes,
    )


register(
    Source(
        "gcp_audit",
        "GCP Cloud Audit Logs (LogEntry JSON/NDJSON, BigQuery export), incl. Cloud SQL "
        "pgAudit and MySQL audit entries",
        detect,
        read,
        example="gcloud logging read 'logName:cloudaudit.googleapis.com' --format=json",
        layer="infrastructure",
        priority=20,
        read_batch=read_batch,
    )
)
