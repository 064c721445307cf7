"""Loading and validating the YAML configuration in `config/`.

Every file is parsed into a pydantic model with `extra="forbid"`, so a typo in a key fails at load time with the
file and the dotted key path in the message, instead of silently falling back to a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Settings read from the environment at load time (each is also resource config in the Dagster UI).
ENV_CUSTOMERS = "PERSONALIZATION_CUSTOMERS"
ENV_CONTENT = "PERSONALIZATION_CONTENT"
ENV_CONFIG = "PERSONALIZATION_CONFIG"
ENV_WAREHOUSE = "PERSONALIZATION_WAREHOUSE"
ENV_REPORTS = "PERSONALIZATION_REPORTS"


def default_path(env_var: str, relative_default: str) -> str:
    """The path from `env_var` if set, else `relative_default` under the project root."""
    return os.environ.get(env_var) or str(PROJECT_ROOT / relative_default)


class ConfigError(ValueError):
    """A configuration file is missing, malformed or has invalid values; the message names file and key."""


class StrictModel(BaseModel):
    """Base for config models: unknown keys are errors, values are validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=True)


ModelT = TypeVar("ModelT", bound=BaseModel)


def format_validation_error(source: str, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            problem = "unknown key"
        elif item["type"] == "missing":
            problem = "required key is missing"
        else:
            problem = item["msg"]
            if "input" in item and not isinstance(item["input"], dict | list):
                problem += f" (got {item['input']!r})"
        lines.append(f"  - {key}: {problem}")
    return f"{source}: invalid configuration\n" + "\n".join(lines)


def parse_model(model: type[ModelT], data: object, source: str) -> ModelT:
    """Validate already-parsed data; errors name `source` and each offending key."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as error:
        raise ConfigError(format_validation_error(source, error)) from None


def load_yaml_model(path: str | os.PathLike[str], model: type[ModelT]) -> ModelT:
    """Read a YAML file into `model`. A missing file yields the model's defaults."""
    return parse_model(model, read_yaml_mapping(path), str(path))


def read_yaml_mapping(path: str | os.PathLike[str]) -> dict:
    """The top-level mapping of a YAML file, not yet validated ({} for a missing or empty file); a file that is
    not UTF-8, not YAML or not a mapping is a ConfigError naming the file (and line and column)."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not valid UTF-8 text ({error.reason} at byte {error.start})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    return data or {}


class StageConfig(StrictModel):
    """A stage's YAML file in the config folder, validated into this model once per run by the `settings`
    resource (`settings.stage(Model)`); subclasses name their file in `FILENAME`."""

    FILENAME: ClassVar[str]


def stage_config_models() -> list[type[StageConfig]]:
    """Every StageConfig model of this package (one per stage's YAML file), in file-name order."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    models: list[type[StageConfig]] = []
    pending = list(StageConfig.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if "FILENAME" in vars(model) and model not in models:
            models.append(model)
    return sorted(models, key=lambda model: model.FILENAME)
