"""bytebase: Bytebase audit logs (SQL editor queries and exports, IAM, approvals; ``workflow``).

Bytebase audits its own API calls. One record mapping serves every shape it reaches users in:

- **API** (``SearchAuditLogs``): ``bytebase.v1.AuditLog`` objects — ``name``
  (``projects/{p}/auditLogs/{uid}``), ``createTime``, ``user`` (``users/{email}``), ``method``
  (``/bytebase.v1.SQLService/Query``), ``severity``, ``resource``, ``request``/``response``
  (protojson **strings**), ``status`` (``{code, message}``, absent when OK), ``latency``
  (``"0.012s"``), ``serviceData`` (``Any``), ``requestMetadata`` (``{callerIp,
  callerSuppliedUserAgent}``) — as ``{"auditLogs":[...]}`` pages, a JSON array, NDJSON or one
  object. ``ExportAuditLogs`` JSON (an array of ``time``, ``user``, ``method``, ..., ``status``
  as proto text ``code:7 message:"..."``) is read too.
- **Store**: rows of Bytebase's metadata table ``audit_log(id, created_at, payload)`` in a
  ``pg_dump`` (``INSERT INTO [public.]audit_log [(cols)] VALUES (...)[, (...)]`` or a ``COPY
  [public.]audit_log (cols) FROM stdin;`` block; older schemas ``created_ts`` epoch seconds).
  ``payload`` is the protojson of ``bytebase.store.AuditLog``: ``parent`` instead of ``name``,
  ``user`` = ``users/{uid}`` (numeric), no time. Other statements of the dump are not records.
- **stdout** (workspace setting ``enable_audit_log_stdout``, JSON logging): slog JSON lines
  with ``log_type: "audit"`` and flat keys ``time``, ``parent``, ``method``, ``resource``,
  ``user``, ``status_code`` and ``status_message`` (errors only), ``latency_ms``, ``client_ip``,
  ``user_agent``, ``severity``, ``mcp*``, ``request``, ``response`` (cut at 100 KB with
  ``...[truncated]``). The stream's other
  JSON lines (application logs) and non-JSON lines (banner) are skipped, counted in a note; a
  non-JSON line naming an audit method is quarantined.

Mapping (``MAPPING``): ``action`` is the method as recorded (``/bytebase.v1.SQLService/Query``,
non-RPC actions such as ``bb.project.repository.push``); ``category`` by ``CATEGORY_RULES`` on
its ``Service/Method`` part, and for ``SQLService/AdminExecute`` by the statement's first keyword
(``STATEMENT_CATEGORIES``).
``statement`` is the request's ``statement`` (SQL methods only); ``target``/``database`` come
from the request's ``name`` (``instances/{i}/databases/{d}``) or ``resource``. ``actor`` is
``user`` as recorded (``users/alice@corp.com``, ``users/101``); for a login without one, the
user the login response names, else (a failed login) the email tried, from ``resource``
(``extra.actor_from``: ``response``/``resource``).
``person`` is the email the actor names, or for a login the email its response confirms
(numeric ids leave it null otherwise; service accounts have none).
``outcome`` is failure when ``status.code`` is non-zero or a query result carries an error.
``event_id`` is ``name``, ``parent/auditLogs/<id>`` for store rows (the API's name of the same
row), else ``<file digest>:<position>``; ``raw_ref`` is ``file:<line>`` (NDJSON, dumps) or
``file:<n>`` (n-th element of a JSON document).

``extra`` keys: ``method``, ``parent``, ``severity``, ``latency_ms``, ``log_shape`` (api, store,
stdout, export), ``status_code``, ``masked_columns`` (columns the response says were masked),
``masking`` (per masked column: ``column``, ``semantic_type_id``, ``semantic_type_title``,
``masking_rule_id``, ``algorithm``, ``context``, ``classification_level``), ``sensitive_columns``
(older builds), ``query_errors``, ``executed_statement`` (the statement Bytebase ran, when it
rewrote the request's), ``admin`` (an admin-mode export: not masked), ``limit``,
``data_source_id``, ``applied_access_grant``, ``allow_export``, ``policy_delta`` (SetIamPolicy:
``[{action, role, member, condition}]`` from ``serviceData``), ``policy_bindings`` (the new
policy from the request when no delta is recorded), ``request`` (non-SQL methods: the request
JSON), ``logged_in_user`` (``users/{uid}`` a login resolved to), ``actor_from``, ``caller_ip``
(as recorded, when it held a port or a proxy chain), ``mcp``/``mcp_correlation_id``/
``mcp_client_id``/``mcp_scope``, ``truncated`` (stdout cut a payload), ``request_unparsed``/
``response_unparsed``, ``row_id``, ``tz_assumed``. Query ``extra`` with
``pl.col("extra").str.json_path_match("$.masked_columns")`` or ``str.json_decode``.
"""

from __future__ import annotations

import io
import json
import re

import polars as pl

from auditkit.errors import InputError
from auditkit.schema import QUARANTINE_SCHEMA, extra_json
from auditkit.sources import FileContext, Parsed, Source, register
from auditkit.sources.jsontext import (
    flag,
    invalid_record_reason,
    is_json_lines,
    json_lines,
    one_line,
)

S = pl.String()
# Nested objects are decoded as typed structs, never as String: Polars re-serialises an object
# read as String without escaping its backslashes.
CONDITION = pl.Struct({"expression": S, "title": S, "description": S})
BINDING_DELTAS = pl.List(pl.Struct({"action": S, "role": S, "member": S, "condition": CONDITION}))
BINDINGS = pl.List(pl.Struct({"role": S, "members": pl.List(S), "condition": CONDITION}))
STATUS = pl.Struct({"code": S, "message": S})
# one schema for the API, store-payload, export and stdout records: absent keys are null
RECORD: dict[str, pl.DataType] = {
    "name": S, "createTime": S, "time": S, "parent": S, "user": S, "method": S, "severity": S,
    "resource": S, "request": S, "response": S, "status": STATUS, "latency": S,
    "serviceData": pl.Struct(
        {"@type": S, "policyDelta": pl.Struct({"bindingDeltas": BINDING_DELTAS})}),
    "requestMetadata": pl.Struct({"callerIp": S, "callerSuppliedUserAgent": S}),
    "mcpDelegation": pl.Struct({"scope": S, "resource": S, "clientId": S, "correlationId": S}),
    "log_type": S, "level": S, "msg": S, "status_code": S, "status_message": S,
    "latency_ms": S, "client_ip": S, "user_agent": S,
    "mcp": S, "mcp_correlation_id": S, "mcp_scope": S, "mcp_client_id": S,
}
# ExportAuditLogs JSON writes status as proto text (``code:7 message:"..."``)
EXPORT_RECORD: dict[str, pl.DataType] = {**RECORD, "status": S}
REQUEST: dict[str, pl.DataType] = {
    "name": S, "statement": S, "limit": S, "dataSourceId": S, "admin": S, "email": S,
    "connectionDatabase": S, "policy": pl.Struct({"bindings": BINDINGS}),
}
MASKING_FIELDS = ("semanticTypeId", "semanticTypeTitle", "maskingRuleId", "algorithm",
                  "context", "classificationLevel")
