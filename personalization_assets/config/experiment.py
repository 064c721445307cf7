"""config/experiment_config.yaml: assignment weights, the engagement source, the simulation and the
statistics of the experimentation stage."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from personalization_assets.config import StageConfig, StrictModel
from personalization_assets.lib.assignment import ARM_ORDER, hash_key
from personalization_assets.lib.segmentation import slugify
from personalization_assets.lib.simulation import Baselines, SimulatedEngagement, draw_arm_uplifts
from personalization_assets.lib.statistics import BINARY_METRICS, CONTROL, DEFAULT_MIXTURE_RELATIVE_SD

Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class AssignmentConfig(StrictModel):
    weights: dict[str, Weight] = Field(
        default_factory=lambda: dict.fromkeys(ARM_ORDER, 1 / len(ARM_ORDER)),
        description="arm -> weight: control plus one arm per tone; non-negative, summing to 1",
    )
    balance_tolerance: float = Field(default=0.05, gt=0, lt=0.5, description="allowed |share - weight|")
    min_customers_per_arm: int = Field(default=5, ge=1, description="fewer in an arm is a warning")

    @field_validator("weights")
    @classmethod
    def _weights_sum_to_one(cls, weights: dict[str, float]) -> dict[str, float]:
        if CONTROL not in weights:
            raise ValueError(f"must include the '{CONTROL}' arm (every comparison is against it)")
        if weights[CONTROL] <= 0:
            raise ValueError(f"the '{CONTROL}' weight must be positive (every comparison is against it)")
        bad = [arm for arm in weights if arm != slugify(arm)]
        if bad:
            raise ValueError(f"arm names must be lowercase slugs (the tones), got {bad}")
        total = sum(weights.values())
        if abs(total - 1) > 1e-9:
            raise ValueError(f"weights must sum to 1 (within 1e-9), they sum to {total!r}")
        return weights


class EngagementConfig(StrictModel):
    source: Literal["simulate", "file"] = "simulate"
    engagement_events_path: str | None = Field(
        default=None,
        validate_default=True,
        description="recorded events (CSV/Parquet) when source is 'file'; relative to the config folder",
    )
    missing: Literal["error", "drop", "no_engagement"] = "error"
    funnel: Literal["error", "infer"] = "error"

    @field_validator("engagement_events_path")
    @classmethod
    def _path_when_file(cls, path: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("source") == "file" and not path:
            raise ValueError("required when source is 'file' (the recorded engagement events)")
        return path


class BaselinesConfig(StrictModel):
    open: float = Field(default=0.30, gt=0, lt=1)
    click: float = Field(default=0.08, gt=0, lt=1)
    conversion: float = Field(default=0.02, gt=0, lt=1)

    @model_validator(mode="after")
    def _funnel_ordered(self) -> BaselinesConfig:
        if not self.conversion <= self.click <= self.open:
            raise ValueError("baselines must satisfy conversion <= click <= open (rates per customer sent to)")
        return self

    def to_baselines(self) -> Baselines:
        return Baselines(open=self.open, click=self.click, conversion=self.conversion)


class UpliftConfig(StrictModel):
    mean: float = Field(default=0.15, gt=-1, allow_inf_nan=False)
    sd: float = Field(default=0.05, ge=0, allow_inf_nan=False)
    clip: tuple[float, float] = (0.05, 0.30)

    @field_validator("clip")
    @classmethod
    def _clip_ordered(cls, clip: tuple[float, float]) -> tuple[float, float]:
        low, high = clip
        if not -1 < low <= high:
            raise ValueError(f"must be [low, high] with -1 < low <= high, got [{low}, {high}]")
        return clip


class SimulationConfig(StrictModel):
    aa_mode: bool = Field(default=False, description="A/A test: every arm's true uplift is 0")
    baselines: BaselinesConfig = BaselinesConfig()
    uplift: UpliftConfig = UpliftConfig()
    noise_sd: float = Field(default=0.2, ge=0, allow_inf_nan=False)
    history_weight: float = Field(default=0.5, ge=0, le=1)


class StatisticsConfig(StrictModel):
    alpha: float = Field(default=0.05, gt=0, lt=1, description="campaign-wide chance of any false winner")
    power: float = Field(default=0.8, gt=0, lt=1)
    correction: Literal["holm", "fdr_bh"] = "holm"
    primary_metric: Literal[tuple(BINARY_METRICS)] = Field(  # type: ignore[valid-type]
        default="conversion", description="the metric decisions rest on; the others are gated behind it"
    )
    sequential: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="always-valid mSPRT p-values: auto = when engagement is recorded (refreshed over time)",
    )
    mixture_relative_sd: float = Field(
        default=DEFAULT_MIXTURE_RELATIVE_SD, gt=0, le=10, description="mSPRT mixing sd, share of the base rate"
    )


class ExperimentConfig(StageConfig):
    """config/experiment_config.yaml"""

    FILENAME: ClassVar[str] = "experiment_config.yaml"

    experiment_id: str = Field(default="northwind-personalization", min_length=1)
    salt: str = ""
    seed: int = Field(default=42, ge=0)
    assignment: AssignmentConfig = AssignmentConfig()
    engagement: EngagementConfig = EngagementConfig()
    simulation: SimulationConfig = SimulationConfig()
    statistics: StatisticsConfig = StatisticsConfig()

    @property
    def sequential(self) -> bool:
        """Whether the metrics use always-valid (sequential) tests."""
        mode = self.statistics.sequential
        return mode == "always" or (mode == "auto" and self.engagement.source == "file")

    def simulated_engagement(self, segment: str, arms: list[str]) -> SimulatedEngagement:
        """The seeded simulation of this segment: each tone's true uplift drawn from a per-segment seed."""
        simulation = self.simulation
        uplifts = draw_arm_uplifts(
            arms,
            mean=simulation.uplift.mean,
            sd=simulation.uplift.sd,
            clip=simulation.uplift.clip,
            seed=int(hash_key(self.seed, "uplift", segment), 16),
            aa_mode=simulation.aa_mode,
        )
        return SimulatedEngagement(
            uplifts,
            baselines=simulation.baselines.to_baselines(),
            noise_sd=simulation.noise_sd,
            seed=self.seed,
            history_weight=simulation.history_weight,
        )
