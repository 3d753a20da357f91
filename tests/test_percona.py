"""Percona audit_log plugin: the four formats, layouts per record name, framing and escaping."""

from __future__ import annotations

import json

import polars as pl
import pytest

from auditkit.sources import detect_format, percona, read_file
from auditkit.sources import mysql_enterprise as _mysql_enterprise  # noqa: F401 (registers)

# the same four records in each audit_log_format
OLD = """<?xml version="1.0" encoding="UTF-8"?>
<AUDIT>
<AUDIT_RECORD
  NAME="Audit"
  RECORD="1_2021-06-30T11:56:53"
  TIMESTAMP="2021-06-30T11:56:53 UTC"
  MYSQL_VERSION="8.0.36-28"
  STARTUP_OPTIONS="--daemonize"
  OS_VERSION="x86_64-Linux"
/>
<AUDIT_RECORD
  NAME="Connect"
  RECORD="2_2021-06-30T11:56:53"
  TIMESTAMP="2021-06-30T11:57:00 UTC"
  CONNECTION_ID="6"
  STATUS="1045"
  USER="eve"
  PRIV_USER=""
  OS_LOGIN=""
  PROXY_USER=""
  HOST="db.example"
  IP="10.0.0.9"
  DB=""
/>
<AUDIT_RECORD
  NAME="Query"
  RECORD="3_2021-06-30T11:56:53"
  TIMESTAMP="2021-06-30T11:57:14Z"
  COMMAND_CLASS="select"
  CONNECTION_ID="3"
  STATUS="0"
  SQLTEXT="select &quot;a&quot;, &apos;&lt;b&gt;&apos; &amp; 1&#10;from t"
  USER="root[root] @ localhost [10.0.0.1]"
  HOST="localhost"
  OS_USER=""
  IP="10.0.0.1"
  DB="shop"
/>
<AUDIT_RECORD
  NAME="NoAudit"
  RECORD="4_2021-06-30T11:56:53"
  TIMESTAMP="2021-06-30T12:00:00 UTC"
  MYSQL_VERSION="8.0.36-28"
  STARTUP_OPTIONS="--daemonize"
  OS_VERSION="x86_64-Linux"
/>
"""
NEW = """<AUDIT_RECORD>
  <NAME>Audit</NAME>
  <RECORD>1_2021-06-30T11:56:53</RECORD>
  <TIMESTAMP>2021-06-30T11:56:53 UTC</TIMESTAMP>
  <MYSQL_VERSION>8.0.36-28</MYSQL_VERSION>
  <STARTUP_OPTIONS>--daemonize</STARTUP_OPTIONS>
  <OS_VERSION>x86_64-Linux</OS_VERSION>
</AUDIT_RECORD>
<AUDIT_RECORD>
  <NAME>Connect</NAME>
  <RECORD>2_2021-06-30T11:56:53</RECORD>
  <TIMESTAMP>2021-06-30T11:57:00 UTC</TIMESTAMP>
  <CONNECTION_ID>6</CONNECTION_ID>
  <STATUS>1045</STATUS>
  <USER>eve</USER>
  <PRIV_USER></PRIV_USER>
  <OS_LOGIN></OS_LOGIN>
  <PROXY_USER></PROXY_USER>
  <HOST>db.example</HOST>
  <IP>10.0.0.9</IP>
  <DB></DB>
</AUDIT_RECORD>
<AUDIT_RECORD>
  <NAME>Query</NAME>
  <RECORD>3_2021-06-30T11:56:53</RECORD>
  <TIMESTAMP>2021-06-30T11:57:14Z</TIMESTAMP>
  <COMMAND_CLASS>select</COMMAND_CLASS>
  <CONNECTION_ID>3</CONNECTION_ID>
  <STATUS>0</STATUS>
  <SQLTEXT>select &quot;a&quot;, '&lt;b&gt;' &amp; 1&#10;from t</SQLTEXT>
  <USER>root[root] @ localhost [10.0.0.1]</USER>
  <HOST>localhost</HOST>
  <OS_USER></OS_USER>
  <IP>10.0.0.1</IP>
  <DB>shop</DB>
</AUDIT_RECORD>
<AUDIT_RECORD>
  <NAME>NoAudit</NAME>
  <RECORD>4_2021-06-30T11:56:53</RECORD>
  <TIMESTAMP>2021-06-30T12:00:00 UTC</TIMESTAMP>
  <MYSQL_VERSION>8.0.36-28</MYSQL_VERSION>
  <STARTUP_OPTIONS>--daemonize</STARTUP_OPTIONS>
  <OS_VERSION>x86_64-Linux</OS_VERSION>
</AUDIT_RECORD>
"""
JSON = (
    '{"audit_record":{"name":"Audit","record":"1_2021-06-30T11:56:53","timestamp":'
    '"2021-06-30T11:56:53 UTC","mysql_version":"8.0.36-28","startup_optionsi":"--daemonize",'
    '"os_version":"x86_64-Linux"}}\n'
    '{"audit_record":{"name":"Connect","record":"2_2021-06-30T11:56:53","timestamp":'
    '"2021-06-30T11:57:00 UTC","connection_id":"6","status":1045,"user":"eve","priv_user":"",'
    '"os_login":"","proxy_user":"","host":"db.example","ip":"10.0.0.9","db":""}}\n'
    '{"audit_record":{"name":"Query","record":"3_2021-06-30T11:56:53","timestamp":'
    '"2021-06-30T11:57:14Z","command_class":"select","connection_id":"3","status":0,'
    '"sqltext":"select \\"a\\", \'<b>\' & 1\\nfrom t","user":"root[root] @ localhost '
    '[10.0.0.1]","host":"localhost","os_user":"","ip":"10.0.0.1","db":"shop"}}\n'
    '{"audit_record":{"name":"NoAudit","record":"4_2021-06-30T11:56:53","timestamp":'
    '"2021-06-30T12:00:00 UTC","mysql_version":"8.0.36-28","startup_optionsi":"--daemonize",'
    '"os_version":"x86_64-Linux"}}\n'
)
CSV = (
    '"Audit","1_2021-06-30T11:56:53","2021-06-30T11:56:53 UTC","8.0.36-28","--daemonize",'
    '"x86_64-Linux"\n'
    '"Connect","2_2021-06-30T11:56:53","2021-06-30T11:57:00 UTC","6",1045,"eve","","","",'
    '"db.example","10.0.0.9",""\n'
    '"Query","3_2021-06-30T11:56:53","2021-06-30T11:57:14Z","select","3",0,'
    '"select ""a"", \'<b>\' & 1\nfrom t","root[root] @ localhost [10.0.0.1]","localhost","",'
    '"10.0.0.1","shop"\n'
    '"NoAudit","4_2021-06-30T11:56:53","2021-06-30T12:00:00 UTC","8.0.36-28","--daemonize",'
    '"x86_64-Linux"\n'
)
SYSLOG = "".join(
    f"<14>Feb 12 07:18:30 dbqa09 percona-audit: {line}\n" for line in JSON.splitlines()
)
FORMATS = {"OLD": OLD, "NEW": NEW, "JSON": JSON, "CSV": CSV, "SYSLOG": SYSLOG}
EXPECTED = [
    ("2021-06-30T11:56:53+00:00", "audit_config", "AUDIT START", "success", None, None, None,
     None, None),
    ("2021-06-30T11:57:00+00:00", "auth", "LOGIN", "failure", "1045", "eve", "10.0.0.9", "6",
     None),
    ("2021-06-30T11:57:14+00:00", None, None, "success", None, "root", "10.0.0.1", "3",
     "select \"a\", '<b>' & 1\nfrom t"),
    ("2021-06-30T12:00:00+00:00", "audit_config", "AUDIT STOP", "success", None, None, None,
     None, None),
]


