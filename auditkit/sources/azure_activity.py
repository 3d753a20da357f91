"""azure_activity: Azure Activity Log (control plane / ARM), all three shapes.

Shapes (one record each, mixed freely in one file):

- **REST / CLI** (``az monitor activity-log list``, the portal's JSON, ``{"value": [...]}``):
  ``operationName.value``, ``status.value``, ``subStatus.value``, ``caller``, ``claims``,
  ``eventTimestamp``, ``eventDataId``, ``httpRequest.clientIpAddress``, ``properties``.
- **Diagnostic export** (Storage blobs as JSON Lines or ``{"records": [...]}``, Event Hub
  batches ``{"records": [...]}``, also one wrapper per line): ``time``, ``operationName``,
  ``resultType``, ``resultSignature``, ``callerIpAddress``, ``identity.claims``,
  ``identity.authorization.evidence``, ``properties.requestbody``.
- **Log Analytics ``AzureActivity``** rows as JSON or CSV export: ``TimeGenerated``,
  ``OperationNameValue``, ``ActivityStatusValue``, ``Caller``, ``CallerIpAddress``,
  ``CorrelationId``, ``_ResourceId``, ``Properties_d``/``Properties``, ``Claims_d``/``Claims``.

Records are decoded in batches with an explicit schema built from the paths of ``FIELDS``
(``ENVELOPE_REST`` or ``ENVELOPE_FLAT``: ``operationName`` is an object in REST, a string in the
other shapes); free-form fields (``properties``, ``claims``) are read by JSON path as strings,
so a request body never shapes a schema and may be a string or an object. A batch holding a
record that does not fit (not JSON, ``identity`` as a plain string) or mixing REST and flat
records is read path by path (same result, slower).

**Operations.** One ARM operation writes several records sharing ``correlationId``: Start →
(Accept) → Success/Failure. *Every record is an event* (``records = events + quarantined``);
a Start/Accept record followed in the same file by a later record of the same (correlation id,
operation) is *superseded*: category ``other``, no risk, ``extra.superseded_by`` = the event id
of the operation's final record, which alone carries the operation's category, risk and final
outcome. Access and risk views therefore count each operation once. A Start whose end is not
in the file (still running, or in the next hourly blob) stays the action, outcome ``unknown``.

Mapping: ``action`` = operation name as recorded (catalogue matching is case-insensitive);
``outcome`` from the status (``STATUS_OUTCOME``); ``error`` = sub-status / result signature and
the ``statusMessage`` error code on failures; ``target`` = subscription (+ resource group) from
the resource id; ``object`` = resource name(s) after the last ``/providers/<namespace>/``,
``object_type`` from the resource type (``OBJECT_TYPES``); ``statement`` = the request body as
compact JSON (a body logged as a string is kept as written). Category from the catalogue
``auditkit/data/cloud_actions_azure.yml`` (which also flags risky actions; its ``when`` regexes
read ``{"resource":"<object>"} <body>``, see ``classify``), else ``OPERATION_CATEGORY``.

Identity: ``actor`` = ``caller``, else the token's UPN / name claim, else ``appid``, object id
or ``evidence.principalId``. ``actor_type``: ``iam_user`` for e-mail callers, ``service_account``
for service principals and managed identities (``principalType ServicePrincipal``,
``idtyp app``, ``xms_mirid``, an ``appid`` without a user claim, a GUID caller), ``system`` for
platform records without a caller (ResourceHealth, ServiceHealth, …) and ``Microsoft.*``
callers; a UPN claim wins over a contradicting ``principalType``. ``person`` = the caller when
it is a human e-mail.

Many files at once (``read_batch``, used by the read loop for folders: a Storage export writes a
blob per hour and resource): the JSON Lines files of a batch are split together and every record
is mapped in one pass, with the same results per file as ``read``; operations are linked within
their file.

Quarantined (file, position, reason): lines that are not JSON objects, records without an
operation name, Entra ID sign-in/audit records and other resource-log categories that travel
on the same Event Hub. Azure PostgreSQL server logs (``PostgreSQLLogs``) are left to pgaudit
(not detected here).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import polars as pl

from auditkit.schema import extra_json_rows
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
from auditkit.sources.gcp_audit import parse_time as parse_iso_time
from auditkit.sources.jsontext import (
    document_texts,
    escape_controls,
    json_lines,
    numbered_lines,
    read_ndjson,
)
from auditkit.sources.pg_log import is_envelope as is_pg_envelope

# flat field -> JSON paths into one record, first found wins (REST, export, Log Analytics)
FIELDS: dict[str, tuple[str, ...]] = {
    "event_time": ("$.eventTimestamp", "$.time", "$.TimeGenerated"),
    "submission_time": ("$.submissionTimestamp", "$.EventSubmissionTimestamp"),
    "result_type": ("$.resultType", "$.ActivityStatusValue", "$.ActivityStatus"),
    "result_signature": ("$.resultSignature", "$.ActivitySubstatusValue", "$.ActivitySubstatus"),
    "caller": ("$.caller", "$.Caller"),
    "caller_ip": ("$.httpRequest.clientIpAddress", "$.callerIpAddress", "$.CallerIpAddress"),
    "correlation_id": ("$.correlationId", "$.CorrelationId"),
    "operation_id": ("$.operationId", "$.OperationId"),
    "event_data_id": ("$.eventDataId", "$.EventDataId"),
    "resource_id": ("$.resourceId", "$._ResourceId", "$.ResourceId"),
    "level": ("$.level", "$.Level"),
    "location": ("$.location",),
    "tenant_id": ("$.tenantId",),
    "la_operation": ("$.OperationNameValue",),
    "la_category": ("$.CategoryValue",),
    "la_provider": ("$.ResourceProviderValue",),
    "principal_type": ("$.identity.authorization.evidence.principalType",),
    "principal_id": ("$.identity.authorization.evidence.principalId",),
    "role": ("$.identity.authorization.evidence.role",),
    # objects ``{"value": ...}`` in the REST shape (first path), strings in the others
    "operation": ("$.operationName.value", "$.operationName"),
    "category_raw": ("$.category.value", "$.category", "$.Category"),
    "status": ("$.status.value",),
    "sub_status": ("$.subStatus.value",),
    "event_name": ("$.eventName.value",),
    "provider": ("$.resourceProviderName.value",),
    # free-form (string or object): always read by path, as JSON strings
    "properties": ("$.properties", "$.Properties_d", "$.Properties"),
    "claims": ("$.claims", "$.identity.claims", "$.Claims_d", "$.Claims"),
    "http_request": ("$.HTTPRequest",),
}
REST_OBJECTS = frozenset(
    {"operation", "category_raw", "status", "sub_status", "event_name", "provider"}
)
BY_PATH = frozenset({"properties", "claims", "http_request"})
# token claims (inside the ``claims`` JSON) worth reading
CLAIMS: dict[str, tuple[str, ...]] = {
    "upn": ("$['http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn']", "$.upn"),
    "claim_name": ("$['http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name']",
                   "$.unique_name"),
    "app_id": ("$.appid", "$.azp"),
    "object_id": ("$['http://schemas.microsoft.com/identity/claims/objectidentifier']", "$.oid"),
    "identity_type": ("$.idtyp",),
    "managed_identity": ("$.xms_mirid",),
    "claims_ip": ("$.ipaddr",),
    "auth_methods": ("$['http://schemas.microsoft.com/claims/authnmethodsreferences']",),
}
PROPERTIES: dict[str, tuple[str, ...]] = {
    "request_body": ("$.requestbody", "$.requestBody"),
    "status_code": ("$.statusCode",),
    "status_message": ("$.statusMessage",),
}

# status / resultType (lower case) -> outcome; anything else (Updated, Active, …) is unknown
STATUS_OUTCOME: dict[str, str] = {
    "succeeded": "success", "success": "success",
    "failed": "failure", "failure": "failure", "canceled": "failure", "cancelled": "failure",
    "started": "unknown", "start": "unknown", "accepted": "unknown", "accept": "unknown",
}
# lifecycle rank: a record of lower rank is superseded by a later record of its operation
STATUS_RANK: dict[str, int] = {"started": 0, "start": 0, "accepted": 1, "accept": 1}
FINAL_RANK = 2

# operation name -> category when the catalogue has no entry; first match wins (lower case)
OPERATION_CATEGORY: tuple[tuple[str, str], ...] = (
    (r"/read$", "other"),
    (r"^microsoft\.authorization/roleassignments/|^microsoft\.authorization/roledefinitions/",
     "permission"),
    (r"/(?:listkeys|regeneratekey|listconnectionstrings|listaccountsas|listservicesas)/action$",
     "permission"),
    (r"/(?:administrators|azureadonlyauthentications)/", "permission"),
    (r"/(?:firewallrules|virtualnetworkrules|securityrules|networksecuritygroups"
     r"|privateendpointconnections)/", "network"),
    (r"diagnosticsettings/|auditingsettings/|securityalertpolicies/"
     r"|advancedthreatprotectionsettings/|vulnerabilityassessments/", "audit_config"),
    (r"/export/action$", "export"),
    (r"backup|restore|/import/action$", "backup"),
    (r"/delete$", "provisioning"),
    (r"/(?:write|action)$", "config"),
)
# Activity Log categories that are not caller operations (platform-initiated)
PLATFORM_CATEGORIES = ("servicehealth", "resourcehealth", "alert", "autoscale", "recommendation")
# records of other Azure logs that share an Event Hub with the Activity Log
NOT_ACTIVITY = r"(?i)signinlogs$|^auditlogs$|^provisioninglogs$|^postgresql|^mysql|^sqlsecurity"

# ARM resource type (lower case, last type segment) -> object_type; else the segment itself
OBJECT_TYPES: dict[str, str] = {
    "servers": "server", "flexibleservers": "server", "managedinstances": "instance",
    "databases": "database", "databaseaccounts": "database_account",
    "firewallrules": "firewall_rule", "virtualnetworkrules": "network_rule",
    "configurations": "parameter", "administrators": "administrator",
    "roleassignments": "role_assignment", "diagnosticsettings": "diagnostic_setting",
    "locks": "lock", "networksecuritygroups": "network_security_group",
    "securityrules": "security_rule", "storageaccounts": "storage_account",
    "vaults": "key_vault", "secrets": "secret", "namespaces": "namespace",
    "authorizationrules": "authorization_rule", "sites": "site",
}

EMAIL = r"^[^@\s:/]+@[^@\s:/]+\.[^@\s:/]+$"
GUID = r"(?i)^[0-9a-z]{8}-?[0-9a-z]{4}-?[0-9a-z]{4}-?[0-9a-z]{4}-?[0-9a-z]{12}$"

_REST_OR_EXPORT = re.compile(rb'"(?:operationName|OperationNameValue)"\s*:')
_ENVELOPE_KEYS = re.compile(
    rb'"(?:resultType|resultSignature|correlationId|eventTimestamp|eventDataId|callerIpAddress'
    rb'|CorrelationId|ActivityStatusValue|TimeGenerated)"\s*:'
)
_ACTIVITY_CATEGORY = re.compile(
    rb'"category"\s*:\s*"(?:Administrative|Policy|Security|ServiceHealth|ResourceHealth|Alert'
    rb'|Autoscale|Recommendation)"'
)
_TIME_KEY = re.compile(rb'"(?:time|eventTimestamp)"\s*:')
_CSV_HEADER = re.compile(rb"^[^\n{\[]*\bOperationNameValue\b[^\n]*\b(?:TimeGenerated|Caller)\b"
                         rb"|^[^\n{\[]*\bTimeGenerated\b[^\n]*\bOperationNameValue\b")
_FOREIGN = (b'"protoPayload"', b'"protopayload_auditlog', b'"eventVersion"', b'"eventSource"')


def detect(head: bytes) -> bool:
    """Activity Log JSON (any shape) or an ``AzureActivity`` CSV export; never GCP, CloudTrail or
    the Azure PostgreSQL diagnostic records the pgaudit source reads."""
    text = head.lstrip()
    if _CSV_HEADER.match(text):
        return True
    if not text.startswith((b"{", b"[")):
        return False
    if any(key in head for key in _FOREIGN) or is_pg_envelope(head):
        return False
    if _REST_OR_EXPORT.search(head) and _ENVELOPE_KEYS.search(head):
        return True
    return bool(_ACTIVITY_CATEGORY.search(head) and _TIME_KEY.search(head))


# ---------------------------------------------------------------------------------------------
# containers -> one JSON text per record

_WRAPPER_LINE = re.compile(r'^\s*\{\s*"(?:records|value)"\s*:')
WRAPPER_KEYS = ("records", "value")


def _numbered(texts: pl.Series) -> pl.DataFrame:
    return pl.DataFrame({"_raw": texts.rename("_raw").cast(pl.String)}).with_columns(
        _pos=pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
    )


def split_records(text: str) -> tuple[pl.DataFrame, list[str]]:
    """Frame of ``_raw`` (one record's JSON text or a bad line) and ``_pos``, and notes.

    Positions are line numbers for JSON Lines, record numbers for JSON documents and for files
    of one ``{"records": [...]}`` wrapper per line.
    """
    texts = document_texts(text, WRAPPER_KEYS)
    if texts is not None:
        single = texts.len() == 1 and texts[0] == text.strip()
        return _numbered(texts), [] if single else ["a JSON document: positions are record numbers"]
    frame = json_lines(text)
    is_wrapper = pl.col("_raw").str.contains(_WRAPPER_LINE.pattern)
    if not frame.select(is_wrapper.any()).item():
        return frame, []
    # one Event Hub batch per line: every wrapper line's records, in file order
    wrappers = frame.filter(is_wrapper)
    try:
        lists = read_ndjson(
            wrappers.select(pl.col("_raw").str.join("\n")).item(),
            {key: pl.List(pl.String) for key in WRAPPER_KEYS}, WRAPPER_KEYS,
        )
    except pl.exceptions.PolarsError:
        lists = None
    if lists is None or lists.height != wrappers.height:
        unpacked = wrappers.with_columns(_texts=pl.col("_raw").map_elements(
            _wrapper_texts, return_dtype=pl.List(pl.String)))  # error path: a bad batch line
    else:
        unpacked = wrappers.with_columns(
            _texts=pl.coalesce(*(lists.get_column(key) for key in WRAPPER_KEYS))
        )
    records = frame.join(unpacked.select("_pos", "_texts"), on="_pos", how="left").select(
        _raw=pl.coalesce("_texts", pl.concat_list("_raw"))
    ).explode("_raw")
    raw = escape_controls(records.get_column("_raw"))
    note = '{"records": [...]} batches, one per line: positions are record numbers'
    return _numbered(raw), [note]


def _wrapper_texts(line: str) -> list[str]:
    """A wrapper line's records as JSON texts, or the line itself when it does not parse."""
    texts = document_texts(line, WRAPPER_KEYS)
    return [line] if texts is None else texts.to_list()


def _csv_records(text: str) -> pl.DataFrame:
    """``AzureActivity`` CSV rows as JSON objects (column name -> string), ``_pos`` = file line
    (rows with embedded newlines shift later positions)."""
    table = pl.read_csv(text.encode(), infer_schema=False)
    return table.select(
        _raw=pl.struct(pl.all()).struct.json_encode(),
        _pos=pl.int_range(2, pl.len() + 2, dtype=pl.Int64),  # line 1 is the header
    )


# ---------------------------------------------------------------------------------------------
# records -> flat string fields


def _schema_of(paths: list[str]) -> pl.Struct:
    """A struct schema holding every dotted ``paths`` leaf as a string."""
    tree: dict = {}
    for path in paths:
        node = tree
        *parents, leaf = path[2:].split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = None

    def build(node: dict) -> pl.Struct:
        return pl.Struct({k: pl.String() if v is None else build(v) for k, v in node.items()})

    return build(tree)


_SCALAR = [p for name, ps in FIELDS.items() if name not in BY_PATH | REST_OBJECTS for p in ps]
# the envelope of REST records (``operationName`` is an object) and of the flat shapes
ENVELOPE_REST = _schema_of(_SCALAR + [FIELDS[name][0] for name in sorted(REST_OBJECTS)])
ENVELOPE_FLAT = _schema_of(_SCALAR + [p for name in sorted(REST_OBJECTS) for p in FIELDS[name][1:]])
_REST_RECORD = r'"operationName"\s*:\s*\{'


def _struct_path(record: pl.Expr, path: str) -> pl.Expr:
    for part in path[2:].split("."):
        record = record.struct.field(part)
    return record


def _by_path(column: pl.Expr, paths: tuple[str, ...]) -> pl.Expr:
    if not paths:
        return pl.lit(None, pl.String)
    return pl.coalesce([column.str.json_path_match(p) for p in paths])


def _present(batch: pl.DataFrame, paths: tuple[str, ...]) -> tuple[str, ...]:
    """The paths whose last key occurs somewhere in the batch (a cheap substring test that
    spares a JSON parse per absent path)."""
    raw = batch.get_column("_raw")
    return tuple(
        p for p in paths if raw.str.contains(f'"{p.rsplit(".", 1)[-1]}"', literal=True).any()
    )


def decode_envelope(records: pl.DataFrame, rest: bool) -> pl.DataFrame:
    """Flat fields in one decoding pass (the fast path) of records all in the REST shape or all
    in the flat ones; raises a Polars error when a record does not fit the schema."""
    raw, rec = pl.col("_raw"), pl.col("_e")
    schema = ENVELOPE_REST if rest else ENVELOPE_FLAT

    def typed(name: str, paths: tuple[str, ...]) -> pl.Expr:
        if name in BY_PATH:
            return _by_path(raw, _present(records, paths))
        if name in REST_OBJECTS:
            paths = paths[:1] if rest else paths[1:]
            if not paths:
                return pl.lit(None, pl.String)
        return pl.coalesce([_struct_path(rec, p) for p in paths])

    decoded = records.with_columns(_e=raw.str.json_decode(schema))
    return decoded.with_columns(
        _ok=pl.lit(True), **{name: typed(name, paths) for name, paths in FIELDS.items()}
    ).drop("_e")


def flatten_json(records: pl.DataFrame) -> pl.DataFrame:
    """Flat fields read path by path (the slow path: tolerates any record)."""
    raw = pl.col("_raw")
    return records.with_columns(
        _ok=raw.str.strip_chars().str.starts_with("{") & raw.str.json_path_match("$").is_not_null(),
        **{name: _by_path(raw, _present(records, paths)) for name, paths in FIELDS.items()},
    )


BATCH = 20_000  # records decoded at once: one odd record sends only its batch to the slow path


def flatten(records: pl.DataFrame) -> pl.DataFrame:
    """Flat fields of every record: ``decode_envelope`` per batch, ``flatten_json`` for a batch
    holding a record that does not fit."""
    parts = []
    for batch in records.iter_slices(BATCH):
        rest = batch["_raw"].str.contains(_REST_RECORD)
        try:
            if rest.all() or not rest.any():  # one shape: decode; mixed batches go by path
                parts.append(decode_envelope(batch, rest=bool(rest.all())))
                continue
        except pl.exceptions.PolarsError:
            pass
        parts.append(flatten_json(batch))
    if not parts:
        return flatten_json(records).select(BATCH_FILE, "_raw", "_pos", "_ok", *FIELDS)
    return pl.concat([p.select(BATCH_FILE, "_raw", "_pos", "_ok", *FIELDS) for p in parts])


# ---------------------------------------------------------------------------------------------
# mapping

_US_TIME = (
    r"^(\d{1,2})/(\d{1,2})/(\d{4}),? (\d{1,2}):(\d\d)(?::(\d\d)(\.\d+)?)?"
    r"(?: ?([AaPp][Mm]))?(?: ?(Z|[+-]\d\d:?\d\d))?$"
)


def parse_time(value: pl.Expr) -> pl.Expr:
    """ISO 8601 (0-9 fraction digits, Z, offset or none = UTC) or the US ``M/D/YYYY h:mm:ss
    [AM|PM] [+hh:mm]`` of portal exports, as UTC."""
    parts = value.str.strip_chars().str.extract_groups(_US_TIME)
    hour = parts.struct.field("4").cast(pl.Int32)
    ampm = parts.struct.field("8").str.to_uppercase()
    hour = (
        pl.when((ampm == "PM") & (hour < 12)).then(hour + 12)
        .when((ampm == "AM") & (hour == 12)).then(0)
        .otherwise(hour)
    )

    def pad(expr: pl.Expr) -> pl.Expr:
        return expr.cast(pl.String).str.zfill(2)

    iso = pl.concat_str(
        parts.struct.field("3"), pl.lit("-"), pad(parts.struct.field("1")), pl.lit("-"),
        pad(parts.struct.field("2")), pl.lit("T"), pad(hour), pl.lit(":"),
        parts.struct.field("5"), pl.lit(":"), parts.struct.field("6").fill_null("00"),
        parts.struct.field("7").fill_null(""), parts.struct.field("9").fill_null(""),
    )
    return parse_iso_time(pl.coalesce(iso, value.str.strip_chars()))


def _regex_table(value: pl.Expr, table: tuple[tuple[str, str], ...], default: str) -> pl.Expr:
    expr = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
    for pattern, result in table:
        expr = expr.when(value.str.contains(pattern)).then(pl.lit(result))
    return expr.otherwise(pl.lit(default))


def operation_category(operation: pl.Expr, activity_category: pl.Expr) -> pl.Expr:
    """Category of an operation not in the catalogue (declarative: ``OPERATION_CATEGORY``)."""
    return (
        pl.when(activity_category.str.to_lowercase().is_in(PLATFORM_CATEGORIES))
        .then(pl.lit("other"))
        .otherwise(_regex_table(operation.str.to_lowercase(), OPERATION_CATEGORY, "other"))
    )


def is_person(identity: pl.Expr) -> pl.Expr:
    """A human's e-mail (UPN)."""
    return identity.str.contains(EMAIL).fill_null(False)


def actor_type(actor: pl.Expr, user_claim: pl.Expr, activity_category: pl.Expr) -> pl.Expr:
    """``iam_user``, ``service_account``, ``system`` or ``unknown``."""
    app_only = pl.col("app_id").is_not_null() & user_claim.is_null()
    service = (
        (pl.col("principal_type").str.to_lowercase() == "serviceprincipal")
        | (pl.col("identity_type").str.to_lowercase() == "app")
        | pl.col("managed_identity").is_not_null()
        | app_only
    ).fill_null(False)
    platform = activity_category.str.to_lowercase().is_in(PLATFORM_CATEGORIES).fill_null(False)
    return (
        pl.when(actor.is_null() & platform).then(pl.lit("system"))
        .when(actor.is_null()).then(pl.lit("unknown"))
        .when(actor.str.contains(r"(?i)^microsoft\.|^azure ")).then(pl.lit("system"))
        .when(is_person(actor) & (user_claim.is_not_null() | ~service)).then(pl.lit("iam_user"))
        .when(service | actor.str.contains(GUID)).then(pl.lit("service_account"))
        .when(actor.str.contains("@")).then(pl.lit("iam_user"))
        .otherwise(pl.lit("unknown"))
    )


def _resource_parts() -> dict[str, pl.Expr]:
    """Target, object, object type and ARM type from the resource id (case-insensitive)."""
    rid = pl.col("resource_id")
    tail = rid.str.extract(r"(?i)^.*/providers/([^/]+/.+?)/?$")  # after the last /providers/
    segments = tail.str.split("/")
    types = segments.list.slice(1).list.gather_every(2)
    names = segments.list.slice(2).list.gather_every(2)
    last_type = types.list.last().str.to_lowercase()
    return {
        "target": rid.str.extract(r"(?i)^/?((?:subscriptions|tenants)/[^/]+"
                                  r"(?:/resourcegroups/[^/]+)?)"),
        "object": pl.when(names.list.len() > 0).then(names.list.join("/")),
        "object_type": last_type.replace(OBJECT_TYPES),
        "_resource_type": pl.when(types.list.len() > 0).then(
            pl.concat_str(segments.list.first(), pl.lit("/"), types.list.join("/"))
        ),
    }


def _compact(body: pl.Expr) -> pl.Expr:
    """The request body as compact JSON: objects come compact from the JSON path; a body sent
    as a string is kept as written; empty strings are no body."""
    trimmed = body.str.strip_chars()
    return pl.when(trimmed.is_in(["", "{}", "null"]).not_()).then(trimmed)


def map_events(flat: pl.DataFrame, ctxs: Sequence[FileContext]) -> pl.DataFrame:
    """Flat records -> events (before operation linking and the catalogue)."""
    claims, props = pl.col("claims"), pl.col("properties")
    frame = flat.with_columns(
        **{name: _by_path(claims, paths) for name, paths in CLAIMS.items()},
        **{name: _by_path(props, paths) for name, paths in PROPERTIES.items()},
        _http_ip=pl.col("http_request").str.json_path_match("$.clientIpAddress"),
        _operation=pl.coalesce("la_operation", "operation").str.strip_chars(),
        _activity_category=pl.coalesce("la_category", "category_raw"),
        _status=pl.coalesce("status", "result_type"),
    )
    user_claim = pl.coalesce(
        pl.col("upn").str.strip_chars(),
        pl.when(is_person(pl.col("claim_name").str.strip_chars()))
        .then(pl.col("claim_name").str.strip_chars()),
    )
    actor = pl.coalesce(
        pl.col("caller").str.strip_chars().replace("", None), user_claim,
        pl.col("app_id"), pl.col("object_id"), pl.col("principal_id"),
    )
    status = pl.col("_status").str.strip_chars().str.to_lowercase()
    outcome = status.replace_strict(STATUS_OUTCOME, default="unknown")
    sub = pl.coalesce(
        pl.col("sub_status").replace("", None), pl.col("result_signature").replace("", None),
        pl.col("status_code"),
    )
    error_code = pl.col("status_message").str.json_path_match("$.error.code")
    kind = actor_type(pl.col("_actor"), user_claim, pl.col("_activity_category"))
    position = pl.col("_pos").cast(pl.String)
    return frame.with_columns(_actor=actor, _outcome=outcome, _sub=sub).select(
        time=parse_time(pl.col("event_time")),
        source=pl.lit("azure_activity"),
        layer=pl.lit("infrastructure"),
        category=operation_category(pl.col("_operation"), pl.col("_activity_category")),
        action=pl.col("_operation"),
        outcome=pl.col("_outcome"),
        error=pl.when(pl.col("_outcome") == "failure").then(
            pl.concat_str(
                pl.coalesce("_sub", "_status"),
                pl.when(error_code.is_not_null()).then(pl.lit(" (") + error_code + pl.lit(")")),
                ignore_nulls=True,
            )
        ),
        actor=pl.col("_actor"),
        actor_type=kind,
        person=pl.when((kind == "iam_user") & is_person(pl.col("_actor"))).then(pl.col("_actor")),
        src_ip=pl.coalesce("caller_ip", "_http_ip"),
        **_resource_parts(),
        statement=_compact(pl.col("request_body")),
        event_id=pl.coalesce("event_data_id", per_file([c.digest + ":" for c in ctxs]) + position),
        raw_ref=per_file([c.display + ":" for c in ctxs]) + position,
        _pos=pl.col("_pos"),
        **{BATCH_FILE: pl.col(BATCH_FILE)},
        _provider=pl.coalesce(
            "provider", "la_provider", pl.col("_operation").str.extract(r"^([^/]+)/")
        ),
        _correlation=pl.col("correlation_id").str.to_lowercase(),
        _rank=status.replace_strict(STATUS_RANK, default=FINAL_RANK, return_dtype=pl.Int8),
        _activity_category=pl.col("_activity_category"),
        _sub=pl.col("_sub"),
        _status=pl.col("_status"),
        _extra=pl.struct(
            correlation_id=pl.col("correlation_id"),
            operation_id=pl.col("operation_id"),
            status=pl.col("_status"),
            sub_status=pl.col("_sub"),
            level=pl.col("level"),
            activity_category=pl.col("_activity_category"),
            event_name=pl.col("event_name"),
            location=pl.col("location"),
            tenant_id=pl.col("tenant_id"),
            app_id=pl.col("app_id"),
            object_id=pl.col("object_id"),
            principal_type=pl.col("principal_type"),
            role=pl.col("role"),
            identity_type=pl.col("identity_type"),
            managed_identity=pl.col("managed_identity"),
            claims_ip=pl.col("claims_ip"),
            auth_methods=pl.col("auth_methods"),
            submission_time=pl.col("submission_time"),
        ),
    )


def link_operations(events: pl.DataFrame) -> pl.DataFrame:
    """Mark Start/Accept records superseded by a later record of their operation (same
    correlation id and operation name in this file): category ``other``, ``superseded_by``."""
    key = pl.concat_str(
        pl.col(BATCH_FILE).cast(pl.String), pl.lit("|"),
        pl.coalesce("_correlation", pl.lit("#") + pl.col("_pos").cast(pl.String)),
        pl.lit("|"), pl.col("action").str.to_lowercase().fill_null(""),
    )
    order = [pl.col("_rank"), pl.col("time"), pl.col("_pos")]
    final_pos = pl.col("_pos").sort_by(order).last().over(key)
    final_id = pl.col("event_id").sort_by(order).last().over(key)
    return events.with_columns(
        _superseded_by=pl.when((pl.col("_rank") < FINAL_RANK) & (pl.col("_pos") != final_pos))
        .then(final_id)
    ).with_columns(
        category=pl.when(pl.col("_superseded_by").is_not_null()).then(pl.lit("other"))
        .otherwise(pl.col("category")),
    )


def _with_extra(events: pl.DataFrame) -> pl.DataFrame:
    fields = events.get_column("_extra").struct.fields
    extra = pl.col("_extra")
    return events.with_columns(
        extra=extra_json_rows(
            events,
            **{name: extra.struct.field(name) for name in fields[:2]},
            superseded_by=pl.col("_superseded_by"),
            provider=pl.col("_provider"),
            resource_type=pl.col("_resource_type"),
            **{name: extra.struct.field(name) for name in fields[2:]},
        )
    )


def classify(events: pl.DataFrame) -> pl.DataFrame:
    """Category and risk from the catalogue. Its ``when`` regexes see
    ``{"resource":"<object>"} <request body>``, so a parameter write is known by its name even
    when the provider logged no body; ``statement`` keeps the body alone."""
    match_text = pl.concat_str(
        pl.lit('{"resource":"'), pl.col("object").fill_null(""), pl.lit('"}'),
        pl.lit(" ") + pl.col("statement"), ignore_nulls=True,
    )
    keyed = events.with_columns(_statement=pl.col("statement"), statement=match_text)
    classified = apply_catalogue(keyed, "azure", service="_provider")
    return classified.with_columns(statement=pl.col("_statement")).drop("_statement")


def quarantine_reason() -> pl.Expr:
    """Why a record cannot be an event (null when it can)."""
    category = pl.coalesce("la_category", "category_raw")
    return (
        pl.when(~pl.col("_ok")).then(pl.lit("not a JSON object"))
        .when(category.str.contains(NOT_ACTIVITY).fill_null(False))
        .then(pl.lit("not an Activity Log record (category ") + category + pl.lit(")"))
        .when(pl.coalesce("la_operation", "operation").str.strip_chars().replace("", None)
              .is_null())
        .then(pl.lit("Activity Log record without operationName"))
    )


def read(text: str, ctx: FileContext) -> Parsed:
    """Read Activity Log records from any container this module knows."""
    return read_alone(read_batch, text, ctx)


def read_batch(contents: Sequence[bytes], ctxs: Sequence[FileContext]) -> BatchParsed:
    """Parse several files (UTF-8 bytes) as ``read`` would each: JSON Lines files (diagnostic
    exports write one blob per hour and resource) are split together, other containers file by
    file, and every record is mapped in one pass; operations are linked within their file."""
    notes: list[list[str]] = [[] for _ in contents]
    parts: list[pl.DataFrame] = []
    texts: dict[int, str] = {}  # JSON Lines files
    for index, content in enumerate(contents):
        text = content.decode()
        if _CSV_HEADER.match(text.lstrip()[:4096].encode()):
            records = _csv_records(text)
            notes[index].append("AzureActivity CSV export: positions are file lines")
        elif (documents := document_texts(text, WRAPPER_KEYS)) is not None:
            records = _numbered(documents)
            if not (documents.len() == 1 and documents[0] == text.strip()):
                notes[index].append("a JSON document: positions are record numbers")
        else:
            texts[index] = text
            continue
        parts.append(records.with_columns(file_column(index)))
    if texts:
        frame = numbered_lines(texts)
        is_wrapper = pl.col("_raw").str.contains(_WRAPPER_LINE.pattern)
        batched = frame.filter(is_wrapper).get_column(BATCH_FILE).unique().to_list()
        for index in batched:  # Event Hub batches, one per line: that file alone
            records, file_notes = split_records(texts[index])
            parts.append(records.with_columns(file_column(index)))
            notes[index].extend(file_notes)
        parts.append(frame.filter(~pl.col(BATCH_FILE).is_in(batched)))
    records = (
        pl.concat(parts, how="diagonal").select(BATCH_FILE, "_raw", "_pos")
        .sort(BATCH_FILE, maintain_order=True)
    )
    flat = flatten(records).with_columns(_reason=quarantine_reason())
    bad = flat.filter(pl.col("_reason").is_not_null())
    good = flat.filter(pl.col("_reason").is_null())
    if good.select(pl.col("event_data_id").is_null().any()).item():
        ctxs = with_digests(ctxs, contents)  # those records' ids name the file's digest
    events = _with_extra(link_operations(map_events(good, ctxs)))
    # superseded records keep category "other" and no risk: only the final record is the action
    final = pl.col("_superseded_by").is_null()
    events = pl.concat([
        classify(events.filter(final)),
        events.filter(~final),
    ]).sort(BATCH_FILE, "_pos")
    superseded = dict(events.filter(~final).get_column(BATCH_FILE).value_counts().iter_rows())
    for index, count in sorted(superseded.items()):
        notes[index].append(
            f"{count} Start/Accept records superseded by their operation's final record "
            "(category other, extra.superseded_by)"
        )
    quarantine = batch_quarantine(bad, ctxs, "azure_activity")
    per_file_records = dict(flat.get_column(BATCH_FILE).value_counts().iter_rows())
    return BatchParsed(
        events=events.select(pl.col(BATCH_FILE), pl.exclude(BATCH_FILE))
        .drop(pl.selectors.starts_with("_")),
        quarantine=quarantine,
        records=[per_file_records.get(index, 0) for index in range(len(contents))],
        notes=notes,
    )


register(
    Source(
        "azure_activity",
        "Azure Activity Log (REST/CLI JSON, diagnostic export records / Event Hub, Log Analytics "
        "AzureActivity JSON or CSV)",
        detect,
        read,
        example="az monitor activity-log list --start-time 2024-01-01 -o json",
        layer="infrastructure",
        priority=20,
        read_batch=read_batch,
    )
)