MASKING_REASON = pl.Struct(dict.fromkeys(MASKING_FIELDS, S))
RESULT_FIELDS: dict[str, pl.DataType] = {
    "columnNames": pl.List(S), "sensitive": pl.List(pl.Boolean), "rowsCount": S, "error": S,
    "statement": S, "latency": S,
}
# QueryResult.masked: MaskingReason per column (empty for unmasked) in current builds, a boolean
# per column in older ones (the corpus' demo dump)
RESPONSE: dict[str, pl.DataType] = {
    "results": pl.List(pl.Struct({**RESULT_FIELDS, "masked": pl.List(MASKING_REASON)})),
    "user": pl.Struct({"name": S, "email": S}), "appliedAccessGrant": S, "allowExport": S,
}
RESPONSE_BOOLEAN_MASKS: dict[str, pl.DataType] = {
    **RESPONSE,
    "results": pl.List(pl.Struct({**RESULT_FIELDS, "masked": pl.List(pl.Boolean)})),
}
BOOLEAN_MASKS = r'"masked"\s*:\s*\[\s*(?:true|false)'

# (regex on ``Service/Method``, category): first match wins; None = the statement decides
CATEGORY_RULES: list[tuple[str, str | None]] = [
    (r"^SQLService/Query$", "read"),
    (r"^SQLService/Export$", "export"),
    (r"^SQLService/(AdminExecute|Execute)$", None),
    (r"/SetIamPolicy$", "permission"),
    (r"^(UserService|GroupService|RoleService|ServiceAccountService|WorkloadIdentityService)/"
     r"(Create|Update|Delete|Undelete|Batch|Add|Remove)", "permission"),
    (r"^AuthService/", "auth"),
    (r"^(IssueService|PlanService|RolloutService|AccessGrantService|ReleaseService)/", "approval"),
    (r"^InstanceService/(Create|Delete|Undelete|Purge)Instance$", "provisioning"),
    (r"^\w+Service/(Create|Update|Delete|Undelete|Add|Remove|Batch|Set|Sync|Upsert)", "config"),
]
# (regex on the statement's first keyword, category) for statement-decided methods
STATEMENT_CATEGORIES: list[tuple[str, str]] = [
    (r"^(SELECT|WITH|SHOW|EXPLAIN|DESC|DESCRIBE|TABLE|VALUES)\b", "read"),
    (r"^(INSERT|UPDATE|DELETE|MERGE|UPSERT|REPLACE|COPY|LOAD|CALL|EXEC|EXECUTE|DO)\b", "write"),
    (r"^(CREATE|ALTER|DROP|TRUNCATE|RENAME|COMMENT)\b", "schema"),
    (r"^(GRANT|REVOKE)\b", "permission"),
]
# google.rpc / Connect status codes, for ``error``
STATUS_NAMES = {
    1: "canceled", 2: "unknown", 3: "invalid_argument", 4: "deadline_exceeded",
    5: "not_found", 6: "already_exists", 7: "permission_denied", 8: "resource_exhausted",
    9: "failed_precondition", 10: "aborted", 11: "out_of_range", 12: "unimplemented",
    13: "internal", 14: "unavailable", 15: "data_loss", 16: "unauthenticated",
}
SERVICE_ACCOUNT = r"^(serviceAccounts|workloadIdentities)/|@(service|workload)\.bytebase\.com$"
EMAIL = r"^(?:users/|serviceAccounts/|workloadIdentities/)?([^/@\s]+@[^/@\s]+)$"
INSTANCE_DATABASE = r"(?:^|/)instances/([^/]+)(?:/databases/([^/]+))?"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S%.f%#z"  # RFC 3339 with T replaced, or pg's '-07'
NAIVE_FORMAT = "%Y-%m-%d %H:%M:%S%.f"
TRUNCATED = "...[truncated]"

_METHOD = re.compile(rb'"method"\s*:\s*"(?:/bytebase\.v1\.|bb\.)')
_STDOUT = re.compile(rb'^\{.*"log_type"\s*:\s*"audit"', re.MULTILINE)  # a stream after a banner
_TABLE = r'(?:"?public"?\.)?"?audit_log"?'
_DUMP = re.compile(rf"^(?:INSERT INTO|COPY) {_TABLE}[ (]".encode(), re.MULTILINE)
INSERT_RE = rf"(?i)^INSERT INTO {_TABLE}\s*(?:\((?P<cols>[^)]*)\)\s*)?VALUES\s*(?P<rest>.*)$"
COPY_RE = rf"(?i)^COPY {_TABLE}\s*(?:\((?P<cols>[^)]*)\)\s*)?FROM stdin"
ANY_COPY_RE = r"(?i)^COPY \S+.* FROM stdin"
_TUPLE = r"\((?:'(?:[^']|'')*'|[^'()])*\)"
TUPLES_RE = rf"^((?:\s*,?\s*{_TUPLE})+)"
LITERAL_RE = r"'(?:[^']|'')*'|[^,\s()']+"
DEFAULT_COLUMNS = "id, created_at, payload"  # Bytebase's table order (pg_dump without names)
# COPY text escapes, applied after ``\\``
COPY_ESCAPES = {r"\t": "\t", r"\n": "\n", r"\r": "\r", r"\b": "\b", r"\f": "\f", r"\v": "\v"}
_BACKSLASH = "\x00"


