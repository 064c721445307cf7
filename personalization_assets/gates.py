"""Blocking checks evaluated inside their asset, before its output is stored ("checked before written").

A separate `@asset_check` step runs after the IO manager has written the partition, so a failing blocking
check there leaves bad rows in the warehouse. Assets that guard a gate declare the checks in `check_specs`,
compute the results on the frame they are about to return, and pass them through `gated_output`. If a blocking
one failed, every result is reported and the step fails before any output, so the old rows stay
(../shared/VERIFIED.md: a result yielded before a raised `Failure` is recorded, `handle_output` is not called).
If none failed, the output is stored first and the results follow it, so each is attached to the
materialization it judged (the UI's per-partition check status counts only results tied to a materialization).
"""

import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    Failure,
    MetadataValue,
    Output,
    PreviewWarning,
)

from personalization_assets.metadata import markdown_preview
from personalization_assets.partitions import segment_partitions


def gated_output(
    value: object,
    results: Iterable[AssetCheckResult],
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[AssetCheckResult | Output]:
    """`Output(value, metadata)` then each check result when no blocking (ERROR) check failed; otherwise each
    result, then a `Failure` naming the failed checks, so nothing is written."""
    evaluated = list(results)  # every check is computed before anything is yielded: the gate decides the write
    failed = [
        result.check_name or "check"
        for result in evaluated
        if not result.passed and result.severity == AssetCheckSeverity.ERROR
    ]
    if failed:
        yield from evaluated
        raise Failure(
            description=f"blocking check(s) failed: {', '.join(failed)}; the stored rows were left unchanged",
            metadata={"failed_checks": MetadataValue.text(", ".join(failed))},
        )
    yield Output(value, metadata=dict(metadata or {}))
    yield from evaluated


def check_result(
    name: str,
    passed: bool,
    metadata: Mapping[str, object],
    *,
    warn: bool = False,
    description: str | None = None,
    asset_key: str | None = None,
    preview_rows: int | None = 10,
) -> AssetCheckResult:
    """The Dagster result of one check: frames in its metadata become Markdown tables (their first
    `preview_rows` rows; None: every row), WARN severity for a warning check, ERROR for a blocking one."""
    values: dict[str, Any] = {
        key: markdown_preview(value, rows=len(value) if preview_rows is None else preview_rows)
        if isinstance(value, pd.DataFrame)
        else value
        for key, value in metadata.items()
    }
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=name,
        passed=passed,
        severity=AssetCheckSeverity.WARN if warn else AssetCheckSeverity.ERROR,
        description=description,
        metadata=values,
    )


# Every gated asset is per segment: the specs carry the segment partitions, so each evaluation is recorded for its
# segment (the UI's check page lists results per partition), not as one unpartitioned result. (`partitions_def`
# on a check spec is a Dagster preview feature; its warning is expected here, not news.)
def _segment_spec(name: str, asset: str, description: str, blocking: bool) -> AssetCheckSpec:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return AssetCheckSpec(
            name, asset=asset, description=description, blocking=blocking, partitions_def=segment_partitions
        )


def blocking_spec(name: str, asset: str, description: str) -> AssetCheckSpec:
    return _segment_spec(name, asset, description, blocking=True)


def warning_spec(name: str, asset: str, description: str) -> AssetCheckSpec:
    return _segment_spec(name, asset, description, blocking=False)
