"""Turning logged local times into UTC, with documented, overridable assumptions.

PostgreSQL prints ``log_timezone`` as an abbreviation (``CEST``) or a numeric offset (``+0430``).
Abbreviations are ambiguous (IST is India, Israel and Ireland), so the map below is an explicit,
documented choice that users override with ``tz_abbrevs={"IST": "+01:00"}`` (CLI
``--tz-abbrev IST=+01:00``). Times with no zone at all are read in ``tz`` (CLI ``--tz``, default
UTC). See docs/schema.md, "Times".
"""

from __future__ import annotations

import re

import polars as pl

from auditkit.errors import ConfigError
from auditkit.schema import UTC_TIME

# abbreviation -> offset in minutes east of UTC
ABBREVIATIONS: dict[str, int] = {
    "UTC": 0, "GMT": 0, "Z": 0, "UT": 0, "WET": 0, "WEST": 60, "BST": 60,
    "CET": 60, "CEST": 120, "MET": 60, "MEST": 120, "EET": 120, "EEST": 180, "MSK": 180,
    "IST": 330,  # India; Israel (+2) and Ireland (+1) also print IST: override if needed
    "PKT": 300, "NPT": 345, "ICT": 420, "WIB": 420, "HKT": 480, "SGT": 480, "AWST": 480,
    "CST": -360,  # US Central; China Standard Time also prints CST: override if needed
    "JST": 540, "KST": 540, "ACST": 570, "ACDT": 630, "AEST": 600, "AEDT": 660,
    "NZST": 720, "NZDT": 780, "SAST": 120, "EAT": 180, "WAT": 60, "CAT": 120,
    "BRT": -180, "ART": -180, "CLT": -240, "NST": -210, "NDT": -150,
    "AST": -240, "ADT": -180, "EST": -300, "EDT": -240, "CDT": -300,
    "MST": -420, "MDT": -360, "PST": -480, "PDT": -420, "AKST": -540, "AKDT": -480,
    "HST": -600,
    "SST": -660,  # Samoa; Singapore also printed SST in old setups: override if needed
}

_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})?$")


def parse_offset(text: str) -> int:
    """'+0430' / '-07' / '+05:30' -> minutes east of UTC."""
    match = _OFFSET.match(text.strip())
    if not match:
        raise ConfigError(f"invalid UTC offset {text!r}: use +HH:MM, e.g. +05:30")
    sign = 1 if match.group(1) == "+" else -1
    return sign * (int(match.group(2)) * 60 + int(match.group(3) or 0))


def abbreviation_map(overrides: dict[str, str] | None = None) -> dict[str, int]:
    """The default abbreviation map with the user's overrides applied."""
    result = dict(ABBREVIATIONS)
    for abbrev, offset in (overrides or {}).items():
        result[abbrev.upper()] = parse_offset(offset)
    return result


def zone_minutes(zones: list[str | None], overrides: dict[str, str] | None = None) -> dict:
    """Offset in minutes east of UTC of each distinct zone token (None when unknown)."""
    abbrevs = abbreviation_map(overrides)
    result: dict[str, int | None] = {}
    for zone in zones:
        if zone is None:
            continue
        key = zone.upper()
        if key in abbrevs:
            result[zone] = abbrevs[key]
        elif _OFFSET.match(zone):
            result[zone] = parse_offset(zone)
        else:
            result[zone] = None
    return result


def with_utc_time(
    frame: pl.DataFrame,
    text: str = "time_text",
    tz: str = "UTC",
    overrides: dict[str, str] | None = None,
) -> pl.DataFrame:
    """Add ``time`` (UTC) and ``tz_assumed`` from 'YYYY-MM-DD HH:MM:SS[.fff][ ZONE]' strings.

    ZONE may be an abbreviation, a numeric offset or absent; absent or unknown zones are read in
    ``tz`` and flagged in ``tz_assumed``. Zones are resolved once per distinct token.
    """
    iso_t = r"^(\d{4}-\d{2}-\d{2})T"  # ISO 'T' between date and time, not the T of 'CEST'
    parts = pl.col(text).str.strip_chars().str.replace(iso_t, "$1 ").str.splitn(" ", 3)
    frame = frame.with_columns(_parts=parts).with_columns(
        _local=pl.concat_str(
            pl.col("_parts").struct.field("field_0"), pl.lit(" "),
            pl.col("_parts").struct.field("field_1"),
        ).str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=False),
        _zone=pl.col("_parts").struct.field("field_2"),
    )
    zones = frame.get_column("_zone").unique().to_list()
    minutes = zone_minutes(zones, overrides)
    frame = frame.with_columns(
        _minutes=pl.col("_zone").replace_strict(minutes, default=None, return_dtype=pl.Int64)
    )
    local = pl.col("_local")
    known = local.dt.replace_time_zone("UTC") - pl.duration(minutes=pl.col("_minutes"))
    if frame.get_column("_minutes").null_count() > frame.get_column("_local").null_count():
        assumed = local.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        utc = pl.coalesce(known, assumed.dt.convert_time_zone("UTC"))
    else:
        utc = known
    return frame.with_columns(
        time=utc.cast(UTC_TIME),
        tz_assumed=pl.col("_minutes").is_null() & local.is_not_null(),
    ).drop("_parts", "_local", "_zone", "_minutes")