def parse(write_log, text: str, name: str = "audit.log"):
    fmt, parsed = read_file(write_log(text, name))
    assert parsed.events.height + parsed.quarantine.height == parsed.records
    return fmt, parsed


@pytest.mark.parametrize("variant", list(FORMATS))
def test_every_format_gives_the_same_events(write_log, variant):
    fmt, parsed = parse(write_log, FORMATS[variant])
    assert fmt == "percona" and parsed.quarantine.height == 0
    events = parsed.events.with_columns(
        pl.col("time").dt.to_string("%Y-%m-%dT%H:%M:%S+00:00"),
        pl.col("session_id").str.replace("^dbqa09:", ""),
    )
    got = events.select("time", "category", "action", "outcome", "error", "actor", "src_ip",
                        "session_id", "statement").rows()
    assert got == EXPECTED
    assert set(events["source"]) == {"percona"} and set(events["layer"]) == {"workflow"}
    assert events["database"].to_list() == [None, None, "shop", None]
    extra = [json.loads(e) for e in events["extra"]]
    assert extra[0]["startup_options"] == "--daemonize"
    assert extra[2]["record_id"] == "3_2021-06-30T11:56:53"
    assert extra[2]["account"] == "root" and extra[2]["command_class"] == "select"
    assert events["raw_ref"].str.contains(r":\d+$").all()