def detect(head: bytes) -> bool:
    """Bytebase audit JSON (API, export, stdout) or a dump with ``audit_log`` rows of it."""
    if not _METHOD.search(head):
        return False
    if head.lstrip()[:1] in (b"{", b"[") or _STDOUT.search(head):
        return True
    return bool(_DUMP.search(head))


# --- dumps -------------------------------------------------------------------------------------


def _unescape_copy(value: pl.Expr) -> pl.Expr:
    """A COPY text field as stored: ``\\\\`` -> ``\\``, ``\\t`` -> TAB, ``\\N`` -> null."""
    text = value.str.replace_all("\\\\", _BACKSLASH, literal=True)
    for escaped, char in COPY_ESCAPES.items():
        text = text.str.replace_all(escaped, char, literal=True)
    text = text.str.replace_all(_BACKSLASH, "\\", literal=True)
    return pl.when(value == r"\N").then(None).otherwise(text)


def _unquote(literal: pl.Expr) -> pl.Expr:
    """A SQL literal's value: ``'it''s'`` -> ``it's``, ``NULL`` -> null, numbers as text."""
    quoted = literal.str.starts_with("'")
    inner = literal.str.slice(1, literal.str.len_chars() - 2).str.replace_all("''", "'")
    return (
        pl.when(quoted).then(inner)
        .when(literal.str.to_uppercase() == "NULL").then(None)
        .otherwise(literal)
    )


def _column_positions(columns: pl.Series) -> pl.DataFrame:
    """Per distinct column list: where ``id``, the time and ``payload`` are (a few lists)."""
    rows = []
    for cols in columns.unique().to_list():
        names = [c.strip().strip('"').lower() for c in (cols or DEFAULT_COLUMNS).split(",")]
        time_name = next((n for n in ("created_at", "created_ts") if n in names), None)
        rows.append({
            "_cols": cols,
            "_id_at": names.index("id") if "id" in names else None,
            "_payload_at": names.index("payload") if "payload" in names else None,
            "_time_at": names.index(time_name) if time_name else None,
            "_epoch": time_name == "created_ts",
        })
    schema = {"_cols": S, "_id_at": pl.Int64, "_payload_at": pl.Int64, "_time_at": pl.Int64,
              "_epoch": pl.Boolean}
    return pl.DataFrame(rows, schema=schema)


def dump_records(text: str) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """``audit_log`` rows of a SQL dump: (_pos, _raw, row_id, created, epoch, payload),
    rejected rows (_pos, _raw, reason), and the number of other non-blank lines."""
    lines = pl.DataFrame({"_raw": pl.Series(text.split("\n"), dtype=S)}).with_columns(
        _raw=pl.col("_raw").str.strip_suffix("\r"),
        _pos=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
    )
    raw = pl.col("_raw")
    any_copy = raw.str.contains(ANY_COPY_RE)
    our_copy = raw.str.contains(COPY_RE)
    # state after each line: 1 in an audit_log COPY block, 2 in another table's, 0 outside
    marker = (
        pl.when(our_copy).then(pl.lit(1))
        .when(any_copy).then(pl.lit(2))
        .when(raw == r"\.").then(pl.lit(0))
    )
    lines = lines.with_columns(
        _state=marker.forward_fill().shift(1).fill_null(0),
        _insert=raw.str.extract_groups(INSERT_RE),
        _copy_cols=pl.when(our_copy).then(
            raw.str.extract(COPY_RE, 1).fill_null(DEFAULT_COLUMNS)).forward_fill(),
    )
    in_copy = (pl.col("_state") == 1) & (raw != r"\.")
    is_insert = pl.col("_insert").struct.field("rest").is_not_null()
    copy_rows = lines.filter(in_copy).select(
        "_pos", "_raw", _cols=pl.col("_copy_cols"),
        _values=raw.str.split("\t").list.eval(_unescape_copy(pl.element())),
    )
    inserts = lines.filter(is_insert & (pl.col("_state") == 0)).with_columns(
        _cols=pl.col("_insert").struct.field("cols"),
        _tuples=pl.col("_insert").struct.field("rest").str.extract(TUPLES_RE, 1)
        .str.extract_all(_TUPLE),
    )
    bad_inserts = inserts.filter(pl.col("_tuples").list.len().fill_null(0) == 0).select(
        "_pos", "_raw", reason=pl.lit("INSERT INTO audit_log row not understood"),
    )
    insert_rows = (
        inserts.filter(pl.col("_tuples").list.len().fill_null(0) > 0)
        .explode("_tuples")
        .select(
            "_pos", "_raw", "_cols",
            _values=pl.col("_tuples").str.slice(1, pl.col("_tuples").str.len_chars() - 2)
            .str.extract_all(LITERAL_RE).list.eval(_unquote(pl.element())),
        )
    )
    rows = pl.concat([copy_rows, insert_rows]).sort("_pos", maintain_order=True)
    rows = rows.join(_column_positions(rows.get_column("_cols")), on="_cols", how="left",
                     nulls_equal=True)
    values = pl.col("_values")
    rows = rows.with_columns(
        row_id=values.list.get(pl.col("_id_at"), null_on_oob=True),
        created=values.list.get(pl.col("_time_at"), null_on_oob=True),
        payload=values.list.get(pl.col("_payload_at"), null_on_oob=True),
    )
    no_payload = pl.col("payload").is_null() | ~pl.col("payload").str.starts_with("{")
    rejected = pl.concat([
        bad_inserts,
        rows.filter(no_payload).select(
            "_pos", "_raw", reason=pl.lit("audit_log row without a JSON payload column")
        ),
    ])
    others = lines.filter(~in_copy & ~is_insert & (raw.str.strip_chars() != "")).height
    kept = rows.filter(~no_payload).select(
        "_pos", "_raw", "row_id", "created", _epoch="_epoch", payload="payload"
    )
    return kept, rejected, others


# --- containers and decoding -----------------------------------------------------------------


