"""Warehouse reads and writes that are not asset outputs: SQL readers of upstream tables, the caches of paid
service answers, the append-only safety audit. No Dagster imports; the stage modules call these."""
