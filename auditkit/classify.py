"""Which columns are sensitive: a classification of column-name patterns and explicit names.

The defaults (``auditkit/data/classification.yml``) cover SSNs, card numbers, passwords and
secrets, emails, phone numbers, birth dates and bank accounts. A user file extends or replaces
them::

    patterns:                      # label -> regexes on the bare column name (case-insensitive)
      health: ['^diagnosis', 'icd10']
    columns:                       # exact schema.table.column -> label
      billing.payments.cards.cardholder: pii
    not_sensitive: [public.orders.phone_ext]
    replace_defaults: false
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import polars as pl
import yaml

from auditkit.errors import ConfigError


@dataclass(frozen=True)
class Classification:
    """Sensitive-column rules: ``patterns`` (label -> regexes), ``columns`` (name -> label)."""

    patterns: dict[str, list[str]]
    columns: dict[str, str] = field(default_factory=dict)
    not_sensitive: frozenset[str] = frozenset()

    def label(self, column: pl.Expr) -> pl.Expr:
        """Label of each qualified column name (``schema.table.column``), null if not sensitive."""
        bare = column.str.extract(r"([^.]+)$", 1).str.to_lowercase()
        lowered = column.str.to_lowercase()
        expr = pl.when(lowered.is_in(sorted(self.not_sensitive))).then(pl.lit(None, pl.String))
        if self.columns:
            expr = expr.when(lowered.is_in(sorted(self.columns))).then(
                lowered.replace_strict(self.columns, default=None, return_dtype=pl.String)
            )
        for label, regexes in self.patterns.items():
            joined = "(?i)" + "|".join(f"(?:{r})" for r in regexes)
            expr = expr.when(bare.str.contains(joined)).then(pl.lit(label))
        return expr.otherwise(pl.lit(None, pl.String))

    def sensitive_objects(self) -> list[str]:
        """Tables named by explicit column entries (``SELECT *`` on them reads sensitive data)."""
        return sorted({name.rsplit(".", 1)[0] for name in self.columns})


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read classification ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: classification must be a mapping")
    unknown = set(data) - {"patterns", "columns", "not_sensitive", "replace_defaults"}
    if unknown:
        raise ConfigError(f"{path}: unknown classification keys {sorted(unknown)}")
    return data


def load_classification(path: str | Path | None = None) -> Classification:
    """The default classification, extended (or replaced) by the user's YAML file."""
    defaults = yaml.safe_load(
        resources.files("auditkit").joinpath("data/classification.yml").read_text()
    )
    patterns = {k: list(v) for k, v in defaults["patterns"].items()}
    columns: dict[str, str] = {}
    not_sensitive: set[str] = set()
    if path is not None:
        user = _read_yaml(Path(path))
        if user.get("replace_defaults"):
            patterns = {}
        for label, regexes in (user.get("patterns") or {}).items():
            patterns.setdefault(label, []).extend(
                [regexes] if isinstance(regexes, str) else list(regexes)
            )
        columns = {k.lower(): str(v) for k, v in (user.get("columns") or {}).items()}
        not_sensitive = {c.lower() for c in user.get("not_sensitive") or []}
    import re

    for label, regexes in patterns.items():
        for regex in regexes:
            try:
                re.compile(regex)
            except re.error as exc:
                raise ConfigError(f"classification pattern {label}: {regex!r}: {exc}") from None
    return Classification(patterns, columns, frozenset(not_sensitive))
