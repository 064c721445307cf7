"""config/generation.yaml: tones, format rules, prices and the `llm` backend.

The `azure:` and `openai_compatible:` sections validate straight into the resource classes of resources/llm.py
(one configuration layer); `backend:` picks the one the code location uses (`GenerationConfig.llm_resource()`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from personalization_assets.config import StageConfig, StrictModel
from personalization_assets.lib.generation import DEFAULT_TONES, FormatRules, Price
from personalization_assets.lib.segmentation import slugify
from resources.azure_auth import InsecureEndpointError, MissingCredentialError
from resources.llm import (
    BACKEND_AZURE,
    BACKEND_EMBEDDED,
    AzureOpenAIResource,
    EmbeddedComposerResource,
    LLMResource,
    OpenAICompatibleResource,
)


class PriceConfig(StrictModel):
    input_per_million: float = Field(ge=0, description="USD per 1M input tokens")
    output_per_million: float = Field(ge=0, description="USD per 1M output tokens")


class RulesConfig(StrictModel):
    subject_max_chars: int = Field(default=60, ge=10)
    body_min_words: int = Field(default=150, ge=1)
    body_max_words: int = Field(default=250, ge=1)
    min_citations: int = Field(default=1, ge=1)

    @field_validator("body_max_words")
    @classmethod
    def _range_ordered(cls, value: int, info) -> int:
        if value < info.data.get("body_min_words", 0):
            raise ValueError("body_max_words must be at least body_min_words")
        return value

    def to_rules(self) -> FormatRules:
        return FormatRules(**self.model_dump())


class GenerationConfig(StageConfig):
    """config/generation.yaml"""

    FILENAME: ClassVar[str] = "generation.yaml"

    backend: Literal["embedded", "azure", "openai_compatible"] = "embedded"
    tones: list[str] = Field(default_factory=lambda: list(DEFAULT_TONES), min_length=1)
    sender: str = Field(default="The Northwind Outfitters team", min_length=1, description="message sign-off")
    attempts_per_variant: int = Field(default=3, ge=1, le=10, description="generations per variant, incl. rewrites")
    max_concurrency: int = Field(default=3, ge=1, le=32, description="model calls in flight per partition")
    max_documents: int = Field(default=5, ge=1, le=20, description="retrieved documents put in a prompt")
    temperature: float | None = Field(default=0.7, ge=0, le=2, description="null: the model's default")
    max_output_tokens: int = Field(default=1000, ge=100)
    cache: bool = Field(default=True, description="reuse stored answers for identical requests")
    prompts_dir: str = Field(default="prompts", description="folder of prompt templates, relative to config/")
    rules: RulesConfig = RulesConfig()
    prices: dict[str, PriceConfig] = Field(
        default_factory=lambda: {"gpt-4o-mini": PriceConfig(input_per_million=0.15, output_per_million=0.60)}
    )
    # default_factory: the endpoint falls back to env AZURE_OPENAI_ENDPOINT when the file is read.
    azure: AzureOpenAIResource = Field(default_factory=AzureOpenAIResource)
    openai_compatible: OpenAICompatibleResource = Field(default_factory=OpenAICompatibleResource)

    @field_validator("tones")
    @classmethod
    def _tones_are_unique_slugs(cls, tones: list[str]) -> list[str]:
        bad = [tone for tone in tones if tone != slugify(tone)]
        if bad:
            raise ValueError(f"tones must be lowercase slugs (file names in prompts/tones/), got {bad}")
        if len(set(tones)) != len(tones):
            raise ValueError(f"tones must be unique, got {tones}")
        return tones

    @model_validator(mode="after")
    def _selected_endpoint_is_usable(self) -> GenerationConfig:
        # At load (definitions import), not at the first model call: a missing or plain-http endpoint of the
        # selected backend is a configuration error. Keys are read when the client is built.
        if self.backend != BACKEND_EMBEDDED:
            try:
                self.llm_resource().validate_endpoint()  # type: ignore[attr-defined]
            except (MissingCredentialError, InsecureEndpointError) as error:
                raise ValueError(str(error)) from None
        return self

    def llm_resource(self) -> LLMResource:
        """The resource of the selected backend."""
        if self.backend == BACKEND_EMBEDDED:
            return EmbeddedComposerResource()
        return self.azure if self.backend == BACKEND_AZURE else self.openai_compatible

    def price_for(self, model: str) -> Price | None:
        price = self.prices.get(model)
        return Price(price.input_per_million, price.output_per_million) if price else None
