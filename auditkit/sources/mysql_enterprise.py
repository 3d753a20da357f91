"""MySQL Enterprise Audit (``audit_log`` plugin / component): JSON, new-style XML, old-style XML.

``audit_log_format=JSON`` writes an array, one object per record::

    [
    { "timestamp": "2020-10-19 19:25:51", "id": 1, "class": "general", "event": "status",
      "connection_id": 13, "account": { "user": "root", "host": "localhost" },
      "login": { "user": "root", "os": "", "ip": "", "proxy": "" },
      "general_data": { "command": "Query", "sql_command": "select", "query": "...",
                        "status": 0 } },

``NEW`` writes ``<AUDIT_RECORD>`` elements with children, ``OLD`` self-closing elements with
attributes, both inside ``<AUDIT>``. While a file is open its ``]`` / ``</AUDIT>`` is missing.
Times are UTC in every variant. Classes map through ``mysql_common.JSON_NAMES`` to the record
names of the XML formats, then through ``mysql_common.RECORD_MAPPING`` to events:
connect/disconnect/change_user are ``auth`` (``LOGIN``/``LOGOUT``, failure when the status is
a MySQL error number), general ``Query`` records leave ``category`` to SQL analysis,
``table_access`` records name their table (per-object evidence, grouped with their statement by
``extra.stmt_group`` and given its outcome). Percona's ``audit_log_filter`` writes these same
formats (they are detected as this source; ``format="percona"`` reads them as Percona).
"""

from __future__ import annotations

import re

from auditkit.sources import FileContext, Parsed, Source, register
from auditkit.sources.mysql_common import json_array_records, to_parsed, xml_records

_XML_HEAD = re.compile(rb"<AUDIT_RECORD\b")
_XML_RECORD_ID = re.compile(rb"<RECORD_ID>|\sRECORD_ID=\"")
_JSON_HEAD = re.compile(
    rb'^\s*\[?\s*\{\s*"timestamp"\s*:\s*"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"\s*,\s*"id"\s*:'
)
_JSON_CLASS = re.compile(
    rb'"class"\s*:\s*"(?:audit|connection|general|table_access|message|command|query)"'
)


def is_json(text: str) -> bool:
    """Whether the file is the JSON variant (it starts with ``[`` or ``{``)."""
    return text.lstrip("\ufeff \t\r\n").startswith(("[", "{"))


def read_any(text: str, ctx: FileContext, source: str) -> Parsed:
    """Read any MySQL Enterprise variant, labelling events with ``source``."""
    records, quarantine = json_array_records(text) if is_json(text) else xml_records(text)
    return to_parsed(records, quarantine, ctx, source)


def read(text: str, ctx: FileContext) -> Parsed:
    """Read a MySQL Enterprise Audit log (JSON, new-style or old-style XML)."""
    return read_any(text, ctx, "mysql_enterprise")


def detect(head: bytes) -> bool:
    """An ``<AUDIT_RECORD`` with ``RECORD_ID`` (Percona's own plugin writes ``RECORD``), or a
    JSON record starting ``{"timestamp": "YYYY-MM-DD hh:mm:ss", ..., "id":`` with a known class."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    if _XML_HEAD.search(head):
        return bool(_XML_RECORD_ID.search(head))
    first = head[:4096]
    return bool(_JSON_HEAD.match(first)) and bool(_JSON_CLASS.search(first))


register(
    Source(
        "mysql_enterprise",
        "MySQL Enterprise Audit log (audit_log_format JSON, NEW or OLD XML); also Percona "
        "audit_log_filter files",
        detect,
        read,
        example="audit_log_format=JSON; audit_log_policy=ALL",
        priority=20,
    )
)
