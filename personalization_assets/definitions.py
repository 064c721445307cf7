"""The code location: every asset, check, job, schedule, sensor and resource of the pipeline, assembled once."""

from dagster import Definitions, colored_console_logger, load_asset_checks_from_modules, load_assets_from_modules

from personalization_assets import experimentation, generation, reporting, retrieval, safety, segmentation
from personalization_assets.automation import build_automation
from personalization_assets.jobs import build_jobs
from personalization_assets.lib.retrieval import RetrievalConfig
from personalization_assets.observability import install_log_redaction, json_logger
from resources.content_safety import content_safety_resource_from_config
from resources.llm import llm_resource_from_config
from resources.search import search_resource_from_config
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager

STAGE_MODULES = [segmentation, retrieval, generation, safety, experimentation, reporting]

warehouse = DuckDBWarehouse()

# Secrets and raw customer ids are redacted from every log record before Dagster stores it (docs/operating.md).
install_log_redaction()

assets = load_assets_from_modules(STAGE_MODULES)
jobs = build_jobs(assets)
sensors, schedules = build_automation(assets, jobs)

defs = Definitions(
    assets=assets,
    jobs=jobs,
    sensors=sensors,
    schedules=schedules,
    # `console` stays the default; run config `loggers: {json: {}}` adds JSON lines (dagster.yaml adds a file).
    loggers={"console": colored_console_logger, "json": json_logger},
    asset_checks=load_asset_checks_from_modules(STAGE_MODULES),
    resources={
        "settings": PipelineSettings(),
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
        # Backend chosen by config/retrieval.yaml (`backend: embedded | azure`) when the code location loads.
        "search": search_resource_from_config(
            PipelineSettings().load(retrieval.RETRIEVAL_CONFIG_FILE, RetrievalConfig), warehouse
        ),
        # Backend chosen by config/generation.yaml (`backend: embedded | azure | openai_compatible`).
        "llm": llm_resource_from_config(
            PipelineSettings().load(generation.GENERATION_CONFIG_FILE, generation.GenerationConfig)
        ),
        # Backend chosen by config/safety_thresholds.yaml (`backend: embedded | azure`).
        "content_safety": content_safety_resource_from_config(
            PipelineSettings().load(safety.SAFETY_CONFIG_FILE, safety.SafetyConfig)
        ),
    },
)
