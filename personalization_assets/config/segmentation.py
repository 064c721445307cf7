"""config/pipeline.yaml and config/segmentation.yaml: the input files (customers, content library), customer
validation and the segmentation rules."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from personalization_assets.config import StageConfig, StrictModel
from personalization_assets.lib.customers import DELIMITERS, NUMERIC_FEATURES
from personalization_assets.lib.segmentation import INTENTS, OPERATORS, slugify


class CustomersConfig(StrictModel):
    delimiter: Literal[tuple(DELIMITERS)] = Field(  # type: ignore[valid-type]
        default=",", description="Field delimiter of a customer CSV: ',', ';', tab (\"\\t\") or '|'"
    )


class ValidationConfig(StrictModel):
    on_invalid_rows: Literal["fail", "quarantine"] = "fail"
    extra_columns: Literal["error", "drop"] = "drop"
    duplicate_ids: Literal["keep_first", "reject_all"] = "keep_first"


class ContentConfig(StrictModel):
    min_documents: int = Field(
        default=1, ge=1, description="Fewest approved documents the library may have after quarantine"
    )


class PipelineConfig(StageConfig):
    """config/pipeline.yaml: the input files and how they are validated."""

    FILENAME: ClassVar[str] = "pipeline.yaml"

    customers: CustomersConfig = CustomersConfig()
    validation: ValidationConfig = ValidationConfig()
    content: ContentConfig = ContentConfig()


class ConditionConfig(StrictModel):
    feature: Literal[NUMERIC_FEATURES]  # type: ignore[valid-type]
    op: Literal[tuple(OPERATORS)]  # type: ignore[valid-type]
    value: float


class RuleConfig(StrictModel):
    name: str = Field(min_length=1)
    key: str = Field(default="", description="partition key; empty = the slug of the name")
    intent: Literal[INTENTS]  # type: ignore[valid-type]
    when: list[ConditionConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _key_is_slug(self) -> RuleConfig:
        key = self.key or slugify(self.name)
        if key != slugify(key):
            raise ValueError(f"key {key!r} must be a slug like {slugify(key)!r} (letters, digits, underscores)")
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


class SegmentationConfig(StageConfig):
    """config/segmentation.yaml"""

    FILENAME: ClassVar[str] = "segmentation.yaml"

    method: Literal["rules", "kmeans"] = "rules"
    rules: list[RuleConfig] = Field(default_factory=lambda: list(DEFAULT_RULES))
    default_segment: RuleConfig = RuleConfig(name="Standard", intent="nurture")
    kmeans: KMeansConfig = KMeansConfig()

    @model_validator(mode="after")
    def _unique_keys(self) -> SegmentationConfig:
        keys = [rule.key or slugify(rule.name) for rule in [*self.rules, self.default_segment]]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"segment keys must be unique, repeated: {', '.join(duplicates)}")
        if self.method == "rules" and not self.rules:
            raise ValueError("method 'rules' needs at least one rule")
        return self
