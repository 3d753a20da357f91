"""Identity: who is the person behind an account.

This first step applies only links the user supplies (an identity map); inferred links with
evidence arrive with the identity-resolution work. Nothing is attributed without a link.

Identity map, YAML::

    alice: [alice, alice@corp.com, "arn:aws:iam::123456789012:user/alice"]
    bob:   {accounts: [bob, bob_admin]}

or CSV with columns ``person,account``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import yaml

from auditkit.errors import ConfigError


def load_identity_map(path: str | Path) -> dict[str, str]:
    """account -> person, from a YAML or CSV identity map."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read identity map ({exc})") from None
    links: dict[str, str] = {}
    if path.suffix.lower() == ".csv":
        for row in csv.DictReader(text.splitlines()):
            if not row.get("person") or not row.get("account"):
                raise ConfigError(f"{path}: CSV identity map needs columns person,account")
            links[row["account"].strip()] = row["person"].strip()
        return links
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: identity map must map person -> accounts")
    for person, accounts in data.items():
        if isinstance(accounts, dict):
            accounts = accounts.get("accounts", [])
        if isinstance(accounts, str):
            accounts = [accounts]
        for account in accounts:
            links[str(account)] = str(person)
    return links


def apply_identity_map(events: pl.DataFrame, links: dict[str, str]) -> pl.DataFrame:
    """Fill ``person`` where the actor is an account the map links to a person."""
    if not links:
        return events
    person = pl.col("actor").replace_strict(links, default=None, return_dtype=pl.String)
    return events.with_columns(person=pl.coalesce("person", person))