def _ndjson(texts: pl.Series, schema: dict[str, pl.DataType]) -> pl.DataFrame | None:
    """Decode one JSON object per value (null/blank -> nulls), or None if any does not fit."""
    blank = texts.str.strip_chars().fill_null("") == ""
    try:
        decoded = pl.select(
            pl.when(~blank).then(texts).str.json_decode(pl.Struct(schema)).alias("_d")
        )
    except pl.exceptions.PolarsError:
        return None
    return decoded.unnest("_d")


def decode_objects(texts: pl.Series, *schemas: dict[str, pl.DataType]
                   ) -> tuple[pl.DataFrame, pl.Series]:
    """Decoded fields of each text (first schema that fits all) and each text's reason for
    failing (null when decoded; failed texts decode as nulls).

    One Polars read for the whole column. Only when no schema fits does the error path run: each
    text is checked in Python (invalid JSON, not an object) and the valid ones read again; if
    they still do not fit, the misfits (fields of unexpected types) are found by reading halves
    and the schema most texts fit decodes the rest.
    """
    for schema in schemas:
        fields = _ndjson(texts, schema)
        if fields is not None:
            return fields, pl.Series("reason", [None] * texts.len(), dtype=S)
    values = texts.to_list()
    reasons = [None if t is None else invalid_record_reason(t) for t in values]
    valid = pl.select(pl.when(pl.Series(reasons, dtype=S).is_null()).then(texts)).to_series()
    for schema in schemas:  # usually the invalid JSON was all that failed
        fields = _ndjson(valid, schema)
        if fields is not None:
            return fields, pl.Series("reason", reasons, dtype=S)
    fits = [_fitting(valid, schema) for schema in schemas]
    best = max(range(len(schemas)), key=lambda i: sum(fits[i]))
    reasons = [
        reason or (None if fit else "fields of unexpected types for the Bytebase audit schema")
        for reason, fit in zip(reasons, fits[best], strict=True)
    ]
    reasons_series = pl.Series("reason", reasons, dtype=S)
    valid = pl.select(pl.when(reasons_series.is_null()).then(texts)).to_series()
    fields = _ndjson(valid, schemas[best])
    if fields is None:  # every text fits on its own: cannot happen
        raise pl.exceptions.ComputeError("records decode one by one but not together")
    return fields, reasons_series


def _fitting(texts: pl.Series, schema: dict[str, pl.DataType]) -> list[bool]:
    """Which texts decode with ``schema``: halves are read until the misfits are isolated (a few
    reads per misfit, not one per text)."""
    if _ndjson(texts, schema) is not None:
        return [True] * texts.len()
    if texts.len() == 1:
        return [False]
    half = texts.len() // 2
    return _fitting(texts.head(half), schema) + _fitting(texts.slice(half), schema)


def document_records(body: str) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """``_pos``, ``_raw`` and ``RECORD`` fields of one JSON document (an array, an
    ``auditLogs`` page), or None when ``body`` is JSON lines or a single object.

    The document is decoded in one read, the records as typed structs (never re-serialised
    text); a document that does not fit is decoded in Python (the error path) and its records
    re-encoded as lines.
    """
    if body.startswith("["):
        wrapped = '{"auditLogs":' + body + "}"
    elif body.startswith("{") and not is_json_lines(body) and '"auditLogs"' in body[:4096]:
        wrapped = body
    else:
        return None
    for schema in (RECORD, EXPORT_RECORD):
        try:
            page = pl.read_json(io.BytesIO(wrapped.encode()), schema={"auditLogs": pl.List(
                pl.Struct(schema))})
        except pl.exceptions.PolarsError:
            continue
        if page.height != 1:
            break
        if page.get_column("auditLogs").null_count():  # "auditLogs" was not the key
            return None
        records = page.explode("auditLogs").with_columns(
            _pos=pl.int_range(1, pl.len() + 1, dtype=pl.Int64))
        nulls = records.filter(pl.col("auditLogs").is_null()).select(
            "_pos", _raw=pl.lit("null"), reason=pl.lit("record is not a JSON object"))
        records = records.filter(pl.col("auditLogs").is_not_null())
        if records.height == 0:
            return pl.DataFrame(schema={"_pos": pl.Int64, "_raw": S, **schema}), nulls
        return records.select(
            "_pos",
            _raw=pl.col("auditLogs").struct.json_encode(),
            fields=pl.col("auditLogs"),
        ).unnest("fields"), nulls
    document = json.loads(body)  # the error path; invalid JSON raises, with its position
    elements = document.get("auditLogs") if isinstance(document, dict) else document
    if not isinstance(elements, list):
        return None
    return record_lines(_numbered(pl.Series([json.dumps(e) for e in elements], dtype=S)))


