"""Where the pipeline's inputs and configuration live (paths are settings, overridable in the Dagster UI)."""

from pathlib import Path
from typing import Any, TypeVar

from dagster import ConfigurableResource
from pydantic import BaseModel, Field, PrivateAttr

from personalization_assets.config import (
    ENV_CONFIG,
    ENV_CONTENT,
    ENV_CUSTOMERS,
    ENV_REPORTS,
    StageConfig,
    default_path,
    load_yaml_model,
    parse_model,
    read_yaml_mapping,
    stage_config_models,
)

ModelT = TypeVar("ModelT", bound=BaseModel)
StageT = TypeVar("StageT", bound=StageConfig)


class PipelineSettings(ConfigurableResource):
    """Input paths. Defaults come from PERSONALIZATION_* environment variables, read when the code loads."""

    customers_path: str = Field(
        default_factory=lambda: default_path(ENV_CUSTOMERS, "data/customers.csv"),
        description="Customer file (.csv or .parquet). Env: PERSONALIZATION_CUSTOMERS.",
    )
    content_path: str = Field(
        default_factory=lambda: default_path(ENV_CONTENT, "data/content"),
        description="Folder of approved content documents (*.json). Env: PERSONALIZATION_CONTENT.",
    )
    config_dir: str = Field(
        default_factory=lambda: default_path(ENV_CONFIG, "config"),
        description="Folder of YAML configuration and prompt templates. Env: PERSONALIZATION_CONFIG.",
    )
    reports_dir: str = Field(
        default_factory=lambda: default_path(ENV_REPORTS, "reports"),
        description="Where campaign reports are written, one folder per run. Env: PERSONALIZATION_REPORTS.",
    )
    stage_settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Each stage's settings by file name (pipeline.yaml, retrieval.yaml, ...), as the code location "
        "read them from config_dir: what a run uses. Edit a value here to change it for one run; a file not "
        "listed is read from config_dir.",
    )

    # Stage settings already validated by this resource instance: Dagster builds resources once per run, so
    # each stage's YAML is read once per run however many assets and checks ask for it.
    _stages: dict[type, StageConfig] = PrivateAttr(default_factory=dict)

    @classmethod
    def from_config_dir(cls, **fields: Any) -> "PipelineSettings":
        """Settings with every stage file of the config folder read into `stage_settings` (not yet validated;
        `stage()` validates, once per run), so the launchpad and the resource's page show each stage's values."""
        settings = cls(**fields)
        files = {
            model.FILENAME: read_yaml_mapping(settings.config_path(model.FILENAME))
            for model in stage_config_models()
            if settings.config_path(model.FILENAME).exists()
        }
        return cls(**{**fields, "stage_settings": files})

    def stage(self, model: type[StageT]) -> StageT:
        """The validated settings of one stage: `stage_settings[<model.FILENAME>]` when given (the launchpad),
        else the file `config_dir/<model.FILENAME>`; validated once per resource instance, i.e. once per run."""
        if model not in self._stages:
            if model.FILENAME in self.stage_settings:
                source = str(self.config_path(model.FILENAME))
                self._stages[model] = parse_model(model, self.stage_settings[model.FILENAME], source)
            else:
                self._stages[model] = self.load(model.FILENAME, model)
        return self._stages[model]  # type: ignore[return-value]

    def load(self, filename: str, model: type[ModelT]) -> ModelT:
        """Load and validate `config_dir/filename` (defaults when the file is absent)."""
        return load_yaml_model(Path(self.config_dir) / filename, model)

    def config_path(self, *parts: str) -> Path:
        return Path(self.config_dir, *parts)
