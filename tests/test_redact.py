"""Secret masking (auditkit/redact.py): one line per statement and what a report shows of it."""

from __future__ import annotations

import polars as pl
import pytest

from auditkit.redact import redact, redact_text

CASES = [
    # PostgreSQL
    ("ALTER ROLE app WITH PASSWORD 'hunter2'", "ALTER ROLE app WITH PASSWORD '***'"),
    ("CREATE USER u ENCRYPTED PASSWORD 'md5abc' VALID UNTIL 'infinity'",
     "CREATE USER u ENCRYPTED PASSWORD '***' VALID UNTIL 'infinity'"),
    ("alter user bob password 'it''s secret'", "alter user bob password '***'"),
    ("CREATE ROLE r LOGIN PASSWORD NULL", "CREATE ROLE r LOGIN PASSWORD NULL"),
    # MySQL / MariaDB
    ("CREATE USER 'a'@'%' IDENTIFIED BY 'S3cret!'", "CREATE USER 'a'@'%' IDENTIFIED BY '***'"),
    ("ALTER USER a IDENTIFIED WITH mysql_native_password BY \"pw\"",
     "ALTER USER a IDENTIFIED WITH mysql_native_password BY \"***\""),
    ("GRANT ALL ON *.* TO x IDENTIFIED BY PASSWORD '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29'",
     "GRANT ALL ON *.* TO x IDENTIFIED BY PASSWORD '***'"),
    ("SET PASSWORD FOR 'a'@'%' = PASSWORD('pw')", "SET PASSWORD FOR 'a'@'%' = PASSWORD('***')"),
    ("SET PASSWORD = 'pw'", "SET PASSWORD = '***'"),
    # Oracle, unquoted
    ("CREATE USER scott IDENTIFIED BY tiger", "CREATE USER scott IDENTIFIED BY ***"),
    ("ALTER USER scott IDENTIFIED BY tiger;", "ALTER USER scott IDENTIFIED BY ***;"),
    # keys and tokens as SQL literals and options
    ("COPY t FROM 's3://b/k' CREDENTIALS 'aws_access_key_id=AKIAX;aws_secret_access_key=abc'",
     "COPY t FROM 's3://b/k' CREDENTIALS '***'"),
    ("CREATE STAGE s CREDENTIALS=(AWS_KEY_ID='AKIAIOSFODNN7EXAMPLE' AWS_SECRET_KEY='wJalr/K7')",
     "CREATE STAGE s CREDENTIALS=(AWS_KEY_ID='AKIA************MPLE' AWS_SECRET_KEY='***')"),
    ("SELECT set_config('app.api_key', 'k', false)",
     "SELECT set_config('app.api_key', 'k', false)"),
    ("UPDATE users SET api_token = 'tok_123' WHERE id = 1",
     "UPDATE users SET api_token = '***' WHERE id = 1"),
    # connection strings, URLs, headers
    ("dblink_connect('host=db user=app password=hunter2 dbname=shop')",
     "dblink_connect('host=db user=app password=*** dbname=shop')"),
    ("Server=db;User Id=sa;Password=Pa55;Database=x",
     "Server=db;User Id=sa;Password=***;Database=x"),
    ("psql postgresql://app:hunter2@db:5432/shop", "psql postgresql://app:***@db:5432/shop"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "Authorization: Bearer ***"),
    ('{"masterUserPassword": "p\\"w", "dbInstanceIdentifier": "db1"}',
     '{"masterUserPassword": "***", "dbInstanceIdentifier": "db1"}'),
    ('{"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "sessionToken": "FQo"}',
     '{"accessKeyId": "AKIA************MPLE", "sessionToken": "***"}'),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
     "-----BEGIN RSA PRIVATE KEY-----***-----END RSA PRIVATE KEY-----"),
    # nothing secret: unchanged
    ("SELECT password_hash, token_count FROM users WHERE id = 1",
     "SELECT password_hash, token_count FROM users WHERE id = 1"),
    ("SELECT '<script>alert(1)</script>' FROM t", "SELECT '<script>alert(1)</script>' FROM t"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_redact_text(text, expected):
    assert redact_text(text) == expected


def test_redact_text_is_idempotent():
    for text, expected in CASES:
        assert redact_text(expected) == expected, text


def test_redact_frame_masks_text_columns_only_where_needed():
    frame = pl.DataFrame(
        {
            "statement": [CASES[0][0], "SELECT 1", None, CASES[0][0]],
            "error": [None, "near 'IDENTIFIED BY 'x''", None, None],
            "rows": [1, 2, 3, 4],
        }
    )
    shown = redact(frame)
    assert shown["statement"].to_list() == [CASES[0][1], "SELECT 1", None, CASES[0][1]]
    assert shown["error"][1] == "near 'IDENTIFIED BY '***''"
    assert shown["rows"].to_list() == [1, 2, 3, 4]
    assert redact(frame, ["error"])["statement"][0] == CASES[0][0]  # only the columns named
    assert redact(frame.clear()).height == 0
