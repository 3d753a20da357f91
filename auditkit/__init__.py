"""auditkit: investigate database audit trails with Polars.

    import auditkit
    result = auditkit.load(["sample_logs/"])      # read + normalize + enrich
    events = result.events                          # one row per audited event
    access = auditkit.access_table(events)          # who read/wrote/changed what
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from auditkit.sources import ReadResult


def load(
    paths: list[str | Path] | str | Path,
    *,
    format: str | None = None,
    pg_prefix: str | None = None,
    tz: str = "UTC",
    tz_abbrevs: dict[str, str] | None = None,
    classification: str | Path | None = None,
    progress: bool = False,
) -> ReadResult:
    """Read, normalize and enrich every file under ``paths`` (files, folders, .gz, .parquet)."""
    from auditkit.classify import load_classification
    from auditkit.enrich import enrich
    from auditkit.sources import read

    result = read(
        paths, format=format, pg_prefix=pg_prefix, tz=tz, tz_abbrevs=tz_abbrevs,
        progress=progress,
    )
    result.events = enrich(result.events, load_classification(classification))
    return result


def access_table(events, classification=None):
    """The access table of enriched events (see ``auditkit.access``)."""
    from auditkit.access import access_table as _access_table
    from auditkit.classify import Classification, load_classification

    if not isinstance(classification, Classification):
        classification = load_classification(classification)
    return _access_table(events, classification)


# The explore app (ipywidgets, imported when called). Bound here, after the module is imported,
# so that ``auditkit.explore`` is the function rather than the module of the same name.
from auditkit.explore import explore  # noqa: E402

__all__ = ["load", "access_table", "explore", "__version__"]
