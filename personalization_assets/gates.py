"""Blocking checks evaluated inside their asset, before its output is stored ("checked before written").

A separate `@asset_check` step runs after the IO manager has written the partition, so a failing blocking
check there leaves bad rows in the warehouse. Assets that guard a gate declare the checks in `check_specs`,
compute the results on the frame they are about to return, and pass them through `gated_output`: every result
is reported; if a blocking one failed, the step fails before any output, so the old rows stay
(../shared/VERIFIED.md: a result yielded before a raised `Failure` is recorded, `handle_output` is not called).
"""

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, Failure, MetadataValue, Output


def gated_output(
    value: object,
    results: Iterable[AssetCheckResult],
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[AssetCheckResult | Output]:
    """Yield each check result, then `Output(value, metadata)` only if no blocking (ERROR) check failed;
    otherwise raise a `Failure` naming the failed checks, so nothing is written."""
    failed: list[str] = []
    for result in results:
        yield result
        if not result.passed and result.severity == AssetCheckSeverity.ERROR:
            failed.append(result.check_name or "check")
    if failed:
        raise Failure(
            description=f"blocking check(s) failed: {', '.join(failed)}; the stored rows were left unchanged",
            metadata={"failed_checks": MetadataValue.text(", ".join(failed))},
        )
    yield Output(value, metadata=dict(metadata or {}))


def blocking_spec(name: str, asset: str, description: str) -> AssetCheckSpec:
    return AssetCheckSpec(name, asset=asset, description=description, blocking=True)


def warning_spec(name: str, asset: str, description: str) -> AssetCheckSpec:
    return AssetCheckSpec(name, asset=asset, description=description)
