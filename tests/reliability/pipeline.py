"""Shared by the bad-input, fault-injection and security suites: the real pipeline (every stage's assets,
checks and jobs) on a warehouse that already holds one good run, cheap per-case copies of it, table snapshots,
config copies, and the Azure-backed resources configured for the service emulators.

The good run (segmentation, content index, one segment's whole campaign on the embedded backends) is built
once per test process and copied into each case's tmp folder: a case costs one small run, not a pipeline.
"""

import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml
from dagster import (
    AssetKey,
    DagsterInstance,
    Definitions,
    colored_console_logger,
    in_process_executor,
    load_asset_checks_from_modules,
)

from personalization_assets import definitions
from personalization_assets.config.generation import GenerationConfig
from personalization_assets.config.retrieval import RetrievalConfig
from personalization_assets.config.safety import SafetyConfig
from personalization_assets.jobs import CAMPAIGN_JOB, SEGMENTATION_JOB
from personalization_assets.observability import json_logger
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME
from resources.content_safety import EmbeddedContentSafetyResource
from resources.llm import EmbeddedComposerResource
from resources.search import EmbeddedSearchResource
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEGMENT = "at_risk"  # the segment whose campaign the good run holds
CHECKS = load_asset_checks_from_modules(definitions.STAGE_MODULES)
# Emulator clients retry fast: waits of 10-50 ms instead of seconds.
FAST_SEARCH = {"max_retries": 2, "retry_backoff_seconds": 0.01, "retry_backoff_max_seconds": 0.05}
FAST_LLM_RETRIES = 2  # the openai SDK's retries (its own backoff: 0.5 s, 1 s; Retry-After honoured)
FAST_SAFETY_RETRY = {
    "max_retries": 2,
    "retry_backoff_seconds": 0.01,
    "retry_backoff_max_seconds": 0.05,
    "retry_after_max_seconds": 2,
}
# Key variables of the Azure backends as the emulator configs name them (tests set them with monkeypatch).
KEY_ENVS = {
    "search": "AZURE_SEARCH_API_KEY",
    "llm": "AZURE_OPENAI_API_KEY",
    "content_safety": "AZURE_CONTENT_SAFETY_KEY",
}


def pipeline(resources: Mapping[str, object]) -> Definitions:
    """The code location's assets, checks, jobs and loggers, bound to `resources` (instead of its own)."""
    return Definitions(
        assets=definitions.assets,
        asset_checks=CHECKS,
        jobs=definitions.jobs,
        executor=in_process_executor,
        loggers={"console": colored_console_logger, "json": json_logger},
        resources=dict(resources),
    )


def run_job(resources, instance, job: str = CAMPAIGN_JOB, *, assets: Iterable[str] | None = None, **kwargs):
    """Execute one of the pipeline's jobs in-process (the partition's selection, or only `assets` of it)."""
    selection = [AssetKey(name) for name in assets] if assets is not None else None
    kwargs.setdefault("partition_key", SEGMENT if job == CAMPAIGN_JOB else None)
    return (
        pipeline(resources)
        .resolve_job_def(job)
        .execute_in_process(instance=instance, raise_on_error=False, asset_selection=selection, **kwargs)
    )


def embedded_resources(settings: PipelineSettings, warehouse: DuckDBWarehouse) -> dict:
    return {
        "settings": settings,
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
        "search": EmbeddedSearchResource(warehouse=warehouse),
        "llm": EmbeddedComposerResource(),
        "content_safety": EmbeddedContentSafetyResource(),
    }


def configured_resources(settings: PipelineSettings, warehouse: DuckDBWarehouse) -> dict:
    """The service resources that the YAML in `settings.config_dir` selects, as definitions.py builds them."""
    return {
        **embedded_resources(settings, warehouse),
        "search": settings.stage(RetrievalConfig).search_resource(warehouse),
        "llm": settings.stage(GenerationConfig).llm_resource(),
        "content_safety": settings.stage(SafetyConfig).resource(),
    }


def sample_settings(folder: Path, **changes) -> PipelineSettings:
    """The shipped sample data and config (reports under `folder`); `changes` replace fields."""
    return PipelineSettings(
        **{
            "customers_path": str(PROJECT_ROOT / "data" / "customers.csv"),
            "content_path": str(PROJECT_ROOT / "data" / "content"),
            "config_dir": str(PROJECT_ROOT / "config"),
            "reports_dir": str(folder / "reports"),
            **changes,
        }
    )


# --- The good run, built once, copied per case --------------------------------------------------------------


@dataclass(frozen=True)
class PreparedRun:
    warehouse_path: Path
    partitions: tuple[str, ...]

    def copy_to(self, folder: Path) -> DuckDBWarehouse:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "warehouse.duckdb"
        shutil.copyfile(self.warehouse_path, target)
        wal = self.warehouse_path.with_name(self.warehouse_path.name + ".wal")
        if wal.exists():  # not checkpointed yet: the log belongs to the copy too
            shutil.copyfile(wal, target.with_name(target.name + ".wal"))
        return DuckDBWarehouse(path=str(target), lock_timeout_seconds=10)

    def instance(self) -> DagsterInstance:
        """A fresh ephemeral instance knowing the segment partitions (use as a context manager)."""
        instance = DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(SEGMENT_PARTITIONS_NAME, list(self.partitions))
        return instance


