"""MySQL Enterprise Audit: JSON (closed, unterminated, pretty-printed), new- and old-style XML."""

from __future__ import annotations

import json

import polars as pl
import pytest

from auditkit.enrich import enrich
from auditkit.sources import detect_format, read_file
from auditkit.sources import mysql_enterprise as _mysql_enterprise  # noqa: F401 (registers)
from auditkit.sources import percona as _percona  # noqa: F401 (registers)

LOGIN = '"login": { "user": "%s", "os": "", "ip": "10.0.0.5", "proxy": "%s" }'
ACCOUNT = '"account": { "user": "%s", "host": "%%" }'


def record(ts: str, rid: int, klass: str, event: str, conn: int, body: str,
           user: str = "alice", account: str | None = None, proxy: str = "") -> str:
    """One JSON record as the server writes it (one line)."""
    who = f"{ACCOUNT % (account or user)}, {LOGIN % (user, proxy)}, "
    return (f'{{ "timestamp": "{ts}", "id": {rid}, "class": "{klass}", "event": "{event}", '
            f'"connection_id": {conn}, {who}{body} }}')


CONNECT = ('"connection_data": { "connection_type": "ssl", "status": %d, "db": "shop", '
           '"connection_attributes": { "_client_name": "libmysql", "program_name": "mysqlsh" } }')
QUERY = '"general_data": { "command": "Query", "sql_command": "%s", "query": "%s", "status": %d }'
TABLE = ('"table_access_data": { "db": "shop", "table": "%s", "query": "%s", '
         '"sql_command": "%s" }')
DISCONNECT = '"connection_data": { "connection_type": "ssl" }'
T = "2024-05-01 10:00:0"

SESSION = [
    record(T + "0", 0, "connection", "connect", 7, CONNECT % 0),
    record(T + "1", 0, "table_access", "read", 7, TABLE % ("orders", "select * from orders",
                                                           "select")),
    record(T + "1", 1, "general", "status", 7, QUERY % ("select", "select * from orders", 0)),
    record(T + "2", 0, "general", "status", 7,
           QUERY % ("update", "update orders set x = \\\"a\\\" where id = 1", 1142)),
    record(T + "3", 0, "connection", "disconnect", 7, DISCONNECT),
]


def events_of(write_log, text: str, name: str = "audit.log"):
    fmt, parsed = read_file(write_log(text, name))
    assert parsed.events.height + parsed.quarantine.height == parsed.records
    return fmt, parsed


@pytest.mark.parametrize(
    ("framing", "text"),
    [
        ("array closed", "[\n" + ",\n".join(SESSION) + "\n]\n"),
        ("array still being written", "[\n" + ",\n".join(SESSION) + ",\n"),
        ("body without brackets (beats sample)", ",\n".join(SESSION) + ",\n"),
        ("pretty-printed", "[\n" + ",\n".join(
            json.dumps(json.loads(r), indent=2) for r in SESSION) + "\n]"),
    ],
)
def test_json_framings_give_the_same_events(write_log, framing, text):
    fmt, parsed = events_of(write_log, text)
    assert fmt == "mysql_enterprise"
    assert parsed.quarantine.height == 0
    got = parsed.events.select(
        "category", "action", "outcome", "error", "actor", "object", "statement"
    ).rows()
    assert got == [
        ("auth", "LOGIN", "success", None, "alice", None, None),
        ("read", "READ", "success", None, "alice", "shop.orders", "select * from orders"),
        (None, None, "success", None, "alice", None, "select * from orders"),
        (None, None, "failure", "1142", "alice", None, 'update orders set x = "a" where id = 1'),
        ("auth", "LOGOUT", "unknown", None, "alice", None, None),
    ]
    row = parsed.events.row(0, named=True)
    assert row["source"] == "mysql_enterprise" and row["layer"] == "workflow"
    assert row["time"].isoformat() == "2024-05-01T10:00:00+00:00"
    assert (row["src_ip"], row["session_id"], row["database"], row["client_app"]) == (
        "10.0.0.5", "7", "shop", "mysqlsh")
    assert parsed.events.schema["time"] == pl.Datetime("us", "UTC")
    assert parsed.events["event_id"].is_unique().all()


