"""auditkit: investigate database audit trails with Polars.

    import auditkit
    result = auditkit.load(["sample_logs/"])      # read + normalize + enrich
    events = result.events                          # one row per audited event
    access = auditkit.access_table(events)          # who read/wrote/changed what
"""

__version__ = "0.1.0"
