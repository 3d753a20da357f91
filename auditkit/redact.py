"""Mask secrets in log text before it is shown: passwords, keys and tokens in statements.

Audit logs record statements as typed, so ``ALTER ROLE app PASSWORD 'hunter2'`` carries the
password. Events keep the raw text (it is evidence); what a report or an explorer *shows* goes
through :func:`redact` first.

    >>> redact_text("ALTER ROLE app WITH PASSWORD 'hunter2'")
    "ALTER ROLE app WITH PASSWORD '***'"
    >>> redact_text("psql postgresql://app:hunter2@db/shop")
    'psql postgresql://app:***@db/shop'

Each rule is one row of :data:`RULES`: a regex and its replacement. The regexes need
back-references and look-ahead, which Polars' regex engine lacks, so :func:`redact` runs them in
Python once per distinct value that could hold a secret (a cheap Polars pre-filter picks those)
and maps the results back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import polars as pl

MASK = "***"

# Names whose value is a secret: password, passwd, pwd, secret, token, api key, private/secret
# key, credentials, with any prefix or suffix (aws_secret_access_key, client_secret, X-Auth-Token,
# PGPASSWORD). Access key ids are not secrets: they are shortened, not masked (see the last rule).
_SECRET_NAME = (
    r"[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|private[_-]?key|credentials?)[\w-]*"
)

RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE | re.DOTALL), replacement)
    for pattern, replacement in (
        # PEM private keys, whole block
        (
            r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----",
            rf"-----BEGIN \1PRIVATE KEY-----{MASK}-----END \1PRIVATE KEY-----",
        ),
        # JSON members: "password": "...", "SecretAccessKey": "...", "token": "..."
        (
            rf'("{_SECRET_NAME}"\s*:\s*")(?:[^"\\]|\\.)*(")',
            rf"\g<1>{MASK}\g<2>",
        ),
        # SQL: PASSWORD 'x', ENCRYPTED PASSWORD 'x', IDENTIFIED [WITH plugin] BY [PASSWORD] 'x',
        # SET PASSWORD = PASSWORD('x'), secret_key = 'x', CREDENTIALS 'x', AWS_SECRET_KEY='x'
        (
            rf"\b((?:IDENTIFIED\s+(?:WITH\s+\S+\s+)?BY(?:\s+PASSWORD)?|{_SECRET_NAME})"
            r"(?:\s+|\s*(?:=>|=|:|\()\s*)(?:PASSWORD\s*\(\s*)?)(['\"])(?:(?!\2).|\2\2)*\2",
            rf"\g<1>\g<2>{MASK}\g<2>",
        ),
        # Oracle: IDENTIFIED BY secret (unquoted)
        (
            r"\b(IDENTIFIED\s+BY\s+)(?!PASSWORD\b|VALUES\b|['\"]|\*\*\*)[^\s'\";,)]+",
            rf"\g<1>{MASK}",
        ),
        # URLs with credentials: scheme://user:secret@host
        (
            r"\b([a-z][a-z0-9+.-]*://[^:/@\s'\"]*:)[^@\s'\"/]+(@)",
            rf"\g<1>{MASK}\g<2>",
        ),
        # key=value and key: value (libpq/ODBC connection strings, options, headers), unquoted
        (
            rf"\b({_SECRET_NAME}\s*(?:=|:)\s*)(?!['\"(]|\*\*\*)[^\s;&,'\")}}]+",
            rf"\g<1>{MASK}",
        ),
        # Authorization: Bearer <token>
        (r"\b(Bearer\s+)[\w.~+/=-]{8,}", rf"\g<1>{MASK}"),
        # AWS access key ids: keep the kind and the last four characters, as the AWS console does
        (r"\b(AKIA|ASIA)[A-Z0-9]{12}([A-Z0-9]{4})\b", r"\g<1>************\g<2>"),
    )
)

# Cheap test, in Polars, for text that any rule could match: only these values go to Python.
_MAYBE_SECRET = r"(?i)pass|pwd|identified|secret|token|key|credential|bearer|://|AKIA|ASIA"


def redact_text(text: str | None) -> str | None:
    """``text`` with every secret that :data:`RULES` recognises replaced by ``***``."""
    if not text:
        return text
    for pattern, replacement in RULES:
        text = pattern.sub(replacement, text)
    return text


def redact(frame: pl.DataFrame, columns: Iterable[str] | None = None) -> pl.DataFrame:
    """``frame`` with secrets masked in ``columns`` (default: every text column).

    Python runs once per distinct value that passes a cheap Polars pre-filter; the rest of the
    frame is untouched.
    """
    names = [
        name
        for name, dtype in frame.schema.items()
        if dtype == pl.String and (columns is None or name in set(columns))
    ]
    replaced = []
    for name in names:
        candidates = (
            frame.lazy()
            .select(pl.col(name).filter(pl.col(name).str.contains(_MAYBE_SECRET)).unique())
            .collect()
            .to_series()
            .to_list()
        )
        mapping = {value: masked for value in candidates if (masked := redact_text(value)) != value}
        if mapping:
            replaced.append(pl.col(name).replace(mapping))
    return frame.with_columns(replaced) if replaced else frame