def test_truncated_last_record_is_quarantined(write_log):
    cut = SESSION[2][: len(SESSION[2]) // 2]
    text = "[\n" + ",\n".join([*SESSION[:2], cut])
    _, parsed = events_of(write_log, text)
    assert parsed.events.height == 2 and parsed.records == 3
    q = parsed.quarantine.row(0, named=True)
    assert q["line"] == 4 and q["reason"].startswith("truncated record")
    assert q["raw"] == cut and q["file"].endswith("audit.log")


def test_malformed_record_is_quarantined_others_kept(write_log):
    text = "[\n" + ",\n".join([SESSION[0], '{ "timestamp": "2024-05-01 10:00:01", oops }',
                               SESSION[4]]) + "\n]"
    _, parsed = events_of(write_log, text)
    assert parsed.events["action"].to_list() == ["LOGIN", "LOGOUT"]
    assert parsed.quarantine["line"].to_list() == [3]
    assert "malformed" in parsed.quarantine["reason"][0]


def test_table_access_is_per_object_evidence_grouped_with_its_statement(write_log):
    _, parsed = events_of(write_log, "[\n" + ",\n".join(SESSION))
    events = parsed.events
    groups = events["extra"].str.json_path_match("$.stmt_group")
    assert groups[1] == groups[2] is not None and groups[3] is None
    assert events.row(1, named=True)["object_type"] == "table"
    access = __import__("auditkit").access_table(enrich(events))
    reads = access.filter(pl.col("access") == "read").select("object", "outcome").unique()
    # the table_access row and SQL analysis of the same statement give one read of the table,
    # under the server's name
    assert reads.rows() == [("shop.orders", "success")]
    writes = access.filter(pl.col("access") == "write")
    assert set(writes["outcome"]) == {"failure"} and writes["object"].str.ends_with("orders").all()


def test_failed_login_and_proxy_user(write_log):
    lines = [
        record(T + "0", 0, "connection", "connect", 8, CONNECT % 1045, user="mallory",
               account=""),
        record(T + "1", 0, "connection", "connect", 9, CONNECT % 0, user="bob",
               account="analysts", proxy="analysts"),
        record(T + "1", 1, "general", "status", 9, QUERY % ("select", "select 1", 0), user="bob",
               account="analysts", proxy="analysts"),
    ]
    _, parsed = events_of(write_log, "[\n" + ",\n".join(lines) + "\n]")
    failed, login, query = parsed.events.iter_rows(named=True)
    assert (failed["category"], failed["outcome"], failed["error"], failed["actor"]) == (
        "auth", "failure", "1045", "mallory")
    assert login["actor"] == "bob"
    extra = json.loads(query["extra"])
    assert (extra["account"], extra["proxy_user"]) == ("analysts", "analysts")


def test_startup_qualifies_session_ids_and_shutdown(write_log):
    startup = ('{ "timestamp": "2024-05-01 09:59:59", "id": 0, "class": "audit", '
               '"event": "startup", "connection_id": 0, "startup_data": { "server_id": 3, '
               '"os_version": "x86_64-Linux", "mysql_version": "8.0.36-commercial", '
               '"args": ["mysqld", "--audit-log-format=JSON"] } }')
    shutdown = ('{ "timestamp": "2024-05-01 10:01:00", "id": 0, "class": "audit", '
                '"event": "shutdown", "connection_id": 0, "shutdown_data": { "server_id": 3 } }')
    _, parsed = events_of(write_log, "[\n" + ",\n".join([startup, SESSION[0], shutdown]) + "\n]")
    rows = parsed.events.select("category", "action", "actor_type", "session_id", "target").rows()
    assert rows == [
        ("audit_config", "AUDIT START", "system", "3:0", "3"),
        ("auth", "LOGIN", "db_user", "3:7", "3"),
        ("audit_config", "AUDIT STOP", "system", "3:0", "3"),
    ]
    extra = json.loads(parsed.events["extra"][0])
    assert extra["startup_options"] == "mysqld --audit-log-format=JSON"


NEW_XML = """<?xml version="1.0" encoding="utf-8"?>
<AUDIT>
 <AUDIT_RECORD>
  <TIMESTAMP>2019-10-03T14:06:33 UTC</TIMESTAMP>
  <RECORD_ID>1_2019-10-03T14:06:33</RECORD_ID>
  <NAME>Connect</NAME>
  <CONNECTION_ID>5</CONNECTION_ID>
  <CONNECTION_TYPE>SSL/TLS</CONNECTION_TYPE>
  <STATUS>0</STATUS>
  <STATUS_CODE>0</STATUS_CODE>
  <USER>root</USER>
  <OS_LOGIN/>
  <HOST>localhost</HOST>
  <IP>127.0.0.1</IP>
  <DB/>
  <CONNECTION_ATTRIBUTES>
   <ATTRIBUTE><NAME>_pid</NAME><VALUE>42</VALUE></ATTRIBUTE>
   <ATTRIBUTE><NAME>program_name</NAME><VALUE>mysql</VALUE></ATTRIBUTE>
  </CONNECTION_ATTRIBUTES>
 </AUDIT_RECORD>
 <AUDIT_RECORD>
  <TIMESTAMP>2019-10-03T14:09:38 UTC</TIMESTAMP>
  <RECORD_ID>6_2019-10-03T14:06:33</RECORD_ID>
  <NAME>TableRead</NAME>
  <CONNECTION_ID>5</CONNECTION_ID>
  <DB>shop</DB>
  <TABLE>customers</TABLE>
  <SQLTEXT>SELECT * FROM customers WHERE name &lt;&gt; &quot;O&apos;Neil &amp; co&quot;</SQLTEXT>
 </AUDIT_RECORD>
 <AUDIT_RECORD>
  <TIMESTAMP>2019-10-03T14:09:38 UTC</TIMESTAMP>
  <RECORD_ID>7_2019-10-03T14:06:33</RECORD_ID>
  <NAME>Query</NAME>
  <CONNECTION_ID>5</CONNECTION_ID><STATUS>0</STATUS><STATUS_CODE>0</STATUS_CODE>
  <USER>root[root] @ localhost [127.0.0.1]</USER><OS_LOGIN/><HOST>localhost</HOST>
  <IP>127.0.0.1</IP><COMMAND_CLASS>select</COMMAND_CLASS>
  <SQLTEXT>SELECT * FROM customers WHERE name &lt;&gt; &quot;O&apos;Neil &amp; co&quot;</SQLTEXT>
 </AUDIT_RECORD>
"""
OLD_XML = """<?xml version="1.0" encoding="utf-8"?>
<AUDIT>
  <AUDIT_RECORD TIMESTAMP="2015-06-16T09:20:17 UTC" RECORD_ID="307_2015-06-16T08:23:17"
    NAME="Query" CONNECTION_ID="60" STATUS="1064" STATUS_CODE="1"
    USER="proxied[login] @ app.example [10.1.1.1]" OS_LOGIN="" HOST="app.example" IP="10.1.1.1"
    COMMAND_CLASS="grant" SQLTEXT="GRANT ALL ON *.* TO &apos;x&apos;&#10;-- two lines&#1;"/>
  <AUDIT_RECORD TIMESTAMP="2015-06-16T09:20:18 UTC" RECORD_ID="308_2015-06-16T08:23:17"
    NAME="Quit" CONNECTION_ID="60" STATUS="0" USER="login" HOST="app.example" IP="10.1.1.1"/>
</AUDIT>
"""


def test_new_style_xml(write_log):
    fmt, parsed = events_of(write_log, NEW_XML)
    assert fmt == "mysql_enterprise" and parsed.quarantine.height == 0
    connect, table, query = parsed.events.iter_rows(named=True)
    assert (connect["action"], connect["outcome"], connect["actor"], connect["client_app"],
            connect["src_ip"], connect["database"]) == (
        "LOGIN", "success", "root", "mysql", "127.0.0.1", None)
    assert json.loads(connect["extra"])["connection_type"] == "SSL/TLS"
    assert (table["category"], table["object"], table["outcome"]) == (
        "read", "shop.customers", "success")
    assert query["statement"] == "SELECT * FROM customers WHERE name <> \"O'Neil & co\""
    assert query["category"] is None and query["raw_ref"].endswith(":30")
    assert query["time"].isoformat() == "2019-10-03T14:09:38+00:00"


def test_old_style_xml_entities_and_login_vs_account(write_log):
    fmt, parsed = events_of(write_log, OLD_XML)
    assert fmt == "mysql_enterprise"
    query, quit_ = parsed.events.iter_rows(named=True)
    assert query["statement"] == "GRANT ALL ON *.* TO 'x'\n-- two lines\x01"
    assert (query["outcome"], query["error"], query["actor"]) == ("failure", "1064", "login")
    assert json.loads(query["extra"])["account"] == "proxied"
    assert (quit_["action"], quit_["raw_ref"].rsplit(":", 1)[1]) == ("LOGOUT", "7")


@pytest.mark.parametrize("cut", ["<AUDIT_RECORD>\n  <NAME>Query</NAME>\n  <CONN",
                                 '<AUDIT_RECORD NAME="Query" RECORD_ID="9_x" SQL'])
def test_xml_still_being_written(write_log, cut):
    text = NEW_XML + " " + cut
    _, parsed = events_of(write_log, text)
    assert parsed.events.height == 3
    assert parsed.quarantine["reason"][0].startswith("truncated record")


def test_xml_raw_newline_in_attribute_and_two_records_on_a_line(write_log):
    text = ('<AUDIT>\n<AUDIT_RECORD NAME="Query" RECORD_ID="1_x" TIMESTAMP="2020-01-01T00:00:00 '
            'UTC" CONNECTION_ID="1" STATUS="0" SQLTEXT="select\n1" USER="u"/>'
            '<AUDIT_RECORD NAME="Quit" RECORD_ID="2_x" TIMESTAMP="2020-01-01T00:00:01 UTC" '
            'CONNECTION_ID="1" STATUS="0" USER="u"/>\n</AUDIT>\n')
    _, parsed = events_of(write_log, text)
    assert parsed.events.select("statement", "raw_ref").with_columns(
        pl.col("raw_ref").str.replace(".*:", "")
    ).rows() == [("select\n1", "2.1"), (None, "2.2")]  # two records begin on line 2


def test_malformed_xml_record_goes_through_the_parser_then_quarantine(write_log):
    good_by_parser = ("<AUDIT_RECORD>\n<NAME>Query</NAME><RECORD_ID>1_x</RECORD_ID>"
                      "<TIMESTAMP>2020-01-01T00:00:00 UTC</TIMESTAMP><STATUS>0</STATUS>"
                      "<SQLTEXT><![CDATA[select '<'>]]></SQLTEXT>\n</AUDIT_RECORD>")
    bad = '<AUDIT_RECORD NAME="Quit" RECORD_ID="2_x" ;; note\n/>'
    _, parsed = events_of(write_log, "<AUDIT>\n" + good_by_parser + "\n" + bad + "\n</AUDIT>\n")
    assert parsed.events["statement"].to_list() == ["select '<'>"]
    assert parsed.quarantine["reason"][0].startswith("malformed XML record")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'[\n{ "timestamp": "2020-10-19 19:21:33", "id": 0, "class": "audit", ', True),
        (b'{ "timestamp": "2020-10-19 19:21:33", "id": 0, "class": "general", ', True),
        (b"<?xml version=\"1.0\"?>\n<AUDIT>\n<AUDIT_RECORD>\n<RECORD_ID>1_x</RECORD_ID>", True),
        (b'<AUDIT_RECORD NAME="Query" RECORD_ID="1_x"/>', True),
        # Percona's own plugin writes RECORD, not RECORD_ID
        (b'<AUDIT_RECORD\nNAME="Query"\nRECORD="3_2021-06-30T11:56:53"\n', False),
        (b'{"audit_record":{"name":"Query","record":"1_x"}}\n', False),
        (b"2024-05-01 10:00:00.000 UTC [10] LOG:  statement: select 1\n", False),
        (b'{"timestamp": "2020-10-19T19:21:33Z", "id": 0, "class": "general"}', False),
        (b'{"insertId": "x", "timestamp": "2020-10-19 19:21:33"}', False),
    ],
)
def test_detect(head, expected):
    assert _mysql_enterprise.detect(head) is expected


def test_detect_format_picks_mysql_enterprise():
    head = ",\n".join(SESSION).encode()
    assert detect_format(head) == "mysql_enterprise"
