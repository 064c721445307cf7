"""The code location: every asset, check, job, schedule, sensor and resource of the pipeline, assembled once."""

from dagster import (
    AssetsDefinition,
    Definitions,
    colored_console_logger,
    load_asset_checks_from_modules,
    load_assets_from_modules,
)

from personalization_assets import content, experimentation, generation, reporting, retrieval, safety, segmentation
from personalization_assets.automation import build_automation
from personalization_assets.config.generation import GenerationConfig
from personalization_assets.config.retrieval import RetrievalConfig
from personalization_assets.config.safety import SafetyConfig
from personalization_assets.deployment import executor_from_environment
from personalization_assets.jobs import CAMPAIGN_JOB, build_jobs
from personalization_assets.observability import install_log_redaction, json_logger
from personalization_assets.report_currency import build_lost_run_sensor, flag_report_behind
from resources.io_managers import io_manager_from_environment
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse

STAGE_MODULES = [segmentation, content, retrieval, generation, safety, experimentation, reporting]

warehouse = DuckDBWarehouse()
# Every stage's settings, read once here: the launchpad shows them, and the backends below are chosen from them.
settings = PipelineSettings.from_config_dir()
# Backend chosen by config/generation.yaml (`backend: embedded | azure | openai_compatible`).
llm = settings.stage(GenerationConfig).llm_resource()

# Redact secrets and raw customer ids in log records before Dagster stores them (docs/operating.md).
install_log_redaction()

assets = load_assets_from_modules(STAGE_MODULES)
# The stage modules define assets with @asset / @multi_asset only; jobs and automation select by their keys.
asset_definitions = [asset for asset in assets if isinstance(asset, AssetsDefinition)]
# A campaign run that fails after the report was built fails the report's `shows_latest_segment_runs` check.
jobs = build_jobs(asset_definitions, campaign_hooks=[flag_report_behind])
sensors, schedules = build_automation(asset_definitions, jobs)
# ... and so does one whose process died before its hook ran (the sensor is on by default; it launches nothing).
sensors.append(build_lost_run_sensor(next(job for job in jobs if job.name == CAMPAIGN_JOB)))

defs = Definitions(
    assets=assets,
    jobs=jobs,
    sensors=sensors,
    schedules=schedules,
    # `console` stays the default; run config `loggers: {json: {}}` adds JSON lines (dagster.yaml: a file).
    loggers={"console": colored_console_logger, "json": json_logger},
    # Steps of a run execute in the run's process: a process per step would re-import the code location for
    # every asset and check (seconds each) and contend for DuckDB's single writer. Segments run in parallel
    # as separate runs (backfills, sensors), bounded by dagster.yaml's max_concurrent_runs. On a cluster,
    # PERSONALIZATION_EXECUTOR = multiprocess | k8s | celery (personalization_assets/deployment.py).
    executor=executor_from_environment(),
    asset_checks=load_asset_checks_from_modules(STAGE_MODULES),
    resources={
        "settings": settings,
        "warehouse": warehouse,
        # Where asset tables are stored: PERSONALIZATION_IO_MANAGER = duckdb (default) | snowflake.
        "io_manager": io_manager_from_environment(warehouse),
        # Backend chosen by config/retrieval.yaml (`backend: embedded | azure`) when the code location loads.
        "search": settings.stage(RetrievalConfig).search_resource(warehouse),
        "llm": llm,
        # Backend chosen by config/safety_thresholds.yaml (`backend: embedded | azure`); its optional LLM second
        # opinion asks `llm` (refused here, at load, when that is the embedded composer).
        "content_safety": settings.stage(SafetyConfig).validated_resource(llm=llm),
    },
)
