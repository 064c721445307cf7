"""config/retrieval.yaml: the search backend and its settings, the threshold, and how segments become queries.

The `embedded:` and `azure:` sections validate straight into the search resources (`resources/search.py`):
the YAML keys are the resources' own fields, so there is one definition of each setting. Unknown keys are
errors naming the key.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator

from personalization_assets.config import StageConfig, StrictModel
from personalization_assets.lib.content import CATEGORIES
from personalization_assets.lib.customers import NUMERIC_FEATURES
from personalization_assets.lib.retrieval import Calibration
from personalization_assets.lib.segmentation import INTENTS
from resources.search import AzureAISearchResource, EmbeddedSearchResource, SearchResource
from resources.warehouse import DuckDBWarehouse


class QueryConfig(StrictModel):
    """What a segment is looking for comes from the segment itself (lib/retrieval.py `describe_segment`);
    `intents` may add phrases per campaign intent (matched against audiences and added to the query)."""

    intents: dict[str, list[str]] = Field(default_factory=dict)
    defining_features: int = Field(default=2, ge=0, le=len(NUMERIC_FEATURES))
    min_relative_difference: float = Field(default=0.25, ge=0)

    @field_validator("intents")
    @classmethod
    def _known_intents(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(INTENTS))
        if unknown:
            raise ValueError(f"unknown intent(s) {', '.join(unknown)}; expected some of {', '.join(INTENTS)}")
        return value


def _resource(model: type[SearchResource], section: str, value: Any) -> Any:
    """Validate a YAML section into the resource class, refusing keys the resource does not have."""
    if not isinstance(value, dict):
        return value
    fields = set(model.model_fields) - {"warehouse"}
    unknown = sorted(set(value) - fields)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(unknown)} in {section}; expected some of {', '.join(sorted(fields))}"
        )
    return model(**value)


class RetrievalConfig(StageConfig):
    """config/retrieval.yaml"""

    FILENAME: ClassVar[str] = "retrieval.yaml"
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    backend: Literal["embedded", "azure"] = "embedded"
    threshold: float = Field(default=0.5, ge=0, le=1, description="minimum score a document needs (0-1)")
    top_k: int = Field(default=4, ge=3, le=5, description="documents kept per segment (3-5)")
    candidates: int = Field(default=50, ge=5, le=1000, description="documents the backend ranks per query")
    category: str | None = Field(default=None, description="only retrieve this category (null = all)")
    query: QueryConfig = QueryConfig()
    calibration: Calibration = Calibration()  # lib/retrieval.py `suitability`; validated field by field
    embedded: EmbeddedSearchResource = Field(default_factory=EmbeddedSearchResource)
    azure: AzureAISearchResource = Field(default_factory=AzureAISearchResource)

    @field_validator("embedded", mode="before")
    @classmethod
    def _embedded(cls, value: Any) -> Any:
        return _resource(EmbeddedSearchResource, "embedded", value)

    @field_validator("azure", mode="before")
    @classmethod
    def _azure(cls, value: Any) -> Any:
        return _resource(AzureAISearchResource, "azure", value)

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str | None) -> str | None:
        if value is not None and value not in CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(CATEGORIES)} or null, got {value!r}")
        return value

    def search_resource(self, warehouse: DuckDBWarehouse) -> SearchResource:
        """The backend selected by `backend:`; the embedded one searches `warehouse`."""
        if self.backend == "azure":
            # Endpoint (setting or environment variable) and key variables are checked now, when the code
            # location loads, not at the first query.
            self.azure.check_configuration()
            return self.azure
        return self.embedded.model_copy(update={"warehouse": warehouse})