_prepared: PreparedRun | None = None


def prepared_run(tmp_path_factory) -> PreparedRun:
    """Segmentation, content index and the SEGMENT campaign (with its checks) on the sample data, once."""
    global _prepared
    if _prepared is None:
        folder = tmp_path_factory.mktemp("prepared_run")
        warehouse = DuckDBWarehouse(path=str(folder / "warehouse.duckdb"))
        resources = embedded_resources(sample_settings(folder), warehouse)
        with DagsterInstance.ephemeral() as instance:
            for job in (SEGMENTATION_JOB, CAMPAIGN_JOB):
                result = run_job(resources, instance, job)
                assert result.success, f"the good run failed in {job}: {failure_text(result)}"
            partitions = tuple(sorted(instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)))
        _prepared = PreparedRun(Path(warehouse.path), partitions)
    return _prepared


# --- What is stored -----------------------------------------------------------------------------------------


def snapshot(path: str | Path) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent MD5 of the rows of every table (every schema, so the full-text
    index tables count too)."""
    with duckdb.connect(str(path), read_only=True) as connection:
        tables = connection.execute("select schema_name, table_name from duckdb_tables() order by all").fetchall()
        return {
            f"{schema}.{table}": connection.execute(
                f"select count(*), coalesce(md5(string_agg(h, '' order by h)), '') from "
                f'(select md5(t::varchar) as h from "{schema}"."{table}" t)'
            ).fetchone()
            for schema, table in tables
        }


def changed_tables(before: Mapping[str, tuple], after: Mapping[str, tuple]) -> list[str]:
    return sorted(name for name in {*before, *after} if before.get(name) != after.get(name))


def table_text(path: str | Path) -> str:
    """Every value of every table as text (to search stored data for strings that must not be there)."""
    with duckdb.connect(str(path), read_only=True) as connection:
        tables = connection.execute("select schema_name, table_name from duckdb_tables()").fetchall()
        return "\n".join(
            str(connection.execute(f'select string_agg(t::varchar, chr(10)) from "{s}"."{t}" t').fetchone()[0])
            for s, t in tables
        )


def failure_text(result) -> str:
    """Every step failure of a run: each error's message and cause chain, with their stack traces."""
    parts = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error is not None:
                parts.append(error.message.strip() + "\n" + "".join(error.stack))
                error = error.cause
    return "\n".join(parts)


def failure_messages(result) -> str:
    """The messages (no stacks) of every step failure's error chain: what an operator reads."""
    messages = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error is not None:
                messages.append(error.message.strip())
                error = error.cause
    return "\n".join(messages)


def materialized(result) -> set[str]:
    return {event.asset_key.path[-1] for event in result.get_asset_materialization_events()}


# --- Configuration copies -----------------------------------------------------------------------------------


def _merge(base: dict, changes: Mapping) -> dict:
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = _merge(merged.get(key) or {}, value) if isinstance(value, Mapping) else value
    return merged


def config_copy(folder: Path, edits: Mapping[str, object] | None = None) -> Path:
    """config/ copied to `folder`; per file, a mapping is merged into the YAML, a string replaces the text."""
    target = folder / "config"
    shutil.copytree(PROJECT_ROOT / "config", target)
    for name, edit in (edits or {}).items():
        path = target / name
        if isinstance(edit, str):
            path.write_text(edit, encoding="utf-8")
        else:
            current = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
            path.write_text(yaml.safe_dump(_merge(current or {}, edit)), encoding="utf-8")
    return target


def emulator_config(search=None, openai=None, content_safety=None, timeout_seconds: float = 2.0) -> dict:
    """YAML edits selecting the Azure backend of each given emulator (API-key auth, fast retries)."""
    edits: dict[str, dict] = {}
    if search is not None:
        edits[RetrievalConfig.FILENAME] = {
            "backend": "azure",
            "azure": {
                "endpoint": search.endpoint,
                "auth": "api_key",
                "api_key_env": KEY_ENVS["search"],
                "admin_key_env": KEY_ENVS["search"],  # the emulator's key is an admin key
                "ca_bundle_path": search.ca_bundle_path,
                "timeout_seconds": timeout_seconds,
                **FAST_SEARCH,
            },
        }
    if openai is not None:
        edits[GenerationConfig.FILENAME] = {
            "backend": "azure",
            "azure": {
                "endpoint": openai.endpoint,
                "auth": "api_key",
                "api_key_env": KEY_ENVS["llm"],
                "ca_bundle_path": openai.ca_bundle_path,
                "timeout_seconds": timeout_seconds,
                "max_retries": FAST_LLM_RETRIES,
            },
        }
    if content_safety is not None:
        edits[SafetyConfig.FILENAME] = {
            "backend": "azure",
            "azure": {
                "endpoint": content_safety.endpoint,
                "auth": "api_key",
                "api_key_env": KEY_ENVS["content_safety"],
                "ca_bundle_path": content_safety.ca_bundle_path,
                "timeout_seconds": timeout_seconds,
                **FAST_SAFETY_RETRY,
            },
        }
    return edits
