"""cloudtrail: AWS CloudTrail records (control plane, ``layer=infrastructure``).

Every shape a CloudTrail record reaches users in is read, the record itself mapped once:

- S3 trail files ``{"Records":[...]}`` (gzip opened by the registry), pretty-printed or not;
- NDJSON (CloudTrail Lake / CloudWatch / SIEM exports; ``raw_ref`` is ``file:line``);
- a JSON array of records, or a single bare record;
- ``aws cloudtrail lookup-events`` output ``{"Events":[{"CloudTrailEvent":"<json string>"}]}``;
- EventBridge envelopes ``{"detail-type":"AWS API Call via CloudTrail","detail":{...}}``
  (one document, an array or NDJSON of them).

``raw_ref`` is ``file:N`` with N the 1-based record index in the file's list (or 1 for a single
record), or the line for NDJSON. A CloudTrail *digest* file (``digestStartTime``, ``logFiles``:
integrity hashes of log files) is recognised and yields 0 records with a note, never events.
Records that are not JSON objects, are not valid JSON, lack ``eventName`` (e.g. Insights events)
or a time are quarantined with the reason; ``Parsed.records`` = events + quarantined. When a
shipper removed ``eventTime`` (Logstash), ``@timestamp`` is used and ``extra.time_from`` says so.

Many files at once (``read_batch``, used by the read loop for folders): the compact S3 files
among them are decoded in one NDJSON pass and all records mapped in one pass, with the same
results per file as ``read``; the Polars per-call costs are then paid per batch, not per file.

Nested payloads (``requestParameters``, ``responseElements``, ...) are kept as JSON strings,
never inferred as structs; ``statement`` is the compact JSON of ``requestParameters``.
Category: ``CATEGORY_RULES`` by eventName, then the catalogue (``cloud_actions_aws.yml``) for
database-relevant actions, which also sets ``extra.risk``/``extra.risks``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

import polars as pl

from auditkit.errors import InputError
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
from auditkit.sources.catalogue import apply_catalogue, load_catalogue
from auditkit.sources.jsontext import (
    flag,
    invalid_record_reason,
    is_json,
    is_json_lines,
    json_lines,
    list_texts,
    read_ndjson,
)

S = pl.String()
# the envelope fields we map, and only those (each field read costs decode time, a nested one
# most); nested payloads are typed String so they stay JSON text
IDENTITY = pl.Struct(
    {
        "type": S, "principalId": S, "arn": S, "accountId": S, "accessKeyId": S,
        "userName": S, "invokedBy": S,
        "sessionContext": pl.Struct(
            {
                "sessionIssuer": pl.Struct({"arn": S, "userName": S}),
                "attributes": pl.Struct({"mfaAuthenticated": S}),
                "sourceIdentity": S,
            }
        ),
        "onBehalfOf": pl.Struct({"userId": S}),
    }
)
ENVELOPE: dict[str, pl.DataType] = {
    "eventVersion": S, "eventTime": S, "@timestamp": S, "eventSource": S, "eventName": S,
    "awsRegion": S, "sourceIPAddress": S, "userAgent": S, "errorCode": S, "errorMessage": S,
    "requestParameters": S, "responseElements": S, "additionalEventData": S,
    "serviceEventDetails": S, "requestID": S, "eventID": S, "eventType": S, "readOnly": S,
    "eventCategory": S, "recipientAccountId": S, "sharedEventID": S,
    "vpcEndpointId": S, "userIdentity": IDENTITY,
}
# a batch's decoded records before mapping, and its rejected records
RECORD_FIELDS: dict[str, pl.DataType] = {BATCH_FILE: pl.Int64(), "pos": pl.Int64(), "raw": S,
                                         **ENVELOPE}
REJECTED: dict[str, pl.DataType] = {BATCH_FILE: pl.Int64(), "pos": pl.Int64(), "raw": S,
                                    "reason": S}
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%#z"  # Z or an offset, 0-9 fraction digits
LAKE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S%.f"  # CloudTrail Lake query results: UTC, no zone
DIGEST_NOTE = "CloudTrail digest file (integrity hashes of log files), not events: 0 records"
FILE_BREAK_VERSION = "\ue001"  # a private-use character: no CloudTrail eventVersion
FILE_BREAK = ('{"eventVersion":"' + FILE_BREAK_VERSION + '"}').encode()
S3_PREFIX = b'{"Records":[{"eventVersion":'  # how every compact S3 trail file starts
SIGNATURE_KEYS = (b'"eventVersion"', b'"eventSource"', b'"eventName"')
DIGEST_KEYS = (b'"digestStartTime"', b'"digestS3Object"')
FOREIGN_KEYS = (b'"protoPayload"', b'"operationName"', b'"insertId"')

# userIdentity.type -> actor_type (design.md vocabulary); the raw type is kept in extra
ACTOR_TYPES = {
    "IAMUser": "iam_user",
    "Root": "iam_user",
    "IdentityCenterUser": "iam_user",
    "SAMLUser": "iam_user",
    "AssumedRole": "assumed_role",
    "FederatedUser": "assumed_role",
    "WebIdentityUser": "service_account",
    "AWSService": "system",
    "AWSAccount": "unknown",
    "Unknown": "unknown",
}
# (eventName regex, eventSource or None, category): first match wins; catalogue overrides
CATEGORY_RULES: list[tuple[str, str | None, str]] = [
    (r"^(ConsoleLogin|CheckMfa|UserAuthentication|CredentialVerification|PasswordUpdated"
     r"|Federate|ExternalIdPDirectoryLogin|GetSessionToken|GetFederationToken"
     r"|AssumeRole\w*)$", None, "auth"),
    (r"^(Describe|List|Get|Head|Lookup|Download|BatchGet|Search|Lookup)", None, "other"),
    (r"^(Create|Delete|Put|Update|Attach|Detach|Add|Remove|Tag|Untag)", "iam.amazonaws.com",
     "permission"),
    (r"^(CreateGrant|RevokeGrant|RetireGrant|PutKeyPolicy)$", "kms.amazonaws.com", "permission"),
    (r"^(Authorize|Revoke)\w*(Ingress|Egress)|SecurityGroup|NetworkAcl|SubnetGroup"
     r"|VpcEndpoint", None, "network"),
    (r"^(Start|Stop|Create|Delete|Update|Put)\w*(Logging|Trail|Selectors|ActivityStream)$",
     None, "audit_config"),
    (r"Snapshot|Backup|^Restore|ExportTask|RecoveryPoint", None, "backup"),
    (r"^(Create|Delete|Restore|Promote)", "rds.amazonaws.com", "provisioning"),
    (r"^(Modify|Reboot|Start|Stop|Failover|Reset|Apply|Add|Remove|Switchover)",
     "rds.amazonaws.com", "config"),
    (r"^(Create|Delete|Run|Terminate)", None, "provisioning"),
    (r"^(Modify|Update|Put|Set|Enable|Disable|Schedule|Start|Stop|Reboot|Attach|Detach)",
     None, "config"),
]
# parameter groups changing audit/log settings: the change is to auditing itself
AUDIT_PARAMETERS = r'"parameterName":"(pgaudit\.|server_audit|log_|audit_trail|rds\.log_)'
# (requestParameters key, object_type, eventSource or None): first present wins for ``object``
OBJECT_KEYS: list[tuple[str, str, str | None]] = [
    ("exportTaskIdentifier", "export_task", None),
    ("dBSnapshotIdentifier", "snapshot", None),
    ("dBClusterSnapshotIdentifier", "snapshot", None),
    ("targetDBSnapshotIdentifier", "snapshot", None),
    ("sourceDBSnapshotIdentifier", "snapshot", None),
    ("dBParameterGroupName", "parameter_group", None),
    ("dBClusterParameterGroupName", "parameter_group", None),
    ("dBInstanceIdentifier", "instance", None),
    ("targetDBInstanceIdentifier", "instance", None),
    ("dBClusterIdentifier", "cluster", None),
    ("globalClusterIdentifier", "cluster", None),
    ("dBSecurityGroupName", "security_group", None),
    ("dBSubnetGroupName", "subnet_group", None),
    ("resourceArn", "resource", "rds.amazonaws.com"),
    ("name", "trail", "cloudtrail.amazonaws.com"),
    ("trailName", "trail", "cloudtrail.amazonaws.com"),
    ("secretId", "secret", "secretsmanager.amazonaws.com"),
    ("keyId", "key", "kms.amazonaws.com"),
    ("groupId", "security_group", "ec2.amazonaws.com"),
    ("snapshotId", "snapshot", "ec2.amazonaws.com"),
    ("tableName", "table", "dynamodb.amazonaws.com"),
]
# the instance or cluster a request is about, appended to the account/region target
TARGET_KEYS = ("dBInstanceIdentifier", "dBClusterIdentifier")


def detect(head: bytes) -> bool:
    """CloudTrail JSON (any container) or a digest file, never GCP/Azure JSON or text logs."""
    if head.startswith(S3_PREFIX):  # an S3 trail file, as CloudTrail writes every one
        return True
    start = head.lstrip()[:1]
    if start not in (b"{", b"["):
        return False
    # the signature keys are near the start of a trail file: look for them first, so that the
    # scans of the whole head that find nothing are as few as possible
    if all(key in head for key in SIGNATURE_KEYS) and not (
        b'"protoPayload"' in head or (b'"operationName"' in head and b'"resourceId"' in head)
    ):
        return True
    if all(key in head for key in DIGEST_KEYS):
        return True
    return b'"CloudTrailEvent"' in head  # lookup-events: the records are escaped strings


# --- containers -> one raw JSON text per record ---------------------------------------------


def fast_lines(body: bytes) -> memoryview | None:
    """A compact S3 ``{"Records":[...]}`` file as NDJSON, one record per line; None when the
    file is not in that shape (then: the slow way, ``record_texts``).

    CloudTrail writes each record starting with ``{"eventVersion":``; a quote is escaped inside
    strings, so ``},{"eventVersion":`` only occurs between objects. Each line is also the record's
    raw form; a bad split fails the decode (``decode_fast``), and the file takes the slow way.
    The lines are a view into the split body (the batch's join copies them once).
    """
    if not (body.startswith(S3_PREFIX) and body.endswith(b"]}")) or b"\n" in body:
        return None
    split = body.replace(b'},{"eventVersion":', b'}\n{"eventVersion":')
    return memoryview(split)[len(b'{"Records":['): -2]


def decode_fast(lines: dict[int, memoryview]) -> pl.DataFrame | None:
    """Envelope fields of several files' ``fast_lines`` (by file index) in one NDJSON decode,
    with ``BATCH_FILE`` and ``pos``; ``raw`` is left null (``fast_raw`` when needed). None when
    the decode fails or the file breaks do not come back one between each two files.

    The files are joined with a ``FILE_BREAK`` line (cheaper than counting each file's lines);
    a record made to look like one adds a break, which fails the check: each file alone then."""
    try:
        decoded = _read_envelopes((b"\n" + FILE_BREAK + b"\n").join(lines.values()))
    except pl.exceptions.PolarsError:
        return None
    is_break = (pl.col("eventVersion") == FILE_BREAK_VERSION).fill_null(False)
    if decoded.select(is_break.sum()).item() != len(lines) - 1:
        return None
    files = pl.Series(BATCH_FILE, list(lines), dtype=pl.Int64)
    return (
        decoded.with_columns(pl.lit(files).gather(is_break.cum_sum()).alias(BATCH_FILE))
        .filter(~is_break)
        .with_columns(
            pos=pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over(BATCH_FILE),
            raw=pl.lit(None, dtype=S),
        )
    )


def record_texts(body: str) -> pl.DataFrame:
    """``pos`` (record index, or line for NDJSON) and ``raw`` (one JSON text per record)."""
    if body.startswith("["):
        texts = list_texts('{"Records":' + body + "}", "Records")
        if texts is None:
            raise pl.exceptions.ComputeError("not a valid JSON array")
        return _numbered(texts)
    if is_json_lines(body):
        return json_lines(body).select(pos="_pos", raw=pl.col("_raw").str.strip_chars())
    for key in ("Records", "Events"):
        if f'"{key}"' in body[:4096]:
            texts = list_texts(body, key)
            if texts is not None:
                return _numbered(texts)
            if not is_json(body):
                raise pl.exceptions.ComputeError(f"invalid JSON document with a {key} list")
    return _numbered(pl.Series([body]))


def _numbered(texts: pl.Series) -> pl.DataFrame:
    return pl.DataFrame(
        {"pos": pl.int_range(1, texts.len() + 1, eager=True, dtype=pl.Int64),
         "raw": texts.cast(S)}
    )


def unwrap(raw: pl.Expr) -> pl.Expr:
    """The CloudTrail record inside a lookup-events element or an EventBridge envelope."""
    embedded = raw.str.json_path_match("$.CloudTrailEvent")
    detail = raw.str.json_path_match("$.detail")
    return (
        pl.when(raw.str.contains('"CloudTrailEvent"', literal=True) & embedded.is_not_null())
        .then(embedded)
        .when(raw.str.contains('"detail-type"', literal=True) & detail.is_not_null())
        .then(detail)
        .otherwise(raw)
    )


def decode(records: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Envelope fields of the records that are JSON objects, and (pos, raw, reason) of the rest."""
    raw = pl.col("raw")
    is_object = raw.str.strip_chars_start().str.starts_with("{").fill_null(False)
    objects = records.filter(is_object)
    rejected = records.filter(~is_object).with_columns(reason=pl.lit("record is not a JSON object"))
    try:
        fields = _read_envelopes(_lines(objects)) if objects.height else None
    except pl.exceptions.PolarsError:
        fields = None
    if fields is None or fields.height != objects.height:
        # the error path: find the invalid records (one Python parse each), decode the rest
        reasons = [invalid_record_reason(text) for text in objects.get_column("raw")]
        objects = objects.with_columns(reason=pl.Series(reasons, dtype=S))
        rejected = pl.concat([rejected, objects.filter(pl.col("reason").is_not_null())])
        objects = objects.filter(pl.col("reason").is_null()).drop("reason")
        fields = _read_envelopes(_lines(objects)) if objects.height else None
    if fields is None:
        fields = pl.DataFrame(schema=ENVELOPE)
    return pl.concat([objects, fields], how="horizontal"), rejected


def _lines(objects: pl.DataFrame) -> str:
    """The records as NDJSON (CR/LF inside a pretty-printed record are whitespace)."""
    joined = pl.col("raw").str.replace_all(r"[\r\n]", " ").str.join("\n")
    return objects.select(joined).item()


# envelope fields holding a nested object as JSON text
JSON_FIELDS = ("requestParameters", "responseElements", "additionalEventData",
               "serviceEventDetails")


def _read_envelopes(ndjson: str | bytes) -> pl.DataFrame:
    """The ``ENVELOPE`` fields of NDJSON records (nested payloads as JSON text)."""
    return read_ndjson(ndjson, ENVELOPE, JSON_FIELDS)


# --- mapping ---------------------------------------------------------------------------------


def ident(*path: str) -> pl.Expr:
    """A field of ``userIdentity`` (``ident("sessionContext", "sessionIssuer", "arn")``)."""
    expr = pl.col("userIdentity")
    for name in path:
        expr = expr.struct.field(name)
    return expr


def blank_null(expr: pl.Expr) -> pl.Expr:
    """Empty strings and AWS placeholders as null."""
    return pl.when(expr.is_in(["", "HIDDEN_DUE_TO_SECURITY_REASONS"])).then(None).otherwise(expr)


def session_name() -> pl.Expr:
    """The role session name of an assumed role (after ':' in principalId, else ARN tail)."""
    return pl.coalesce(
        ident("principalId").str.extract(r":(.+)$"),
        ident("arn").str.extract(r":assumed-role/[^/]+/(.+)$"),
    )


def actor_type() -> pl.Expr:
    """design.md vocabulary; AWS acting for itself (service principals, service-linked roles,
    typeless service events) is ``system``."""
    kind = ident("type")
    service_linked = ident("sessionContext", "sessionIssuer", "arn").str.contains(
        ":role/aws-service-role/", literal=True
    )
    aws_itself = kind.is_null() & (
        ident("invokedBy").is_not_null() | (pl.col("eventType") == "AwsServiceEvent")
    )
    return (
        pl.when((kind == "AssumedRole") & service_linked.fill_null(False))
        .then(pl.lit("system"))
        .when(aws_itself.fill_null(False))
        .then(pl.lit("system"))
        .otherwise(kind.replace_strict(ACTOR_TYPES, default="unknown"))
    )


def actor() -> pl.Expr:
    """The identity as recorded: the ARN, else the most specific id the record has."""
    kind = ident("type")
    return pl.coalesce(
        blank_null(ident("arn")),
        pl.when((kind == "AWSService") | kind.is_null()).then(ident("invokedBy")),
        pl.when(kind == "IdentityCenterUser").then(blank_null(ident("onBehalfOf", "userId"))),
        blank_null(ident("userName")),
        blank_null(ident("principalId")),
        blank_null(ident("accountId")),
    )


def person() -> pl.Expr:
    """The human when the record itself names one: IAM user, SSO session, Identity Center user."""
    kind = ident("type")
    issuer = ident("sessionContext", "sessionIssuer")
    sso = issuer.struct.field("userName").str.starts_with("AWSReservedSSO_") | issuer.struct.field(
        "arn"
    ).str.contains("/aws-reserved/sso.amazonaws.com/", literal=True)
    return pl.coalesce(
        pl.when(kind == "IAMUser").then(blank_null(ident("userName"))),
        pl.when((kind == "AssumedRole") & sso.fill_null(False)).then(session_name()),
        blank_null(ident("sessionContext", "sourceIdentity")),
        pl.when(kind == "IdentityCenterUser").then(
            blank_null(pl.col("additionalEventData").str.json_path_match("$.UserName"))
        ),
    )


def request_fields(statement: pl.Series) -> pl.DataFrame:
    """``rq_<key>`` columns: the request's top-level values for ``OBJECT_KEYS`` (one parse)."""
    keys = dict.fromkeys(key for key, _, _ in OBJECT_KEYS)
    lines = pl.when(statement.str.starts_with("{")).then(statement).otherwise(pl.lit("{}"))
    text = pl.select(lines.str.join("\n")).item() if statement.len() else ""
    frame = read_ndjson(text, dict.fromkeys(keys, S)) if text else None
    if frame is None:
        frame = pl.DataFrame(schema=dict.fromkeys(keys, S))
    return frame.rename({key: f"rq_{key}" for key in keys})


def resource() -> tuple[pl.Expr, pl.Expr]:
    """``object`` and ``object_type`` from ``OBJECT_KEYS`` (first key present wins)."""
    names: list[pl.Expr] = []
    kinds: list[pl.Expr] = []
    for key, object_type, service in OBJECT_KEYS:
        present = pl.col(f"rq_{key}").is_not_null()
        if service is not None:
            present = present & (pl.col("eventSource") == service)
        names.append(pl.when(present).then(pl.col(f"rq_{key}")))
        kinds.append(pl.when(present).then(pl.lit(object_type)))
    return pl.coalesce(names), pl.coalesce(kinds)


def outcome() -> tuple[pl.Expr, pl.Expr]:
    """failure when errorCode/errorMessage is present or a sign-in result says Failure."""
    code, message = pl.col("errorCode"), pl.col("errorMessage")
    result = pl.concat_str(
        pl.col("responseElements").fill_null(""), pl.col("serviceEventDetails").fill_null("")
    ).str.contains(r'"(ConsoleLogin|CheckMfa|UserAuthentication)"\s*:\s*"Failure"')
    failed = code.is_not_null() | message.is_not_null() | result
    error = pl.when(code.is_not_null() & message.is_not_null()).then(
        code + pl.lit(": ") + message
    ).otherwise(pl.coalesce(code, message, pl.when(result).then(pl.lit("Failure"))))
    return pl.when(failed).then(pl.lit("failure")).otherwise(pl.lit("success")), error


_RULES = [(re.compile(pattern), source, cat) for pattern, source, cat in CATEGORY_RULES]
_RULE_CACHE: dict[str, str] = {}


def rule_category(service: str | None, name: str | None) -> str:
    """``CATEGORY_RULES`` for one (eventSource, eventName): first matching rule, else other."""
    for pattern, source, cat in _RULES:
        if name and pattern.search(name) and (source is None or source == service):
            return cat
    return "other"


def category(fields: pl.DataFrame) -> pl.Expr:
    """Category by the rules, run once per distinct action (cached across files); parameter
    group changes touching audit/log parameters are ``audit_config``."""
    key = pl.concat_str(pl.col("eventSource").fill_null(""), pl.lit("|"),
                        pl.col("eventName").fill_null(""))
    for found in fields.select(key.unique()).to_series():
        if found not in _RULE_CACHE:
            service, _, name = found.partition("|")
            _RULE_CACHE[found] = rule_category(service, name)
    seen = fields.select(key.unique()).to_series().to_list()
    by_rule = key.replace_strict({k: _RULE_CACHE[k] for k in seen}, default="other",
                                 return_dtype=S)
    audit_params = pl.col("eventName").is_in(
        ["ModifyDBParameterGroup", "ModifyDBClusterParameterGroup"]
    ) & pl.col("statement").str.contains(AUDIT_PARAMETERS).fill_null(False)
    return pl.when(audit_params).then(pl.lit("audit_config")).otherwise(by_rule)


def _mapping() -> dict[str, pl.Expr]:
    obj, obj_type = resource()
    state, error = outcome()
    account, region = pl.col("recipientAccountId"), pl.col("awsRegion")
    within = pl.coalesce(*(pl.col(f"rq_{key}") for key in TARGET_KEYS))
    return {
        "time": pl.col("_time"),
        "source": pl.lit("cloudtrail"),
        "layer": pl.lit("infrastructure"),
        "category": pl.col("_category"),
        "action": pl.col("eventName"),
        "outcome": state,
        "error": error,
        "actor": actor(),
        "actor_type": actor_type(),
        "person": person(),
        "src_ip": pl.col("sourceIPAddress"),
        "client_app": pl.col("userAgent"),
        "target": pl.concat_str(
            account.fill_null("?"), pl.lit("/"), region.fill_null("?"),
            pl.when(within.is_not_null()).then(pl.lit("/") + within).otherwise(pl.lit("")),
        ),
        "object": obj,
        "object_type": obj_type,
        "statement": pl.col("statement"),
        "event_id": pl.coalesce(blank_null(pl.col("eventID")), pl.col("_fallback_id")),
        "raw_ref": pl.col("_raw_ref"),
        "event_source": pl.col("eventSource"),  # for the catalogue, dropped after
    }


# schema column -> expression over the decoded envelope, the request's ``rq_*`` keys and the
# per-file helper columns ``_time``, ``_category``, ``_raw_ref``, ``_fallback_id``
MAPPING: dict[str, pl.Expr] = _mapping()


def _extra() -> dict[str, pl.Expr]:
    account, caller_account = pl.col("recipientAccountId"), ident("accountId")
    region = pl.col("awsRegion")
    return {
        "event_source": pl.col("eventSource"),
        "region": region,
        "account": account,
        "caller_account": pl.when(caller_account != account).then(caller_account),
        "identity_type": ident("type"),
        "read_only": flag(pl.col("readOnly")),
        "event_type": pl.col("eventType"),
        "event_category": pl.col("eventCategory"),
        "mfa_authenticated": flag(ident("sessionContext", "attributes", "mfaAuthenticated")),
        "mfa_used": pl.col("additionalEventData").str.json_path_match("$.MFAUsed"),
        "session_issuer": ident("sessionContext", "sessionIssuer", "arn"),
        "source_identity": ident("sessionContext", "sourceIdentity"),
        "invoked_by": ident("invokedBy"),
        "access_key_id": blank_null(ident("accessKeyId")),
        "request_id": pl.col("requestID"),
        "shared_event_id": pl.col("sharedEventID"),
        "vpc_endpoint_id": pl.col("vpcEndpointId"),
        "event_version": pl.col("eventVersion"),
        "time_from": pl.when(pl.col("eventTime").is_null()).then(pl.lit("@timestamp")),
    }


# ``extra`` key -> expression over the decoded envelope, in the keys' order (``extra_json_rows``)
EXTRA: dict[str, pl.Expr] = _extra()


@cache
def catalogued_actions() -> list[str]:
    """The AWS catalogue's actions (lower case): files without any skip the catalogue."""
    entries = load_catalogue().filter(pl.col("cloud") == "aws")
    return entries.get_column("action").str.to_lowercase().unique().to_list()


def quarantine_rows(rejected: pl.DataFrame, ctxs: Sequence[FileContext]) -> pl.DataFrame:
    """Rejected records as quarantine rows (``line`` holds the record index or line), with
    ``BATCH_FILE``."""
    return batch_quarantine(rejected, ctxs, "cloudtrail", line="pos", reason="reason", raw="raw")


def is_digest(body: bytes) -> bool:
    """A CloudTrail digest file (integrity hashes of log files), not records."""
    head = body[:4096]
    return all(key in head for key in DIGEST_KEYS) and b'"eventName"' not in head


def read(text: str, ctx: FileContext) -> Parsed:
    """Parse any CloudTrail container into events (see the module docstring)."""
    return read_alone(read_batch, text, ctx)


def read_batch(contents: Sequence[bytes], ctxs: Sequence[FileContext]) -> BatchParsed:
    """Parse several files (UTF-8 bytes) as ``read`` would each: compact S3 files decoded in one
    NDJSON pass, other containers one by one, then one mapping pass over all records (file order
    kept)."""
    notes: list[list[str]] = [[] for _ in contents]
    lines: dict[int, memoryview] = {}  # file index -> its records as NDJSON (compact S3 files)
    parts: list[pl.DataFrame] = []
    rejected_parts: list[pl.DataFrame] = []

    def slow(index: int) -> pl.DataFrame:
        fields, rejected = slow_records(contents[index].decode().strip(), ctxs[index])
        rejected_parts.append(rejected.with_columns(file_column(index)))
        return fields.with_columns(file_column(index))

    for index, content in enumerate(contents):
        body = content.strip()
        if is_digest(body):
            notes[index].append(DIGEST_NOTE)
            continue
        fast = fast_lines(body)
        if fast is not None:
            lines[index] = fast
        else:
            parts.append(slow(index))
    decoded = decode_fast(lines) if lines else None
    if decoded is not None:
        parts.append(decoded)
    elif lines:  # a split went wrong: decode each file alone, the failing ones the slow way
        for index in list(lines):
            decoded = decode_fast({index: lines[index]})
            if decoded is None:
                del lines[index]
                decoded = slow(index)
            parts.append(decoded)
    fields = pl.concat(parts, how="diagonal") if parts else pl.DataFrame(schema=RECORD_FIELDS)
    if len(parts) > 1:
        fields = fields.sort(BATCH_FILE, "pos", maintain_order=True)
    rejected = (
        pl.concat(rejected_parts, how="diagonal_relaxed") if rejected_parts
        else pl.DataFrame(schema=REJECTED)
    )
    ctxs = digests_if_needed(ctxs, contents, fields)
    events, fields, rejected = map_records(fields, rejected, lines, ctxs)
    quarantine = quarantine_rows(rejected.sort(BATCH_FILE, "pos"), ctxs)
    counts = dict(
        pl.concat([events.get_column(BATCH_FILE), quarantine.get_column(BATCH_FILE)])
        .value_counts()
        .iter_rows()
    )
    if fields.get_column("eventTime").null_count():
        missing = fields.group_by(BATCH_FILE).agg(pl.col("eventTime").null_count())
        for index, count in missing.iter_rows():
            if count:
                notes[index].append(
                    f"{count} records have no eventTime: time taken from the shipper's @timestamp"
                )
    return BatchParsed(
        events=events,
        quarantine=quarantine,
        records=[counts.get(index, 0) for index in range(len(contents))],
        notes=notes,
    )


def digests_if_needed(
    ctxs: Sequence[FileContext], contents: Sequence[bytes], fields: pl.DataFrame
) -> Sequence[FileContext]:
    """The contexts with each file's digest when a record has no eventID (the digest is then
    part of its id); as they are otherwise (hashing 100 MB costs 0.06 s)."""
    if all(ctx.digest for ctx in ctxs) or not fields.select(
        blank_null(pl.col("eventID")).is_null().any()
    ).item():
        return ctxs
    return with_digests(ctxs, contents)


def slow_records(body: str, ctx: FileContext) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Any container, record by record (``record_texts``, ``unwrap``, ``decode``)."""
    try:
        records = record_texts(body)
    except pl.exceptions.PolarsError as exc:
        raise InputError(ctx.path, f"not a CloudTrail JSON document ({exc})") from None
    if records.get_column("raw").str.contains(r'"(CloudTrailEvent|detail-type)"').any():
        records = records.with_columns(raw=unwrap(pl.col("raw")))
    return decode(records)


def fast_raw(rows: pl.DataFrame, lines: dict[int, memoryview]) -> pl.DataFrame:
    """``raw`` filled in for rows of compact S3 files (their decode leaves it null)."""
    missing = pl.col("raw").is_null() & pl.col(BATCH_FILE).is_in(list(lines))
    if rows.is_empty() or not lines or not rows.select(missing.any()).item():
        return rows
    split: dict[int, list[str]] = {}
    raws = []
    for index, pos, raw in rows.select(BATCH_FILE, "pos", "raw").iter_rows():
        if raw is None and index in lines:
            raw = split.setdefault(index, str(lines[index], "utf-8").split("\n"))[pos - 1]
        raws.append(raw)
    return rows.with_columns(raw=pl.Series(raws, dtype=S))


def map_records(
    fields: pl.DataFrame, rejected: pl.DataFrame, lines: dict[int, memoryview],
    ctxs: Sequence[FileContext],
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Events (with ``BATCH_FILE``) of the decoded records, the records kept, and all rejected
    ones (records without a usable eventName or time join those ``decode`` rejected)."""
    stamp = pl.coalesce(pl.col("eventTime"), pl.col("@timestamp"))
    time = pl.coalesce(
        stamp.str.to_datetime(TIME_FORMAT, time_zone="UTC", strict=False),
        stamp.str.to_datetime(LAKE_TIME_FORMAT, time_zone="UTC", strict=False),
    )
    reason = (
        pl.when(pl.col("eventName").is_null() & (pl.col("eventType") == "AwsCloudTrailInsight"))
        .then(pl.lit("CloudTrail Insights event (no eventName), not an API call"))
        .when(pl.col("eventName").is_null())
        .then(pl.lit("no eventName"))
        .when(pl.col("eventTime").is_null() & pl.col("@timestamp").is_null())
        .then(pl.lit("no eventTime"))
        .when(pl.col("_time").is_null())
        .then(pl.lit("unparseable eventTime"))
    )
    fields = (
        fields.lazy()
        .with_columns(_time=time, statement=pl.col("requestParameters").str.json_path_match("$"))
        .with_columns(_reason=reason)
        .collect()
    )
    if fields.get_column("_reason").null_count() < fields.height:
        bad = fields.filter(pl.col("_reason").is_not_null())
        rejected = pl.concat(
            [rejected, bad.select(BATCH_FILE, "pos", "raw", reason=pl.col("_reason"))],
            how="diagonal_relaxed",
        )
        fields = fields.filter(pl.col("_reason").is_null())
    rejected = fast_raw(rejected, lines)
    fields = pl.concat([fields, request_fields(fields.get_column("statement"))],
                       how="horizontal")
    position = pl.col("pos").cast(S)
    events = (
        fields.lazy()
        .with_columns(
            _category=category(fields),
            _raw_ref=per_file([ctx.display + ":" for ctx in ctxs]) + position,
            _fallback_id=per_file([ctx.digest + ":" for ctx in ctxs]) + position,  # no eventID
        )
        .select(**MAPPING, **{BATCH_FILE: pl.col(BATCH_FILE)})
        .collect()
        .with_columns(extra=extra_json_rows(fields, **EXTRA))
    )
    if events.get_column("action").str.to_lowercase().is_in(catalogued_actions()).any():
        events = apply_catalogue(events, "aws", service="event_source")
    return events.drop("event_source"), fields, rejected


register(
    Source(
        "cloudtrail",
        "AWS CloudTrail records (S3 trail files, NDJSON, arrays, lookup-events, EventBridge)",
        detect,
        read,
        example="aws cloudtrail create-trail --name org-trail --s3-bucket-name audit-logs; "
        "read s3://audit-logs/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/",
        layer="infrastructure",
        # first: trails come by the thousand (an S3 file is known by its first 28 bytes), the
        # detector accepts only CloudTrail's own keys outside escaped strings (never GCP, Azure,
        # pg jsonlog or Bytebase JSON) and turns a text log down at its first byte
        priority=5,
        read_batch=read_batch,
    )
)
