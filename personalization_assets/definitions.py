"""The code location: every asset, check, job, schedule, sensor and resource of the pipeline, assembled once."""

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from personalization_assets import segmentation
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager

STAGE_MODULES = [segmentation]

warehouse = DuckDBWarehouse()

defs = Definitions(
    assets=load_assets_from_modules(STAGE_MODULES),
    asset_checks=load_asset_checks_from_modules(STAGE_MODULES),
    resources={
        "settings": PipelineSettings(),
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
    },
)
