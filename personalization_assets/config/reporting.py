"""config/reporting.yaml (optional: every key has a default): what the campaign report shows and how it is
built. The significance level, power and arm weights it states are the experiment's."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from personalization_assets.config import StageConfig

Metric = Literal["open", "click", "conversion"]


class ReportingConfig(StageConfig):
    """config/reporting.yaml"""

    FILENAME: ClassVar[str] = "reporting.yaml"

    title: str = "Campaign report"
    primary_metric: Metric = Field(
        default="conversion", description="the metric a recommendation must win on (significantly) to be firm"
    )
    attribution_metric: Metric = Field(
        default="conversion",
        description="outcome of the attribution model (an earlier stage is used if too rare)",
    )
    attribution_sample_rows: int = Field(default=200_000, ge=1_000, description="customers sampled for attribution")
    sample_seed: int = 0
    personalized_sample_per_tone: int = Field(
        default=2, ge=0, le=20, description="customers shown per segment and tone in 'What each customer receives'"
    )
    pdf: bool = True
    notebook: bool = True
    notebook_timeout_seconds: int = Field(default=600, ge=10)
    serve_port: int = Field(
        default=8765, ge=1024, le=65535, description="port of `personalize report --serve` (the report's URL)"
    )