def test_syslog_host_qualifies_the_session(write_log):
    _, parsed = parse(write_log, SYSLOG)
    assert parsed.events["session_id"].to_list() == [None, "dbqa09:6", "dbqa09:3", None]
    assert set(parsed.events["target"]) == {"dbqa09"}


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        # connection layout: CONNECTION_ID, STATUS, USER, PRIV_USER, OS_LOGIN, PROXY_USER, ...
        ('"Quit","9_x","2021-06-30T11:57:00 UTC","14",0,"bob","bob","","","localhost","","test"',
         ("auth", "LOGOUT", "success", "bob", "localhost", "14", "test", None)),
        # a connection-layout Change user (status 5th); a general-layout one (status 6th)
        ('"Change user","9_x","2021-06-30T11:57:00 UTC","14",0,"bob","bob","","","h","","db"',
         ("auth", "CHANGE USER", "success", "bob", "h", "14", "db", None)),
        ('"Change user","9_x","2021-06-30T11:57:00 UTC","","14",0,"","bob[bob] @ h []","h","",'
         '"",""', ("auth", "CHANGE USER", "success", "bob", "h", "14", None, None)),
        ('"Init DB","9_x","2021-06-30T11:57:00 UTC","","14",1049,"","bob[bob] @ h []","h","",'
         '"",""', ("other", "USE", "failure", "bob", "h", "14", None, None)),
        ('"Query","9_x","2021-06-30T11:57:00 UTC","insert","14",0,"insert into t values (\'a,\n'
         'b\')","bob[bob] @ h []","h","","",""',
         (None, None, "success", "bob", "h", "14", None, "insert into t values ('a,\nb')")),
    ],
)
def test_csv_layouts(write_log, record, expected):
    _, parsed = parse(write_log, record + "\n")
    assert parsed.quarantine.height == 0
    got = parsed.events.select("category", "action", "outcome", "actor", "src_ip",
                               "session_id", "database", "statement").row(0)
    assert got == expected


def test_csv_multiline_records_keep_their_first_line(write_log):
    rec = ('"Query","{n}_x","2021-06-30T11:57:0{n} UTC","select","2",0,"select\n\n1 ""x""",'
           '"u[u] @ h []","h","","",""\n')
    _, parsed = parse(write_log, rec.format(n=1) + rec.format(n=2))
    assert parsed.events["raw_ref"].str.replace(".*:", "").to_list() == ["1", "4"]
    assert parsed.events["statement"].to_list() == ['select\n\n1 "x"'] * 2


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (CSV + '"Query","5_x","2021-06-30T12:00:01 UTC","select","3",0,"select\n', "truncated"),
        (JSON + '{"audit_record":{"name":"Query","record":"5_x","timest', "truncated"),
        (NEW + "<AUDIT_RECORD>\n  <NAME>Query</NAME>\n", "truncated"),
        (OLD + '<AUDIT_RECORD\n  NAME="Query"\n', "truncated"),
        (CSV + '"Query","5_x","2021-06-30T12:00:01 UTC","select"\n', "4 fields"),
        (CSV + '"Query","5_x",x"y",1\n', "not a CSV audit record"),
    ],
)
def test_bad_or_cut_last_record_is_quarantined(write_log, text, reason):
    _, parsed = parse(write_log, text)
    assert parsed.events.height == 4
    assert parsed.quarantine.height == 1
    q = parsed.quarantine.row(0, named=True)
    assert q["reason"].startswith(reason) and q["file"].endswith("audit.log")
    assert q["line"] > 1


def test_a_line_that_is_no_record_is_quarantined_in_json(write_log):
    _, parsed = parse(write_log, JSON.replace("\n", "\nsome noise\n", 1))
    assert parsed.events.height == 4
    assert parsed.quarantine.select("line", "reason").rows() == [
        (2, "not a Percona audit_log JSON record")]


def test_forced_percona_reads_audit_log_filter_files(write_log):
    text = ('[\n{ "timestamp": "2023-03-29 11:17:05", "id": 5, "class": "general", "event": '
            '"status", "connection_id": 11, "account": { "user": "root", "host": "localhost" }, '
            '"login": { "user": "root", "os": "", "ip": "", "proxy": "" }, "general_data": { '
            '"command": "Query", "sql_command": "create_table", "query": "CREATE TABLE t1 (c1 '
            'INT)", "status": 0 } }\n]\n')
    path = write_log(text)
    assert read_file(path)[0] == "mysql_enterprise"
    fmt, parsed = read_file(path, format="percona")
    assert fmt == "percona" and parsed.events.row(0, named=True)["source"] == "percona"
    assert parsed.events.row(0, named=True)["statement"] == "CREATE TABLE t1 (c1 INT)"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (OLD.encode(), True),
        (NEW.encode(), True),
        (JSON.encode(), True),
        (CSV.encode(), True),
        (SYSLOG.encode(), True),
        (b'<AUDIT>\n<AUDIT_RECORD NAME="Query" RECORD_ID="1_x"/>', False),  # MySQL Enterprise
        (b'[\n{ "timestamp": "2020-10-19 19:21:33", "id": 0, "class": "audit" }', False),
        (b"2021-02-15 01:14:08 DEBUG Filter:137 - Got Event: { \"message\" : \"<14>Feb 12 "
         b'07:18:30 dbqa09 percona-audit: {"audit_record":{"name":"Query"}}', False),
        (b'"2024-05-01 10:00:00.000 UTC","alice","shop",10,"[local]",x,1,"idle"', False),
        (b"2024-05-01 10:00:00 UTC [10] LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,\n",
         False),
    ],
)
def test_detect(head, expected):
    assert percona.detect(head) is expected


def test_detect_format_picks_percona_for_each_format():
    for text in FORMATS.values():
        assert detect_format(text.encode()) == "percona"
