"""MariaDB server_audit: the line grammar, escapes, variants, statement groups, detection."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

import auditkit.sources.mariadb as mariadb  # noqa: F401  (importing registers the source)
from auditkit.access import access_table
from auditkit.enrich import enrich
from auditkit.sources import detect_format, get_source, read_file

H = "20240501 10:00:00,db1,alice,10.0.0.5,7"

# line -> (category, action, outcome, error, actor, src_ip, database, object, statement,
#          statement_id, extra subset)
RECORDS = [
    (f"{H},0,CONNECT,shop,,0",
     ("auth", "LOGIN", "success", None, "alice", "10.0.0.5", "shop", None, None, None,
      {"operation": "CONNECT", "connection_id": "7"})),
    (f"{H},0,FAILED_CONNECT,,,1045",
     ("auth", "LOGIN", "failure", "1045", "alice", "10.0.0.5", None, None, None, None, {})),
    ("20240501 10:00:00,db1,,10.0.0.5,7,0,DISCONNECT,,,0",
     ("auth", "LOGOUT", "success", None, None, "10.0.0.5", None, None, None, None, {})),
    (f"{H},0,CONNECT,shop,TLSv1.3,0",
     ("auth", "LOGIN", "success", None, "alice", "10.0.0.5", "shop", None, None, None,
      {"connection_info": "TLSv1.3"})),
    (f"{H},0,CHANGE_USER,shop,`bob`,0",
     ("auth", "CHANGE USER", "success", None, "alice", "10.0.0.5", "shop", None, None, None,
      {"connection_info": "`bob`"})),
    # commas, escaped quotes, backslashes and newlines inside the query
    (f"{H},12,QUERY,shop,'select \\'a,b\\', \\'c\\\\\\\\d\\'\\nfrom t, u where x=\\'\\\\n\\'',0",
     (None, None, "success", None, "alice", "10.0.0.5", "shop", None,
      "select 'a,b', 'c\\\\d'\nfrom t, u where x='\\n'", "12", {"operation": "QUERY"})),
    (f"{H},13,QUERY,shop,'select\\t1\\r\\n',1146",
     (None, None, "failure", "1146", "alice", "10.0.0.5", "shop", None, "select\t1\r\n", "13",
      {})),
    (f"{H},14,QUERY,,'select 1',0",
     (None, None, "success", None, "alice", "10.0.0.5", None, None, "select 1", "14", {})),
    # a query cut by server_audit_query_log_limit inside an escape: read leniently
    (f"{H},15,QUERY,shop,'select \\'abc\\',0",
     (None, None, "success", None, "alice", "10.0.0.5", "shop", None, "select 'abc\\", "15",
      {"query_lenient": True})),
    (f"{H},16,READ,shop,orders,",
     ("read", "READ", "unknown", None, "alice", "10.0.0.5", "shop", "shop.orders", None, "16",
      {"table_database": "shop"})),
    (f"{H},17,RENAME,shop,t1|shop.t2,",
     ("schema", "RENAME", "unknown", None, "alice", "10.0.0.5", "shop", "shop.t1", None, "17",
      {"renamed_to": "shop.t2"})),
    (f"{H},18,READ,mysql,table_stats,",
     ("other", "READ", "unknown", None, "alice", "10.0.0.5", "mysql", "mysql.table_stats", None,
      "18", {"internal": True})),
    # MariaDB 12: host:port; IPv6 stays whole unless bracketed
    ("20240501 10:00:00,db1,alice,192.168.1.24:54312,7,0,CONNECT,,,0",
     ("auth", "LOGIN", "success", None, "alice", "192.168.1.24", None, None, None, None,
      {"client_port": "54312"})),
    ("20240501 10:00:00,db1,alice,localhost:unavailable,7,0,CONNECT,,,0",
     ("auth", "LOGIN", "success", None, "alice", "localhost", None, None, None, None,
      {"client_port": "unavailable"})),
    ("20240501 10:00:00,db1,alice,2001:db8::5,7,0,CONNECT,,,0",
     ("auth", "LOGIN", "success", None, "alice", "2001:db8::5", None, None, None, None, {})),
    ("20240501 10:00:00,db1,alice,[2001:db8::5]:3306,7,0,CONNECT,,,0",
     ("auth", "LOGIN", "success", None, "alice", "2001:db8::5", None, None, None, None,
      {"client_port": "3306"})),
    # Aurora advanced auditing: QUERY_* operations, epoch microseconds
    ("1679569000492494,aurora-1,admin,10.1.1.1,9,3208,QUERY_DCL,testdb,'GRANT SELECT ON t TO u',0",
     (None, None, "success", None, "admin", "10.1.1.1", "testdb", None,
      "GRANT SELECT ON t TO u", "3208", {"operation": "QUERY_DCL"})),
    # the MySQL 8 port of the plugin (RDS): connection type as an 11th field
    ("20240501 10:00:00,db1,alice,10.0.0.5,7,0,CONNECT,shop,,0,SSL/TLS",
     ("auth", "LOGIN", "success", None, "alice", "10.0.0.5", "shop", None, None, None,
      {"connection_type": "SSL/TLS"})),
    # syslog output: no timestamp field, server_audit_syslog_info before the serverhost
    ("<190>Apr 13 14:43:13 mysql-server_auditing: columnstore-1 eff8a68bcd7f,user1,172.18.0.1,"
     "32,394,QUERY,syslog_ng,'SELECT * FROM test WHERE 0=1',1146",
     (None, None, "failure", "1146", "user1", "172.18.0.1", "syslog_ng", None,
      "SELECT * FROM test WHERE 0=1", "394",
      {"syslog_info": "columnstore-1", "year_assumed": True})),
    ("May  2 08:00:01 dbhost mysql-server_auditing:  db1,bob,10.0.0.9,3,0,CONNECT,,,0",
     ("auth", "LOGIN", "success", None, "bob", "10.0.0.9", None, None, None, None, {})),
]


@pytest.mark.parametrize(("record", "expected"), RECORDS, ids=lambda v: str(v)[:60])
def test_record_fields(write_log, record, expected):
    name, parsed = read_file(write_log(record + "\n", "server_audit.log"), format="mariadb")
    assert parsed.quarantine.height == 0, parsed.quarantine.to_dicts()
    assert parsed.records == parsed.events.height == 1
    row = parsed.events.row(0, named=True)
    extra = json.loads(row["extra"])
    got = tuple(row[c] for c in ("category", "action", "outcome", "error", "actor", "src_ip",
                                 "database", "object", "statement", "statement_id"))
    assert got == expected[:-1]
    assert {k: extra.get(k) for k in expected[-1]} == expected[-1]
    assert row["source"] == "mariadb" and row["layer"] == "workflow"
    assert row["object_type"] == ("table" if row["object"] else None)
    assert row["actor_type"] == ("db_user" if row["actor"] else "unknown")


# ------------------------------------------------------------------------------------------------
# times
# ------------------------------------------------------------------------------------------------

# timestamp field -> (tz option, expected UTC time, tz_assumed)
TIMES = [
    ("20220121 11:12:26", "UTC", datetime(2022, 1, 21, 11, 12, 26, tzinfo=UTC), True),
    ("20220121 11:12:26", "Europe/Berlin", datetime(2022, 1, 21, 10, 12, 26, tzinfo=UTC), True),
    ("20220721 11:12:26", "Europe/Berlin", datetime(2022, 7, 21, 9, 12, 26, tzinfo=UTC), True),
    ("1679569000492494", "Europe/Berlin",
     datetime(2023, 3, 23, 10, 56, 40, 492494, tzinfo=UTC), False),
    # server_audit_timestamp_format with free text and %z
    ("AUDIT 2024-05-01 12:00:00 +0200", "UTC", datetime(2024, 5, 1, 10, 0, tzinfo=UTC), False),
    ("2024-05-01T12:00:00.250", "Asia/Kolkata",
     datetime(2024, 5, 1, 6, 30, 0, 250000, tzinfo=UTC), True),
]


@pytest.mark.parametrize(("stamp", "tz", "expected", "assumed"), TIMES)
def test_times(write_log, stamp, tz, expected, assumed):
    text = f"{stamp},db1,alice,h,7,0,CONNECT,,,0\n"
    events = read_file(write_log(text, "a.log"), format="mariadb", tz=tz)[1].events
    assert events["time"].to_list() == [expected]
    assert json.loads(events["extra"][0]).get("tz_assumed", False) is assumed


def test_unreadable_time_is_kept_and_noted(write_log):
    parsed = read_file(write_log("TIME,db1,a,h,ID,0,CONNECT,,,0\n", "a.log"), format="mariadb")[1]
    assert parsed.events["time"].to_list() == [None]
    assert json.loads(parsed.events["extra"][0])["time_text"] == "TIME"
    assert parsed.notes == ["1 records with an unreadable time (kept in extra.time_text)"]


def test_syslog_year_is_never_in_the_future(write_log):
    line = "<190>Dec 31 23:59:59 mysql-server_auditing: db1,u,h,1,0,CONNECT,,,0\n"
    events = read_file(write_log(line, "a.log"), format="mariadb")[1].events
    now = datetime.now(UTC)
    assert events["time"][0] <= now + timedelta(days=1)
    assert events["time"][0].year in (now.year, now.year - 1)
    assert (events["time"][0].month, events["time"][0].day) == (12, 31)


# ------------------------------------------------------------------------------------------------
# framing, quarantine, statement groups
# ------------------------------------------------------------------------------------------------


def test_raw_newlines_of_old_plugins_continue_the_open_query(write_log):
    text = (
        f"{H},1,QUERY,shop,'select a,\nb\n\nfrom t',0\n"
        f"{H},2,QUERY,shop,'select 2',0\n"
        "garbage line\n"
        "\n"
        f"{H},3,QUERY,shop,'never closed\n"
        f"{H},4,QUERY,shop,'select 4',0\n"
    )
    parsed = read_file(write_log(text, "a.log"), format="mariadb")[1]
    events, quarantine = parsed.events, parsed.quarantine
    assert events["statement"].to_list() == ["select a,\nb\n\nfrom t", "select 2", "select 4"]
    assert events["raw_ref"].to_list()[0].endswith(":1")
    assert json.loads(events["extra"][0])["raw_lines"] == 4
    assert quarantine.select("line", "reason").rows() == [
        (6, "not a server_audit record (no known operation in the 7th field)"),
        (8, "query field is not a quoted string followed by a retcode"),
    ]
    assert parsed.records == 5 == events.height + quarantine.height


def test_unknown_lines_and_malformed_records_are_quarantined(write_log):
    text = (
        f"{H},0,CONNECT,shop,,0\n"
        "set global server_audit_logging=on;\n"
        f"{H},5,SOMETHING,shop,x,0\n"
        f"{H},6,QUERY,shop,0\n"  # no object field (Aurora sample's malformed line)
        f"{H},7,READ,shop\n"
    )
    parsed = read_file(write_log(text, "a.log"), format="mariadb")[1]
    assert parsed.events.height == 1
    assert parsed.quarantine["line"].to_list() == [2, 3, 4, 5]
    assert set(parsed.quarantine["format"]) == {"mariadb"}
    assert parsed.records == 5


def test_table_events_share_the_statement_group_and_outcome_of_their_query(write_log):
    text = (
        f"{H},20,WRITE,shop,orders,\n"
        "20240501 10:00:00,db1,bob,10.0.0.6,8,21,READ,shop,items,\n"  # another connection
        f"{H},20,READ,mysql,table_stats,\n"
        f"{H},20,QUERY,shop,'insert into orders values (1)',1062\n"
        f"{H},22,READ,crm,customers,\n"
        f"{H},22,QUERY,shop,'select * from crm.customers',0\n"
        f"{H},22,READ,crm,customers,\n"  # same query id after the QUERY: a new statement
        "20240501 10:00:00,db1,bob,10.0.0.6,8,21,QUERY,,'select * from shop.items',0\n"
    )
    events = read_file(write_log(text, "a.log"), format="mariadb")[1].events
    groups = [json.loads(e).get("stmt_group", "").split(":")[-1] for e in events["extra"]]
    assert groups == ["1", "2", "1", "1", "5", "5", "7", "2"]
    assert events["outcome"].to_list() == [
        "failure", "success", "failure", "failure", "success", "success", "unknown", "success"]
    assert events["error"].to_list()[:4] == ["1062", None, "1062", "1062"]
    # a TABLE event's database is its statement's; the table's own schema is in the object
    assert events["database"].to_list() == [
        "shop", "shop", "shop", "shop", "shop", "shop", "crm", None]
    assert events["object"].to_list() == [
        "shop.orders", "shop.items", "mysql.table_stats", None, "crm.customers", None,
        "crm.customers", None]
    assert events["session_id"].to_list()[:2] == ["db1/7", "db1/8"]


def test_access_table_counts_each_table_once_per_statement(write_log):
    text = (
        f"{H},30,READ,shop,orders,\n"
        f"{H},30,READ,shop,customers,\n"
        f"{H},30,QUERY,shop,'select * from orders o join customers c on c.id = o.cid',0\n"
        f"{H},31,WRITE,shop,orders,\n"
        f"{H},31,READ,mysql,table_stats,\n"
        f"{H},31,QUERY,shop,'delete from orders where id = 1',1451\n"
    )
    events = enrich(read_file(write_log(text, "a.log"), format="mariadb")[1].events)
    access = access_table(events)
    assert sorted(access.select("object", "access", "outcome").unique().rows()) == [
        ("shop.customers", "read", "success"),
        ("shop.orders", "read", "success"),
        ("shop.orders", "write", "failure"),
    ]
    # one statement per object and kind (rows per column are the same statement)
    per_kind = access.group_by("object", "access").agg(pl.col("event_id").n_unique())
    assert per_kind["event_id"].max() == 1


def test_alter_table_copy_is_the_ddl_own_work(write_log):
    text = (
        f"{H},40,ALTER,shop,notes,\n"
        f"{H},40,READ,shop,notes,\n"
        f"{H},40,READ,shop,other,\n"
        f"{H},40,QUERY,shop,'alter table notes add column a int',0\n"
    )
    events = read_file(write_log(text, "a.log"), format="mariadb")[1].events
    assert events["category"].to_list() == ["schema", "other", "read", None]
    assert json.loads(events["extra"][1])["internal"] is True


# ------------------------------------------------------------------------------------------------
# escapes, detection, registration
# ------------------------------------------------------------------------------------------------

# escaped text as logged -> the query
ESCAPED = [
    (r"a\'b", "a'b"),
    (r"a\\b", "a\\b"),
    (r"a\\nb", "a\\nb"),  # an escaped backslash followed by n is not a newline
    (r"a\\\'b", "a\\'b"),
    (r"a\nb\tc\rd\be\ff", "a\nb\tc\rd\be\ff"),
    ("x,y,'z'", "x,y,'z'"),
    ("\\", "\\"),
]


@pytest.mark.parametrize(("logged", "query"), ESCAPED)
def test_unescape(logged, query):
    got = pl.select(mariadb.unescape(pl.lit(logged))).item()
    assert got == query


# head -> detected by the mariadb source
DETECT = [
    (b"20220121 11:12:26,host,root,localhost,21,0,CONNECT,,,0\n", True),
    (b"1679569000492494,aurora,admin,10.0.0.1,9,3208,QUERY,db,'SELECT 1',0\n", True),
    (b"<190>Apr 13 14:43:13 mysql-server_auditing: info srv,u,h,32,394,QUERY,d,'S',0\n", True),
    (b"20220121 11:12:26,host,root,localhost,21,0,CONNECT,,,0\n20220121 11:12:2", True),
    (b"2024-05-01 10:00:00.000 UTC [10] alice@shop LOG:  statement: select 1\n", False),
    (b'2024-05-01 10:00:00.000 UTC,"alice","shop",10,"[local]",6632,1,"SELECT",'
     b'2024-05-01 10:00:00 UTC,3/4,0,LOG,00000,"statement: select 1",,,,,,,,,"psql"\n', False),
    (b'{"timestamp":"2024-05-01","user":"alice","operation":"QUERY"}\n', False),
    (b"TIME,HOSTNAME,root,localhost,ID,ID,QUERY,test,'select 1',0\n", False),  # MTR placeholders
    (b"set global server_audit_logging=on;\nselect 1;\n", False),
    (b"", False),
]


@pytest.mark.parametrize(("head", "expected"), DETECT)
def test_detect(head, expected):
    assert mariadb.detect(head) is expected


def test_detect_format_picks_mariadb_over_the_postgres_sources():
    assert detect_format(b"20220121 11:12:26,host,root,localhost,21,0,CONNECT,,,0\n") == "mariadb"


def test_registered():
    source = get_source("mariadb")
    assert source.layer == "workflow"
    assert "server_audit" in source.example