def record_lines(frame: pl.DataFrame, column: str = "_raw"
                 ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``frame`` (``_pos``, ``_raw``, ...) with the ``RECORD`` fields decoded from ``column``
    (one JSON record per value), and the rejected rows (``_pos``, ``_raw``, ``reason``)."""
    fields, reasons = decode_objects(frame.get_column(column), RECORD, EXPORT_RECORD)
    base = frame if column == "_raw" else frame.drop(column)
    frame = pl.concat([base, fields], how="horizontal").with_columns(_bad=reasons)
    rejected = frame.filter(pl.col("_bad").is_not_null()).select(
        "_pos", "_raw", reason=pl.col("_bad"))
    return frame.filter(pl.col("_bad").is_null()).drop("_bad"), rejected


def _numbered(texts: pl.Series) -> pl.DataFrame:
    return pl.DataFrame({"_raw": texts.cast(S)}).with_columns(
        _pos=pl.int_range(1, pl.len() + 1, dtype=pl.Int64)).select("_pos", "_raw")


def flatten(fields: pl.DataFrame) -> pl.DataFrame:
    """One flat column set for every shape: ``status_code``/``status_message``, ``client_ip``,
    ``user_agent``, ``mcp*``, ``policy_delta`` (from the API/store structs or the stdout keys)."""
    status = pl.col("status")
    if fields.schema["status"] == S:  # export: proto text
        code = status.str.extract(r"code:\s*(\d+)", 1)
        message = status.str.extract(r'message:\s*"((?:[^"\\]|\\.)*)"', 1)
    else:
        code, message = status.struct.field("code"), status.struct.field("message")
    meta, mcp = pl.col("requestMetadata"), pl.col("mcpDelegation")
    return fields.with_columns(
        status_code=pl.coalesce(pl.col("status_code"), code).cast(pl.Int64, strict=False),
        status_message=pl.coalesce(blank_null(pl.col("status_message")), blank_null(message)),
        client_ip=pl.coalesce(meta.struct.field("callerIp"), pl.col("client_ip")),
        user_agent=pl.coalesce(meta.struct.field("callerSuppliedUserAgent"),
                               pl.col("user_agent")),
        mcp=pl.coalesce(pl.col("mcp"), pl.when(mcp.is_not_null()).then(pl.lit("true"))),
        mcp_correlation_id=pl.coalesce(pl.col("mcp_correlation_id"),
                                       mcp.struct.field("correlationId")),
        mcp_client_id=pl.coalesce(pl.col("mcp_client_id"), mcp.struct.field("clientId")),
        mcp_scope=pl.coalesce(pl.col("mcp_scope"), mcp.struct.field("scope")),
        policy_delta=pl.col("serviceData").struct.field("policyDelta")
        .struct.field("bindingDeltas"),
    ).drop("status", "requestMetadata", "mcpDelegation", "serviceData")


def request_fields(frame: pl.DataFrame) -> pl.DataFrame:
    """``rq_<key>`` columns of the request JSON string and ``rq_unparsed``."""
    raw = frame.get_column("request")
    texts = pl.select(pl.when(raw.str.ends_with(TRUNCATED)).then(None).otherwise(raw)).to_series()
    fields, reasons = decode_objects(texts, REQUEST)
    unparsed = (reasons.is_not_null() | raw.str.ends_with(TRUNCATED)).fill_null(False)
    return fields.rename({k: f"rq_{k}" for k in REQUEST}).with_columns(rq_unparsed=unparsed)


def response_fields(frame: pl.DataFrame) -> pl.DataFrame:
    """``rs_results`` (current builds), ``rs_results_boolean`` (boolean masks), ``rs_user``,
    ``rs_appliedAccessGrant``, ``rs_allowExport`` and ``rs_unparsed`` of the response."""
    raw = frame.get_column("response")
    texts = pl.select(pl.when(raw.str.ends_with(TRUNCATED)).then(None).otherwise(raw)).to_series()
    boolean = texts.str.contains(BOOLEAN_MASKS).fill_null(False)
    current, bad_current = decode_objects(
        pl.select(pl.when(~boolean).then(texts)).to_series(), RESPONSE)
    older, bad_older = decode_objects(
        pl.select(pl.when(boolean).then(texts)).to_series(), RESPONSE_BOOLEAN_MASKS)
    unparsed = (bad_current.is_not_null() | bad_older.is_not_null()
                | raw.str.ends_with(TRUNCATED)).fill_null(False)
    merged = pl.concat(
        [current.select(pl.all().exclude("results")).select(pl.all().name.suffix("_a")),
         older.select(pl.all().exclude("results")).select(pl.all().name.suffix("_b"))],
        how="horizontal",
    ).select(
        pl.coalesce(f"{k}_a", f"{k}_b").alias(f"rs_{k}") for k in RESPONSE if k != "results"
    )
    return merged.with_columns(
        rs_results=current.get_column("results"),
        rs_results_boolean=older.get_column("results"),
        rs_unparsed=unparsed,
    )


# --- mapping ----------------------------------------------------------------------------------


def blank_null(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.str.strip_chars() == "").then(None).otherwise(expr)


def call() -> pl.Expr:
    """``Service/Method`` of ``/bytebase.v1.Service/Method`` (what the rules match); other
    actions as written."""
    method = pl.col("method")
    return pl.coalesce(method.str.extract(r"^/?bytebase\.v\d+\.(\w+/\w+)$", 1), method)


def statement_category(statement: pl.Expr) -> pl.Expr:
    """``STATEMENT_CATEGORIES`` by the first keyword (after comments and parentheses)."""
    head = statement.str.replace(r"^(?s)(?:\s+|--[^\n]*\n?|/\*.*?\*/|\()*", "").str.to_uppercase()
    rules = [pl.when(head.str.contains(p)).then(pl.lit(c)) for p, c in STATEMENT_CATEGORIES]
    return pl.coalesce(*rules, pl.lit("other"))


def category() -> pl.Expr:
    """``CATEGORY_RULES`` on the action, the statement where a rule says None; else other."""
    act, by_statement = pl.col("_call"), statement_category(pl.col("statement"))
    rules = [
        pl.when(act.str.contains(pattern)).then(by_statement if cat is None else pl.lit(cat))
        for pattern, cat in CATEGORY_RULES
    ]
    return pl.coalesce(*rules, pl.lit("other"))


def outcome() -> tuple[pl.Expr, pl.Expr]:
    """failure on a non-zero status code or a query result error, else success."""
    code = pl.col("status_code")
    names = code.replace_strict(STATUS_NAMES, default=None, return_dtype=S)
    label = pl.coalesce(names, pl.lit("code ") + code.cast(S))
    failed = (code.fill_null(0) != 0) | pl.col("_query_errors").list.len().fill_null(0).gt(0)
    error = pl.when(code.fill_null(0) != 0).then(
        pl.when(pl.col("status_message").is_not_null())
        .then(label + pl.lit(": ") + pl.col("status_message")).otherwise(label)
    ).otherwise(pl.col("_query_errors").list.first())
    return pl.when(failed).then(pl.lit("failure")).otherwise(pl.lit("success")), error


def actor() -> tuple[pl.Expr, pl.Expr]:
    """(actor, where it came from): ``user``; for a login without one, the user the response
    names (what Bytebase records as ``user`` when it has it), else the email tried
    (``resource``, a failed login)."""
    user = blank_null(pl.col("user"))
    auth = pl.col("_call").str.starts_with("AuthService/")
    from_response = pl.when(user.is_null() & auth).then(
        blank_null(pl.col("rs_user").struct.field("name")))
    from_resource = pl.when(user.is_null() & from_response.is_null() & auth
                            & pl.col("resource").str.contains("@")).then(pl.col("resource"))
    source = (pl.when(from_response.is_not_null()).then(pl.lit("response"))
              .when(from_resource.is_not_null()).then(pl.lit("resource")))
    return pl.coalesce(user, from_response, from_resource), source


def src_ip() -> pl.Expr:
    """The first address of callerIp/client_ip (a proxy chain), without its port."""
    first = pl.col("_caller_ip").str.split(",").list.first().str.strip_chars()
    return (
        pl.when(first.str.contains(r"^\d+\.\d+\.\d+\.\d+:\d+$"))
        .then(first.str.extract(r"^([\d.]+):", 1))
        .when(first.str.contains(r"^\[.+\]:\d+$"))
        .then(first.str.extract(r"^\[(.+)\]:", 1))
        .otherwise(blank_null(first))
    )


def object_type(resource: pl.Expr) -> pl.Expr:
    """``projects/p/issues/12`` -> ``issue``: the last collection, singular."""
    kind = resource.str.extract(r"([A-Za-z]+)/[^/]+$", 1)
    return kind.str.replace(r"ies$", "y").str.replace(r"s$", "").str.to_lowercase()


def latency_ms() -> pl.Expr:
    """Milliseconds from ``"0.012s"`` (API), stdout ``latency_ms``, else the query results'."""
    seconds = pl.col("latency").str.strip_suffix("s").cast(pl.Float64, strict=False)
    return pl.coalesce(pl.col("latency_ms").cast(pl.Float64, strict=False), seconds * 1000,
                       pl.col("_result_latency_ms"))


def _mapping() -> dict[str, pl.Expr]:
    state, error = outcome()
    _, who_from = actor()
    sql = pl.col("_call").str.starts_with("SQLService/")
    located = pl.coalesce(blank_null(pl.col("rq_name")), pl.col("resource"))
    instance_db = located.str.extract_groups(INSTANCE_DATABASE)
    service_account = pl.col("_actor").str.contains(SERVICE_ACCOUNT).fill_null(False)
    iam = pl.col("_call").str.ends_with("/SetIamPolicy")
    auth = pl.col("_call").str.starts_with("AuthService/")
    delta = pl.when(pl.col("policy_delta").list.len() > 0).then(pl.col("policy_delta"))
    caller_ip = pl.col("_caller_ip")
    return {
        "time": pl.col("_time"),
        "source": pl.lit("bytebase"),
        "layer": pl.lit("workflow"),
        "category": category(),
        "action": pl.col("method"),
        "outcome": state,
        "error": error,
        "actor": pl.col("_actor"),
        "actor_type": pl.when(service_account).then(pl.lit("service_account"))
        .otherwise(pl.lit("gateway_user")),
        "person": pl.when(~service_account).then(
            pl.coalesce(pl.col("_actor").str.extract(EMAIL, 1),
                        pl.when(auth).then(pl.col("rs_user").struct.field("email")))
        ),
        "src_ip": src_ip(),
        "client_app": blank_null(pl.col("user_agent")),
        "target": instance_db.struct.field("1"),
        "database": instance_db.struct.field("2"),
        "object": pl.when(~sql & ~auth).then(blank_null(pl.col("resource"))),
        "object_type": pl.when(~sql & ~auth & iam).then(pl.lit("iam_policy"))
        .when(~sql & ~auth).then(object_type(pl.col("resource"))),
        "statement": pl.when(sql).then(blank_null(pl.col("rq_statement"))),
        "rows": pl.col("_rows"),
        "event_id": pl.coalesce(
            blank_null(pl.col("name")),
            pl.when(pl.col("row_id").is_not_null() & pl.col("parent").is_not_null())
            .then(pl.col("parent") + pl.lit("/auditLogs/") + pl.col("row_id")),
            pl.col("_fallback_id"),
        ),
        "raw_ref": pl.col("_raw_ref"),
        "extra": extra_json(
            method=pl.col("method"),
            parent=pl.col("parent"),
            severity=pl.col("severity"),
            latency_ms=latency_ms(),
            log_shape=pl.col("_shape"),
            status_code=pl.when(pl.col("status_code") != 0).then(pl.col("status_code")),
            masked_columns=pl.col("_masked_columns"),
            masking=pl.col("_masking"),
            sensitive_columns=pl.col("_sensitive_columns"),
            query_errors=pl.col("_query_errors"),
            executed_statement=pl.when(
                pl.col("_executed") != pl.col("rq_statement")).then(pl.col("_executed")),
            admin=flag(pl.col("rq_admin")),
            limit=pl.col("rq_limit").cast(pl.Int64, strict=False),
            data_source_id=blank_null(pl.col("rq_dataSourceId")),
            applied_access_grant=blank_null(pl.col("rs_appliedAccessGrant")),
            allow_export=flag(pl.col("rs_allowExport")),
            policy_delta=pl.when(iam).then(delta),
            policy_bindings=pl.when(iam & delta.is_null()).then(
                pl.col("rq_policy").struct.field("bindings")),
            request=pl.when(~sql).then(blank_null(pl.col("request"))),
            logged_in_user=pl.when(auth).then(pl.col("rs_user").struct.field("name")),
            actor_from=who_from,
            caller_ip=pl.when(caller_ip != src_ip()).then(caller_ip),
            mcp=flag(pl.col("mcp")),
            mcp_correlation_id=pl.col("mcp_correlation_id"),
            mcp_client_id=pl.col("mcp_client_id"),
            mcp_scope=pl.col("mcp_scope"),
            truncated=pl.when(pl.col("request").str.ends_with(TRUNCATED)
                              | pl.col("response").str.ends_with(TRUNCATED)).then(True),
            request_unparsed=pl.when(pl.col("rq_unparsed")).then(True),
            response_unparsed=pl.when(pl.col("rs_unparsed")).then(True),
            row_id=pl.col("row_id").cast(pl.Int64, strict=False),
            tz_assumed=pl.when(pl.col("_tz_assumed")).then(True),
        ),
    }


# schema column -> expression over the flattened record (``RECORD`` via ``flatten``), the
# request's ``rq_*`` and response's ``rs_*`` keys, the results summary (``_rows``,
# ``_masked_columns``, ``_masking``, ``_sensitive_columns``, ``_query_errors``, ``_executed``,
# ``_result_latency_ms``) and the per-file helpers ``_time``, ``_tz_assumed``, ``_actor``,
# ``_caller_ip``, ``_shape``, ``_raw_ref``, ``_fallback_id``
MAPPING: dict[str, pl.Expr] = _mapping()


def _result_rows(fields: pl.DataFrame, column: str, boolean: bool) -> pl.DataFrame:
    """One row per query result: column names, masked flags and reasons, rows, error."""
    r = pl.col("r")
    masked = r.struct.field("masked")
    if boolean:
        flags, reasons = masked, pl.lit(None, pl.List(MASKING_REASON))
    else:
        # an unmasked column has an empty MaskingReason
        any_field = pl.any_horizontal(
            pl.element().struct.field(f).fill_null("") != "" for f in MASKING_FIELDS)
        flags, reasons = masked.list.eval(any_field), masked
    return (
        fields.select("_i", r=pl.col(column))
        .explode("r")
        .filter(r.is_not_null())
        .select(
            "_i",
            names=r.struct.field("columnNames"),
            flags=flags,
            reasons=reasons,
            sensitive=r.struct.field("sensitive"),
            rows=r.struct.field("rowsCount").cast(pl.Int64, strict=False),
            error=blank_null(r.struct.field("error")),
            statement=r.struct.field("statement"),
            latency_ms=r.struct.field("latency").str.strip_suffix("s")
            .cast(pl.Float64, strict=False) * 1000,
        )
    )


def results_summary(fields: pl.DataFrame) -> pl.DataFrame:
    """Per record (``_i``): rows, masked/sensitive columns, masking reasons, query errors,
    latency and the executed statement, from the response's ``results``."""
    results = pl.concat([_result_rows(fields, "rs_results", boolean=False),
                         _result_rows(fields, "rs_results_boolean", boolean=True)])
    masked_at = pl.col("flags").list.eval(pl.element().arg_true())
    sensitive_at = pl.col("sensitive").list.eval(pl.element().arg_true())
    results = results.with_columns(
        masked_columns=pl.col("names").list.gather(masked_at, null_on_oob=True),
        masked_reasons=pl.col("reasons").list.gather(masked_at, null_on_oob=True),
        sensitive_columns=pl.col("names").list.gather(sensitive_at, null_on_oob=True),
    )
    reason = pl.col("reason")
    masking = (
        results.filter(pl.col("masked_reasons").is_not_null())
        .select("_i", column="masked_columns", reason="masked_reasons")
        .explode(["column", "reason"])
        .filter(reason.is_not_null())
        .select(
            "_i",
            m=pl.struct(
                column=pl.col("column"),
                semantic_type_id=blank_null(reason.struct.field("semanticTypeId")),
                semantic_type_title=blank_null(reason.struct.field("semanticTypeTitle")),
                masking_rule_id=blank_null(reason.struct.field("maskingRuleId")),
                algorithm=blank_null(reason.struct.field("algorithm")),
                context=blank_null(reason.struct.field("context")),
                classification_level=blank_null(reason.struct.field("classificationLevel")),
            ),
        )
        .group_by("_i", maintain_order=True)
        .agg(_masking=pl.col("m"))
    )
    flat = {"keep_nulls": False, "empty_as_null": False}
    summary = results.group_by("_i", maintain_order=True).agg(
        _rows=pl.when(pl.col("rows").count() > 0).then(pl.col("rows").sum()),
        _result_latency_ms=pl.when(pl.col("latency_ms").count() > 0)
        .then(pl.col("latency_ms").sum()),
        _masked_columns=pl.col("masked_columns").list.explode(**flat).unique(maintain_order=True),
        _sensitive_columns=pl.col("sensitive_columns").list.explode(**flat)
        .unique(maintain_order=True),
        _query_errors=pl.col("error").drop_nulls(),
        _executed=pl.col("statement").drop_nulls().first(),
    )
    lists = ("_masked_columns", "_sensitive_columns", "_query_errors")
    summary = summary.with_columns(  # empty lists as null: extra leaves them out
        pl.when(pl.col(c).list.len() > 0).then(pl.col(c)).alias(c) for c in lists
    )
    return summary.join(masking, on="_i", how="left")


def parse_time(text: pl.Expr, epoch: pl.Expr, tz: str) -> tuple[pl.Expr, pl.Expr]:
    """(UTC time, zone assumed) from RFC 3339, pg's ``2024-07-10 19:50:55-07``, epoch seconds,
    or a time without a zone (read in ``tz``)."""
    spaced = text.str.strip_chars().str.replace("T", " ", literal=True)
    zoned = spaced.str.to_datetime(TIME_FORMAT, time_zone="UTC", strict=False)
    naive = (
        spaced.str.to_datetime(NAIVE_FORMAT, strict=False)
        .dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    seconds = pl.when(epoch & text.str.contains(r"^\d+$")).then(
        pl.from_epoch(text.cast(pl.Int64, strict=False), time_unit="s").dt.replace_time_zone(
            "UTC"))
    time = pl.coalesce(zoned, seconds, naive).dt.cast_time_unit("us")
    return time, zoned.is_null() & seconds.is_null() & naive.is_not_null()


def quarantine_rows(rejected: pl.DataFrame, ctx: FileContext) -> pl.DataFrame:
    return rejected.select(
        file=pl.lit(ctx.display),
        line=pl.col("_pos").cast(pl.Int64),
        format=pl.lit("bytebase"),
        reason=pl.col("reason"),
        raw=pl.col("_raw"),
    ).cast(QUARANTINE_SCHEMA)


REJECTED = {"_pos": pl.Int64, "_raw": S, "reason": S}
_DUMP_TEXT = re.compile(_DUMP.pattern.decode(), re.MULTILINE)


def _json_fields(text: str, notes: list[str]) -> tuple[pl.DataFrame, list[pl.DataFrame], int]:
    """Records of a JSON file (document or lines), rejected ones, and skipped text lines."""
    body = text.strip()
    document = document_records(body)
    if document is not None:
        notes.append("a JSON document: positions are record numbers")
        return document[0], [document[1]], 0
    if body.startswith("{") and not is_json_lines(body):  # one record, maybe pretty-printed
        fields, rejected = record_lines(_numbered(pl.Series([one_line(body).decode()])))
        return fields, [rejected], 0
    lines = json_lines(text).with_columns(_raw=pl.col("_raw").str.strip_chars())
    is_page = pl.col("_raw").str.contains(r'^\{\s*"auditLogs"\s*:')
    pages = [_page_line(line, page)
             for line, page in lines.filter(is_page).select("_pos", "_raw").iter_rows()]
    lines = lines.filter(~is_page)
    is_object = pl.col("_raw").str.starts_with("{")
    # a stream's banner and text log lines are not records, unless they name an audit method
    stray = lines.filter(~is_object)
    named = stray.get_column("_raw").str.contains(r"bytebase\.v\d+\.|log_type")
    rejected = stray.filter(named).select(
        "_pos", "_raw", reason=pl.lit("record is not a JSON object"))
    objects = lines.filter(is_object)
    fields, bad = record_lines(objects.select("_pos", "_raw"))
    fields = pl.concat([fields, *(page[0] for page in pages)], how="diagonal_relaxed")
    bad_pages = [page[1] for page in pages]
    return fields, [rejected, bad, *bad_pages], stray.height - int(named.sum())


def _page_line(line: int, page: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The records of one ``{"auditLogs":[...]}`` page written as a line (a page script's
    output, one line per page of up to 5000 records): positions are the line."""
    try:
        found = document_records(page)
    except json.JSONDecodeError as exc:
        found = None
        reason = f"invalid JSON ({exc})"
    else:
        reason = "auditLogs is not a list"
    if found is None:
        rejected = pl.DataFrame({"_pos": [line], "_raw": [page], "reason": [reason]},
                                schema=REJECTED)
        return pl.DataFrame(schema={"_pos": pl.Int64, "_raw": S}), rejected
    return tuple(frame.with_columns(_pos=pl.lit(line, pl.Int64)) for frame in found)


def read(text: str, ctx: FileContext) -> Parsed:
    """Parse any Bytebase audit log shape into events (see the module docstring)."""
    notes: list[str] = []
    rejected = [pl.DataFrame(schema=REJECTED)]
    skipped_text = 0
    if text.lstrip()[:1] in ("{", "[") or not _DUMP_TEXT.search(text):
        try:
            fields, bad, skipped_text = _json_fields(text, notes)
        except json.JSONDecodeError as exc:
            raise InputError(ctx.path, f"not a valid JSON document ({exc.msg})",
                             position=f"{exc.lineno}:{exc.colno}") from None
        except pl.exceptions.PolarsError as exc:
            raise InputError(ctx.path, f"not a Bytebase audit JSON document ({exc})") from None
        rejected.extend(bad)
        fields = fields.with_columns(row_id=pl.lit(None, S), created=pl.lit(None, S),
                                     _epoch=pl.lit(False))
    else:
        rows, bad_rows, others = dump_records(text)
        fields, bad = record_lines(rows, "payload")
        rejected.extend([bad_rows, bad])
        if others:
            notes.append(f"{others} other dump lines (DDL, other tables) are not audit records")
    if skipped_text and fields.height == 0 and not any(frame.height for frame in rejected):
        raise InputError(ctx.path, "no Bytebase audit records: not JSON and no audit_log "
                         "INSERT/COPY rows", position="1")
    fields = flatten(fields)
    # the other lines of a stdout stream (application logs) are not audit records
    app_log = (pl.col("method").is_null() & (pl.col("log_type").fill_null("") != "audit")
               & (pl.col("level").is_not_null() | pl.col("msg").is_not_null()))
    skipped_json = fields.filter(app_log).height
    fields = fields.filter(~app_log)
    if skipped_json or skipped_text:
        notes.append(f"{skipped_json + skipped_text} non-audit lines of the log stream skipped "
                     f"({skipped_json} JSON application log lines, {skipped_text} text lines)")
    stamp = pl.coalesce(pl.col("createTime"), pl.col("time"), pl.col("created"))
    time, tz_assumed = parse_time(stamp, pl.col("_epoch"), ctx.tz)
    reason = (
        pl.when(blank_null(pl.col("method")).is_null()).then(pl.lit("no method"))
        .when(stamp.is_null()).then(pl.lit("no time (createTime/time/created_at)"))
        .when(pl.col("_time").is_null()).then(pl.lit("unparseable time"))
    )
    fields = fields.with_columns(_time=time, _tz_assumed=tz_assumed).with_columns(_reason=reason)
    rejected.append(fields.filter(pl.col("_reason").is_not_null()).select(
        "_pos", "_raw", reason=pl.col("_reason")))
    fields = fields.filter(pl.col("_reason").is_null()).with_row_index("_i")
    fields = pl.concat([fields, request_fields(fields), response_fields(fields)],
                       how="horizontal")
    position = pl.col("_pos").cast(S)
    shape = (
        pl.when(pl.col("log_type") == "audit").then(pl.lit("stdout"))
        .when(pl.col("created").is_not_null()).then(pl.lit("store"))
        .when(pl.col("createTime").is_not_null() | pl.col("name").is_not_null())
        .then(pl.lit("api"))
        .otherwise(pl.lit("export"))
    )
    events = (
        fields.lazy()
        .join(results_summary(fields).lazy(), on="_i", how="left")
        .with_columns(_call=call(), statement=pl.col("rq_statement"))
        .with_columns(
            _actor=actor()[0],
            _caller_ip=blank_null(pl.col("client_ip")),
            _shape=shape,
            _raw_ref=pl.lit(ctx.display + ":") + position,
            _fallback_id=pl.lit(ctx.digest + ":") + position,
        )
        .select(**MAPPING)
        .collect()
    )
    bad = pl.concat(rejected, how="vertical_relaxed").sort("_pos", maintain_order=True)
    quarantine = quarantine_rows(bad, ctx)
    return Parsed(events=events, records=events.height + quarantine.height,
                  quarantine=quarantine, notes=notes)


register(
    Source(
        "bytebase",
        "Bytebase audit log: API/export JSON (arrays, auditLogs pages, NDJSON), stdout JSON "
        "stream, audit_log rows of a metadata-DB dump",
        detect,
        read,
        example="curl -X POST $BB/v1/auditLogs:search -d '{\"pageSize\":5000}' > audit.json, "
        "or turn on the workspace setting enable_audit_log_stdout and collect stdout",
        priority=15,
    )
)
