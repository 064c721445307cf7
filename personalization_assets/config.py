"""Loading and validating the YAML configuration in `config/`.

Every file is parsed into a pydantic model with `extra="forbid"`, so a typo in a key fails at load time with the
file and the dotted key path in the message, instead of silently falling back to a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

PROJECT_ROOT = Path(__file__).resolve().parents[1]

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
    path = Path(path)
    if not path.exists():
        return parse_model(model, {}, str(path))
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
    return parse_model(model, data, str(path))


# --- Foundation configuration models (later stages define theirs beside their own code) ---------------------

from typing import Literal  # noqa: E402

from pydantic import Field, field_validator, model_validator  # noqa: E402

from personalization_assets.lib.customers import NUMERIC_FEATURES  # noqa: E402
from personalization_assets.lib.segmentation import INTENTS, OPERATORS, slugify  # noqa: E402


class ValidationConfig(StrictModel):
    on_invalid_rows: Literal["fail", "quarantine"] = "fail"
    extra_columns: Literal["error", "drop"] = "error"


class PipelineConfig(StrictModel):
    """config/pipeline.yaml"""

    validation: ValidationConfig = ValidationConfig()


class ConditionConfig(StrictModel):
    feature: Literal[NUMERIC_FEATURES]  # type: ignore[valid-type]
    op: Literal[tuple(OPERATORS)]  # type: ignore[valid-type]
    value: float


class RuleConfig(StrictModel):
    name: str = Field(min_length=1)
    key: str | None = None
    intent: Literal[INTENTS]  # type: ignore[valid-type]
    when: list[ConditionConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _key_is_slug(self) -> RuleConfig:
        key = self.key or slugify(self.name)
        if key != slugify(key):
            raise ValueError(
                f"key {key!r} must be a slug like {slugify(key)!r} (letters, digits, underscores)"
            )
        object.__setattr__(self, "key", key)
        return self


class KMeansConfig(StrictModel):
    k: int | None = Field(default=None, ge=3, le=5, description="fixed k; null = choose by silhouette")
    k_range: tuple[int, int] = (3, 5)
    seed: int = 42
    features: list[Literal[NUMERIC_FEATURES]] = Field(default_factory=lambda: list(NUMERIC_FEATURES))  # type: ignore[valid-type]

    @field_validator("k_range")
    @classmethod
    def _range_within_3_to_5(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 3 <= low <= high <= 5:
            raise ValueError("k_range must be within 3..5 with low <= high")
        return value


def _rule(name: str, intent: str, *conditions: tuple[str, str, float]) -> RuleConfig:
    return RuleConfig(
        name=name, intent=intent, when=[ConditionConfig(feature=f, op=o, value=v) for f, o, v in conditions]
    )


# The documented default RFM rules (used when segmentation.yaml does not list its own).
DEFAULT_RULES = (
    _rule("High-Value Recent", "vip", ("avg_order_value", ">", 200), ("last_engagement_days", "<", 30)),
    _rule("At-Risk", "win_back", ("purchase_frequency", ">", 6), ("last_engagement_days", ">", 30)),
    _rule("New Customer", "onboarding", ("purchase_frequency", "<", 3)),
    _rule("Loyal Frequent", "loyalty", ("purchase_frequency", ">", 12), ("historical_open_rate", ">", 0.4)),
)


class SegmentationConfig(StrictModel):
    """config/segmentation.yaml"""

    method: Literal["rules", "kmeans"] = "rules"
    rules: list[RuleConfig] = Field(default_factory=lambda: list(DEFAULT_RULES))
    default_segment: RuleConfig = RuleConfig(name="Standard", intent="nurture")
    kmeans: KMeansConfig = KMeansConfig()

    @model_validator(mode="after")
    def _unique_keys(self) -> SegmentationConfig:
        keys = [rule.key for rule in [*self.rules, self.default_segment]]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"segment keys must be unique, repeated: {', '.join(duplicates)}")
        if self.method == "rules" and not self.rules:
            raise ValueError("method 'rules' needs at least one rule")
        return self
