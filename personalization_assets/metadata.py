"""Materialization metadata shared by every stage: Markdown previews of frames."""

import pandas as pd
from dagster import MetadataValue


def markdown_preview(frame: pd.DataFrame, rows: int = 10, floatfmt: str = ".3g") -> MetadataValue:
    """The first `rows` rows of `frame` as a Markdown table (the UI renders it on the materialization)."""
    return MetadataValue.md(frame.head(rows).to_markdown(index=False, floatfmt=floatfmt))
