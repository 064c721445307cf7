"""config/safety_thresholds.yaml: which screen scores the text, when a variant is blocked, rewrites, concurrency.

One configuration layer: the `azure:` section validates straight into `AzureContentSafetyResource` (the resource
the pipeline uses), so every Azure setting is declared once; `resource()` returns the configured backend.
`second_opinion` (off by default) asks the generation stage's LLM about variant texts approved close to a
threshold; enabling it while generation uses the embedded composer is a ConfigError naming both files.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from personalization_assets.config import ConfigError, StageConfig, StrictModel
from personalization_assets.lib.safety import DEFAULT_THRESHOLDS, validate_thresholds
from resources.content_safety import (
    BACKEND_AZURE,
    BACKEND_EMBEDDED,
    AzureContentSafetyResource,
    BlocklistSync,
    ContentSafetyConfigError,
    ContentSafetyResource,
    EmbeddedContentSafetyResource,
    LLMSecondOpinionResource,
)
from resources.llm import BACKEND_EMBEDDED as LLM_BACKEND_EMBEDDED
from resources.llm import LLMResource


class SecondOpinionConfig(StrictModel):
    """`second_opinion:` - an LLM's opinion on variant texts the screen approved close to a threshold."""

    enabled: bool = Field(
        default=False,
        description="ask the generation stage's LLM (generation.yaml backend azure or openai_compatible) about "
        "approved variant texts near a threshold; it can only block, never approve",
    )
    margin: int = Field(
        default=1,
        ge=1,
        le=7,
        description="a text is near a threshold when a concern's severity is at least threshold - margin "
        "(and below the threshold)",
    )
    model_margin: float = Field(
        default=0.2,
        ge=0.0,
        le=0.7,
        description="embedded backend: also a text its linear model found safe with an unsafe probability at most "
        "model_margin below the one that blocks it (0.7; 0.85 for a short text); 0 = severities only",
    )


class SafetyConfig(StageConfig):
    """config/safety_thresholds.yaml"""

    FILENAME: ClassVar[str] = "safety_thresholds.yaml"

    backend: Literal["embedded", "azure"] = BACKEND_EMBEDDED
    thresholds: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_THRESHOLDS),
        description="block when severity >= threshold, per category and phishing (0-8; 8 never blocks)",
    )
    blocklist: list[str] = Field(default_factory=list, description="terms that block a variant (every backend)")
    rewrite_attempts: int = Field(default=1, ge=0, le=5, description="rewrites of a variant blocked for content")
    max_concurrency: int = Field(default=6, ge=1, le=32, description="screening calls in flight per partition")
    cache: bool = Field(
        default=True,
        description="reuse a remote backend's complete outcome for a text screened before with the same "
        "settings (decisions still apply the current thresholds, and every one is audited)",
    )
    # Validated when the file loads (the endpoint falls back to AZURE_CONTENT_SAFETY_ENDPOINT), used only when
    # backend is azure or a blocklist is synced.
    azure: AzureContentSafetyResource = Field(default_factory=AzureContentSafetyResource)
    second_opinion: SecondOpinionConfig = Field(default_factory=SecondOpinionConfig)

    @field_validator("thresholds")
    @classmethod
    def _complete_thresholds(cls, thresholds: dict[str, int]) -> dict[str, int]:
        return validate_thresholds(thresholds)

    @field_validator("blocklist")
    @classmethod
    def _terms_not_blank(cls, terms: list[str]) -> list[str]:
        blank = [position for position, term in enumerate(terms) if not term.strip()]
        if blank:
            raise ValueError(f"blocklist terms must not be empty (positions {blank})")
        return terms

    @field_validator("azure", mode="before")
    @classmethod
    def _known_azure_keys(cls, value: Any) -> Any:
        """Dagster resources accept unknown keys; a typo in the YAML must not be ignored."""
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(AzureContentSafetyResource.model_fields) - {"blocklist_terms"})
            if unknown:
                raise ValueError(f"unknown key(s) {unknown}; known: {sorted(AzureContentSafetyResource.model_fields)}")
            if "blocklist_terms" in value:
                raise ValueError("blocklist_terms: list the terms under the top-level `blocklist` key")
        return value

    def resource(self, backend: str | None = None) -> ContentSafetyResource:
        """The configured backend with the blocklist terms (`backend` overrides the configured one)."""
        if (backend or self.backend) == BACKEND_EMBEDDED:
            return EmbeddedContentSafetyResource(blocklist_terms=list(self.blocklist))
        return self.azure.model_copy(update={"blocklist_terms": list(self.blocklist)})

    def validated_resource(self, llm: LLMResource | None = None) -> ContentSafetyResource:
        """`resource()`, its endpoint and credential settings checked now (at definitions load); with the `llm`
        resource, also that an enabled second opinion has an LLM to ask (`second_opinion_resource`)."""
        resource = self.resource()
        resource.validate_configuration()
        if llm is not None:
            self.second_opinion_resource(llm)
        return resource

    def second_opinion_resource(self, llm: LLMResource) -> LLMSecondOpinionResource | None:
        """The LLM second opinion on the generation stage's `llm`, or None when it is not enabled.

        Enabled with the embedded composer (which cannot judge text) is a ConfigError: a safety check the user
        switched on must not silently not run."""
        if not self.second_opinion.enabled:
            return None
        if llm.backend_name == LLM_BACKEND_EMBEDDED:
            raise ConfigError(
                f"{self.FILENAME}: second_opinion.enabled is true, but the generation stage uses the embedded "
                "composer (generation.yaml backend: embedded), which cannot judge text. Configure an LLM in "
                "generation.yaml (backend: azure or openai_compatible) or set second_opinion.enabled: false in "
                f"{self.FILENAME}"
            )
        return LLMSecondOpinionResource.for_llm(llm)


def sync_configured_blocklist(config: SafetyConfig) -> BlocklistSync:
    """Copy the configured `blocklist` terms into the Azure blocklist `azure.sync_blocklist_name`.

    Works whatever `backend` is selected (the terms are matched locally anyway); list the name in
    `azure.blocklist_names` for text:analyze to use it.
    """
    name = config.azure.sync_blocklist_name
    if not name:
        raise ContentSafetyConfigError(
            f"{SafetyConfig.FILENAME} azure.sync_blocklist_name is not set: nothing to sync into"
        )
    resource = config.resource(BACKEND_AZURE)
    assert isinstance(resource, AzureContentSafetyResource)
    return resource.sync_blocklist(name, config.blocklist, description=f"terms from {SafetyConfig.FILENAME}")
