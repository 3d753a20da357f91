"""Benchmark the finding detectors on synthetic enriched events.

Builds N events (default 1,000,000) over 30 days: a few hundred people and service accounts,
office hours with some night work, reads/writes over a pool of statements (enriched once per
distinct statement, as ``auditkit.load`` does), logins with a few failed-login bursts, exports,
grants and DDL sprinkled in. Then times ``auditkit.findings.find`` (every detector) and prints
events/s and the findings per detector.
Run: ``.venv/bin/python benchmarks/bench_findings.py [--events N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import polars as pl

from auditkit.enrich import enrich
from auditkit.findings import find
from auditkit.schema import EVENT_SCHEMA

START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)  # a Monday
DAYS = 30

# (statement, category, action, object) — the statement pool the events draw from
STATEMENTS = [
    ("SELECT id, name, email FROM public.customers WHERE id = $1", "read", "SELECT",
     "public.customers"),
    ("SELECT id, total FROM public.orders WHERE customer_id = $1", "read", "SELECT",
     "public.orders"),
    ("SELECT sku, qty FROM public.order_items WHERE order_id = $1", "read", "SELECT",
     "public.order_items"),
    ("SELECT id, name, ssn FROM public.customers WHERE id = $1", "read", "SELECT",
     "public.customers"),
    ("SELECT card_number, expiry FROM payments.cards WHERE customer_id = $1", "read", "SELECT",
     "payments.cards"),
    ("INSERT INTO public.orders (id, customer_id, total) VALUES ($1, $2, $3)", "write", "INSERT",
     "public.orders"),
    ("UPDATE public.orders SET total = $1 WHERE id = $2", "write", "UPDATE", "public.orders"),
    ("SELECT count(*) FROM public.orders", "read", "SELECT", "public.orders"),
]
RARE = [
    ("COPY (SELECT * FROM public.customers) TO STDOUT WITH CSV", "export", "COPY",
     "public.customers"),
    ("GRANT SELECT ON public.orders TO reporting", "permission", "GRANT", "public.orders"),
    ("ALTER ROLE reporting SUPERUSER", "permission", "ALTER ROLE", "role:reporting"),
    ("CREATE TABLE public.tmp_x (id int)", "schema", "CREATE TABLE", "public.tmp_x"),
    ("SET pgaudit.log = 'none'", "audit_config", "SET", None),
]


def _uniform(salt: int) -> pl.Expr:
    """A pseudo-random float in [0, 1) per row (a hash of the row index; no numpy needed)."""
    return (pl.int_range(pl.len(), dtype=pl.UInt64).hash(salt) % 1_000_003) / 1_000_003.0


def _integers(salt: int, high: int) -> pl.Expr:
    return (pl.int_range(pl.len(), dtype=pl.UInt64).hash(salt) % high).cast(pl.Int64)


def synthetic_events(n: int, seed: int = 7) -> pl.DataFrame:
    people = 300
    base = pl.DataFrame({"_n": pl.int_range(n, eager=True)})
    frame = base.with_columns(
        _who=_integers(seed, people),
        _day=_integers(seed + 1, DAYS),
        # office hours: the mean of three uniforms around 13:00, 7-19; services and 0.2% any time
        _office=7 + 12 * (_uniform(seed + 2) + _uniform(seed + 3) + _uniform(seed + 4)) / 3,
        _any=24 * _uniform(seed + 5),
        _night=_uniform(seed + 6) < 0.002,
        _kind=_uniform(seed + 7),
        _pick=_integers(seed + 8, len(STATEMENTS)),
        _rare=_integers(seed + 9, len(RARE)),
        _fail=_uniform(seed + 10) < 0.02,
        _rows=pl.when(_uniform(seed + 11) < 0.3).then(_integers(seed + 12, 50) + 1),
        _newip=_uniform(seed + 13) < 0.001,
        _ipn=_integers(seed + 14, 50_000),
        _sec=60 * _uniform(seed + 15),
    ).with_columns(
        _hour=pl.when((pl.col("_who") < 10) | pl.col("_night")).then("_any").otherwise("_office"),
        _login=(pl.col("_kind") >= 0.0005) & (pl.col("_kind") < 0.05),
        _i=pl.when(pl.col("_kind") < 0.0005).then(len(STATEMENTS) + pl.col("_rare"))
        .otherwise("_pick"),
        _ip=pl.when("_newip").then("_ipn").otherwise("_who"),
    ).with_columns(
        time=pl.lit(START) + pl.duration(
            microseconds=((pl.col("_day") * 86400 + pl.col("_hour") * 3600 + pl.col("_sec"))
                          * 1e6).cast(pl.Int64)),
    )
    pool = pl.DataFrame(STATEMENTS + RARE, schema=["statement", "category", "action", "object"],
                        orient="row")
    joined = frame.join(pool.with_row_index("_i").with_columns(pl.col("_i").cast(pl.Int64)),
                        on="_i", how="left")
    actor = pl.when(pl.col("_who") < 10).then(pl.format("svc_{}", "_who")).otherwise(
        pl.format("user_{}", "_who"))
    events = joined.select(
        "time",
        source=pl.lit("pgaudit"), layer=pl.lit("workflow"),
        category=pl.when("_login").then(pl.lit("auth")).otherwise("category"),
        action=pl.when("_login").then(pl.lit("LOGIN")).otherwise("action"),
        outcome=pl.when(pl.col("_login") & pl.col("_fail")).then(pl.lit("failure"))
        .otherwise(pl.lit("success")),
        actor=actor, actor_type=pl.lit("db_user"),
        src_ip=pl.format("10.{}.{}.{}", pl.col("_ip") // 65536, (pl.col("_ip") // 256) % 256,
                         pl.col("_ip") % 256),
        client_app=pl.when(pl.col("_who") < 10).then(pl.lit("shop-api")).otherwise(
            pl.lit("DBeaver 24.1.3 - Main")),
        database=pl.lit("shop"),
        object=pl.when("_login").then(None).otherwise("object"),
        statement=pl.when("_login").then(None).otherwise("statement"),
        session_id=pl.format("s{}-{}", "_who", pl.col("time").dt.epoch("s") // 3600),
        rows=pl.when("_login").then(None).otherwise("_rows"),
        event_id=pl.col("_n").cast(pl.String),
    )
    events = events.select(
        (pl.col(c) if c in events.columns else pl.lit(None)).cast(t).alias(c)
        for c, t in EVENT_SCHEMA.items()
    )
    return events.sort("time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    started = time.perf_counter()
    events = enrich(synthetic_events(args.events, args.seed))
    built = time.perf_counter() - started
    print(f"built and enriched {events.height:,} events in {built:.1f} s")

    started, cpu = time.perf_counter(), time.process_time()
    findings = find(events)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"find: {events.height:,} events in {elapsed:.2f} s "
          f"({events.height / elapsed:,.0f} events/s; {cpu:.2f} s CPU over all threads), "
          f"{findings.height:,} findings")
    print(findings.group_by("detector", "severity").len().sort("detector", "severity"))


if __name__ == "__main__":
    main()
