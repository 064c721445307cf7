"""The code location: every asset, check, job, schedule, sensor and resource of the pipeline, assembled once."""

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from personalization_assets import segmentation
from personalization_assets.jobs import build_jobs
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager

STAGE_MODULES = [segmentation]

warehouse = DuckDBWarehouse()

assets = load_assets_from_modules(STAGE_MODULES)

defs = Definitions(
    assets=assets,
    jobs=build_jobs(assets),
    asset_checks=load_asset_checks_from_modules(STAGE_MODULES),
    resources={
        "settings": PipelineSettings(),
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
    },
)
