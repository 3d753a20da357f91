"""The catalogue of database-relevant cloud actions: data, not code.

``auditkit/data/cloud_actions_<cloud>.yml`` (aws, gcp, azure) list, per action, its event
``category`` and, when the action is risky, a ``risk`` level and a one-line ``reason``; an optional
``when`` regex on the event's request JSON (the ``statement`` column) narrows an entry to the
risky variant (``ModifyDBSnapshotAttribute`` only when ``valuesToAdd`` holds ``all``)::

    - action: ModifyDBSnapshotAttribute        # eventName / methodName / operationName
      service: rds.amazonaws.com                # optional: eventSource / serviceName / provider
      category: backup
      risk: high                                # high | medium; omit when not risky
      reason: RDS snapshot shared publicly
      when: '"valuesToAdd":\\[[^\\]]*"all"'

Cloud sources call :func:`apply_catalogue` on their events: matching is case-insensitive on the
action (and service when given); the first entry without ``when`` sets the category; every
matching risky entry adds its reason to ``extra.risks`` and the highest level to
``extra.risk``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import polars as pl
import yaml

from auditkit.errors import ConfigError

CLOUDS = ("aws", "gcp", "azure")
RISK_LEVELS = {"medium": 1, "high": 2}
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's when built with it
CATALOGUE_SCHEMA: dict[str, pl.DataType] = {
    "cloud": pl.String(),
    "action": pl.String(),
    "service": pl.String(),
    "category": pl.String(),
    "risk": pl.String(),
    "reason": pl.String(),
    "when": pl.String(),
}


@cache
def load_catalogue() -> pl.DataFrame:
    """Every catalogue entry of every cloud, one row each (``CATALOGUE_SCHEMA``)."""
    rows: list[dict] = []
    data = resources.files("auditkit").joinpath("data")
    for cloud in CLOUDS:
        entry = data.joinpath(f"cloud_actions_{cloud}.yml")
        if not entry.is_file():
            continue
        try:
            items = yaml.load(entry.read_text(), Loader=SAFE_LOADER) or []
        except yaml.YAMLError as exc:
            raise ConfigError(f"cloud_actions_{cloud}.yml: {exc}") from None
        for item in items:
            unknown = set(item) - set(CATALOGUE_SCHEMA)
            if unknown or "action" not in item or "category" not in item:
                raise ConfigError(f"cloud_actions_{cloud}.yml: bad entry {item!r}")
            if item.get("risk") not in (None, *RISK_LEVELS):
                raise ConfigError(f"cloud_actions_{cloud}.yml: risk must be high or medium")
            rows.append({**dict.fromkeys(CATALOGUE_SCHEMA), **item, "cloud": cloud})
    return pl.DataFrame(rows, schema=CATALOGUE_SCHEMA)


@cache
def _entries(cloud: str) -> pl.DataFrame:
    """The catalogue of one cloud, keyed for matching (prepared once per process)."""
    return (
        load_catalogue()
        .filter(pl.col("cloud") == cloud)
        .with_columns(
            _action=pl.col("action").str.to_lowercase(),
            _entry_service=pl.col("service").str.to_lowercase(),
        )
        .select("_action", "_entry_service", "category", "risk", "reason", "when")
    )


def apply_catalogue(events: pl.DataFrame, cloud: str, service: str = "service") -> pl.DataFrame:
    """Events with category and risk from the catalogue of ``cloud``.

    ``events`` needs ``action``, ``category``, ``statement``, ``extra`` and a column named by
    ``service`` (the API's service; may be null). Entries are matched per distinct
    (action, service, statement), so the regexes run once per distinct request, not per event.
    """
    entries = _entries(cloud)
    if entries.is_empty() or events.is_empty():
        return events
    keyed = events.with_columns(
        _action=pl.col("action").str.to_lowercase(),
        _service=pl.col(service).str.to_lowercase() if service in events.columns else None,
    )
    distinct = keyed.select("_action", "_service", "statement").unique()
    candidates = distinct.join(entries, on="_action", how="inner").filter(
        pl.col("_entry_service").is_null() | (pl.col("_entry_service") == pl.col("_service"))
    )
    if candidates.is_empty():
        return events
    holds = pl.col("when").is_null() | pl.col("statement").fill_null("").str.contains(
        pl.col("when").fill_null("")
    )
    matched = candidates.filter(holds)
    rank = pl.col("risk").replace_strict(RISK_LEVELS, default=0, return_dtype=pl.Int8)
    verdict = matched.group_by("_action", "_service", "statement").agg(
        _category=pl.col("category").filter(pl.col("when").is_null()).first(),
        _risk=pl.col("risk").sort_by(rank, descending=True).first(),
        _reasons=pl.col("reason").filter(pl.col("risk").is_not_null()).unique(maintain_order=True),
    )
    out = keyed.join(verdict, on=["_action", "_service", "statement"], how="left",
                     nulls_equal=True, maintain_order="left")
    risky = pl.col("_risk").is_not_null()
    risk_json = pl.struct(
        risk=pl.col("_risk"), risks=pl.col("_reasons")
    ).struct.json_encode().str.strip_prefix("{")
    extra = pl.col("extra").fill_null("{}")
    return out.with_columns(
        category=pl.coalesce("_category", "category"),
        extra=pl.when(risky)
        .then(
            pl.when(extra == "{}")
            .then(pl.lit("{") + risk_json)
            .otherwise(extra.str.strip_suffix("}") + pl.lit(",") + risk_json)
        )
        .otherwise(pl.col("extra")),
    ).drop("_action", "_service", "_category", "_risk", "_reasons")
