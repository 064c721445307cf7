"""Charts: matplotlib figures (the report embeds them as base64 PNG)."""

from __future__ import annotations

import base64
import functools
import io
import textwrap
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.typing import RcKeyType

from personalization_assets.lib.assignment import ordered_arms
from personalization_assets.lib.reporting.attribution import Attribution
from personalization_assets.lib.reporting.formatting import (
    METRIC_EVENTS,
    METRIC_LABELS,
    METRIC_VERBS,
    POOLED_LABEL,
    _bool,
)
from personalization_assets.lib.statistics import BINARY_METRICS, CONTROL

TONE_COLORS = {CONTROL: "#7f7f7f", "urgent": "#d1495b", "informational": "#00798c", "friendly": "#edae49"}
EXTRA_COLORS = ("#66a182", "#2e4057", "#8d96a3")


# The report's body font (report.css) when matplotlib can find it, else DejaVu Sans, which matplotlib ships. Only
# fonts that are present are named: a missing family in the list makes matplotlib log a "findfont" warning for
# every text it draws (thousands per report).
PREFERRED_FONTS = ("Liberation Sans", "Arial", "Helvetica", "DejaVu Sans")


def available_font(preferred: Sequence[str] = PREFERRED_FONTS) -> str:
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return next((name for name in preferred if name in installed), "DejaVu Sans")


# Charts are built on matplotlib's object API (Figure, not pyplot): no global backend or figure registry is
# touched, so rendering is headless (Agg) in Dagster and leaves a notebook's own matplotlib set-up alone.
CHART_STYLE: dict[RcKeyType, Any] = {
    "font.family": [available_font()],
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
}


def _styled(chart):
    """Build the chart under the report's rc style without changing the caller's global rcParams."""

    @functools.wraps(chart)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(CHART_STYLE):
            return chart(*args, **kwargs)

    return wrapper


def tone_color(arm: str, arms: Sequence[str] = ()) -> str:
    if arm in TONE_COLORS:
        return TONE_COLORS[arm]
    extras = [a for a in arms if a not in TONE_COLORS]
    return EXTRA_COLORS[extras.index(arm) % len(EXTRA_COLORS)] if arm in extras else EXTRA_COLORS[0]


CHART_DPI = 120


def figure_png(figure: Figure, dpi: int = CHART_DPI) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.04)
    return buffer.getvalue()


def png_data_uri(png: bytes) -> str:
    """A PNG as a data URI, for a self-contained HTML page."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _plain(text: object) -> str:
    """Text for a matplotlib label: escape "$" so prices in titles are not read as mathtext."""
    return str(text).replace("$", r"\$")


@_styled
def _message_figure(text: str, size: tuple[float, float] = (7.0, 1.2)) -> Figure:
    figure = Figure(figsize=size)
    axis = figure.subplots()
    axis.axis("off")
    axis.text(0.5, 0.5, text, ha="center", va="center", color="#666666")
    return figure


@_styled
def lift_chart(metrics: pd.DataFrame, pooled: pd.DataFrame, segments: pd.DataFrame, confidence: float = 0.95) -> Figure:
    """Forest plot: each tone's lift over control in percentage points with its CI, per segment and pooled;
    one panel per funnel metric. Filled markers are significant after multiplicity adjustment."""
    frames = [pooled.assign(segment_name=POOLED_LABEL)] if len(pooled) else []
    names = dict(zip(segments["segment"], segments["segment_name"], strict=True))
    frames.append(metrics.assign(segment_name=metrics["segment"].map(names)))
    data = pd.concat(frames, ignore_index=True)
    data = data[data["metric"].isin(list(BINARY_METRICS))]
    if data.empty:
        return _message_figure("No experiment metrics yet.")
    groups = ([POOLED_LABEL] if len(pooled) else []) + list(segments["segment_name"])
    arms = [a for a in ordered_arms(data["arm"]) if a != CONTROL]
    step = 0.8 / max(len(arms), 1)
    offsets = {arm: 0.4 - step / 2 - i * step for i, arm in enumerate(arms)}
    significant = _bool(data["significant"])
    height = 1.2 + 0.5 * len(groups) * max(1.0, len(arms) / 2.5)
    figure = Figure(figsize=(7.2, height), layout="constrained")
    axes = figure.subplots(1, len(BINARY_METRICS), sharey=True)
    positions = {group: len(groups) - 1 - i for i, group in enumerate(groups)}
    for axis, metric in zip(np.atleast_1d(axes), BINARY_METRICS, strict=True):
        rows = data[data["metric"] == metric]
        for arm in arms:
            part = rows[(rows["arm"] == arm) & rows["abs_lift"].notna()]
            y = part["segment_name"].map(positions).to_numpy(float) + offsets[arm]
            x = part["abs_lift"].to_numpy(float) * 100
            low = x - part["abs_ci_low"].to_numpy(float) * 100
            high = part["abs_ci_high"].to_numpy(float) * 100 - x
            color = tone_color(arm, arms)
            axis.errorbar(x, y, xerr=np.vstack([low, high]), fmt="none", ecolor=color, elinewidth=1.2, capsize=2)
            sig = significant[part.index].to_numpy()
            axis.scatter(x[sig], y[sig], color=color, s=22, zorder=3, label=arm if metric == "open" else None)
            axis.scatter(x[~sig], y[~sig], facecolor="white", edgecolor=color, s=22, zorder=3, linewidth=1.2)
        for group in groups:
            if not (rows["segment_name"] == group).any():
                axis.text(
                    0.5,
                    positions[group],
                    "no comparison",
                    transform=axis.get_yaxis_transform(),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="#999999",
                )
        axis.axvline(0, color="#333333", linewidth=0.8)
        axis.set_title(METRIC_LABELS[metric].capitalize())
        axis.grid(axis="y", visible=False)
    first = np.atleast_1d(axes)[0]
    first.set_yticks(list(positions.values()), [_plain(g) for g in positions])
    first.set_ylim(-0.6, len(groups) - 0.4)
    handles = [Line2D([], [], marker="o", linestyle="", color=tone_color(a, arms), label=a) for a in arms]
    handles += [
        Line2D([], [], marker="o", linestyle="", color="#555555", label="significant"),
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markerfacecolor="white",
            color="#555555",
            label="not significant",
        ),
    ]
    figure.supxlabel(f"Lift over control in percentage points, with {confidence:.0%} confidence interval", fontsize=8.5)
    figure.legend(handles=handles, loc="outside upper center", ncol=len(handles))
    return figure


@_styled
def funnel_chart(funnel: pd.DataFrame, segments: pd.DataFrame) -> Figure:
    """Open, click and conversion rate (% of customers sent to) per tone, one panel per funnel stage."""
    if funnel.empty:
        return _message_figure("No engagement data yet.")
    names = dict(zip(segments["segment"], segments["segment_name"], strict=True))
    order = [s for s in segments["segment"] if s in set(funnel["segment"])]
    arms = ordered_arms(funnel["arm"])
    width = 0.8 / len(arms)
    figure = Figure(figsize=(7.2, 4.3), layout="constrained")
    axes = figure.subplots(3, 1, sharex=True)
    for axis, (metric, flag) in zip(axes, BINARY_METRICS.items(), strict=True):
        for i, arm in enumerate(arms):
            part = funnel[funnel["arm"] == arm].set_index("segment").reindex(order)
            rate = part[flag].astype(float) / part["sent"].astype(float) * 100
            x = np.arange(len(order)) - 0.4 + width * (i + 0.5)
            bars = axis.bar(x, rate.to_numpy(), width=width * 0.92, color=tone_color(arm, arms), label=arm)
            axis.bar_label(bars, labels=["" if np.isnan(v) else f"{v:.1f}" for v in rate], fontsize=6, padding=1)
        axis.set_ylabel("% of customers sent to")
        axis.set_title(METRIC_LABELS[metric].capitalize())
        axis.grid(axis="x", visible=False)
        axis.margins(y=0.15)
    axes[-1].set_xticks(np.arange(len(order)), [_plain(names.get(s, s)) for s in order])
    axes[0].legend(ncol=len(arms), loc="lower center", bbox_to_anchor=(0.5, 1.12), fontsize=7.5)
    return figure


@_styled
def coverage_chart(coverage: pd.DataFrame, segments: pd.DataFrame, max_documents: int = 30) -> Figure:
    """Which documents each segment retrieved (cell = rank) and which ones its approved messages cite."""
    if coverage.empty:
        return _message_figure("No retrieved content yet.")
    order = [s for s in segments["segment"] if s in set(coverage["segment"])]
    usage = coverage.groupby(["document_id", "title"]).agg(n=("segment", "nunique"), best=("rank", "min")).reset_index()
    usage = usage.sort_values(["n", "best", "title"], ascending=[False, True, True]).head(max_documents)
    documents = list(usage["document_id"])
    labels = [_plain(t if len(t) <= 52 else t[:50] + "…") for t in usage["title"].astype(str)]
    grid = np.full((len(documents), len(order)), np.nan)
    cited = np.zeros_like(grid, dtype=bool)
    row_of = {d: i for i, d in enumerate(documents)}
    col_of = {s: j for j, s in enumerate(order)}
    for row in coverage.itertuples():
        if row.document_id in row_of and row.segment in col_of:
            grid[row_of[row.document_id], col_of[row.segment]] = row.rank
            cited[row_of[row.document_id], col_of[row.segment]] = row.cited
    figure = Figure(figsize=(7.2, 0.9 + 0.24 * len(documents)), layout="constrained")
    axis = figure.subplots()
    retrieved_only = np.where(~np.isnan(grid) & ~cited, 1.0, np.nan)
    cited_cells = np.where(cited, 1.0, np.nan)
    axis.imshow(retrieved_only, cmap=ListedColormap(["#cfe3ea"]), aspect="auto")
    axis.imshow(cited_cells, cmap=ListedColormap(["#00798c"]), aspect="auto")
    for (i, j), rank in np.ndenumerate(grid):
        if not np.isnan(rank):
            axis.text(
                j,
                i,
                f"{int(rank)}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if cited[i, j] else "#1b3a44",
            )
    names = dict(zip(segments["segment"], segments["segment_name"], strict=True))
    axis.set_xticks(range(len(order)), [textwrap.fill(_plain(names.get(s, s)), 12) for s in order])
    axis.xaxis.tick_top()
    axis.set_yticks(range(len(documents)), labels)
    axis.grid(False)
    axis.set_xticks(np.arange(-0.5, len(order)), minor=True)
    axis.set_yticks(np.arange(-0.5, len(documents)), minor=True)
    axis.grid(which="minor", color="white", linewidth=1.5)
    axis.tick_params(which="both", length=0)
    handles = [
        Patch(color="#00798c", label="retrieved and cited by an approved message"),
        Patch(color="#cfe3ea", label="retrieved only (number = retrieval rank)"),
    ]
    axis.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.3, -0.01), ncol=2, fontsize=7)
    return figure


@_styled
def attribution_chart(attribution: Attribution, confidence: float = 0.95) -> Figure:
    """Odds ratios with CIs: attributes that drive response (left), that change the messages' lift (right)."""
    outcome = attribution.outcome  # None when no model was fitted (Attribution.fitted)
    if outcome is None or attribution.terms.empty:
        return _message_figure(attribution.note or "No attribution model.")
    effects = [
        ("response", f"Who {METRIC_VERBS[outcome]}s"),
        ("uplift", "Who responds more to the new messages"),
    ]
    effects = [(e, t) for e, t in effects if (attribution.terms["effect"] == e).any()]
    response_terms = attribution.terms[attribution.terms["effect"] == "response"]
    rows = len(response_terms)
    figure = Figure(figsize=(7.2, 1.0 + 0.22 * rows), layout="constrained")
    axes = figure.subplots(1, len(effects))
    for axis, (effect, title) in zip(np.atleast_1d(axes), effects, strict=True):
        terms = attribution.terms[attribution.terms["effect"] == effect].iloc[::-1]
        # Top-aligned in both panels, so "age × message" sits level with "age".
        y = np.arange(len(terms)) + rows - len(terms)
        ratio = terms["odds_ratio"].to_numpy(float)
        err = np.vstack([ratio - terms["ci_low"].to_numpy(float), terms["ci_high"].to_numpy(float) - ratio])
        sig = terms["significant"].to_numpy(bool)
        colors = np.where(ratio >= 1, "#00798c", "#d1495b")
        axis.errorbar(ratio, y, xerr=err, fmt="none", ecolor="#777777", elinewidth=1, capsize=2)
        axis.scatter(ratio[sig], y[sig], color=colors[sig], s=26, zorder=3)
        axis.scatter(ratio[~sig], y[~sig], facecolor="white", edgecolor=colors[~sig], s=26, zorder=3, linewidth=1.2)
        axis.axvline(1, color="#333333", linewidth=0.8)
        # The uplift panel's terms are "attribute × message"; its title and axis say so once, so its labels are
        # as short as the response panel's and both fit the figure's width.
        axis.set_yticks(y, [_plain(label) for label in terms["label"]])
        axis.set_ylim(-0.6, rows - 0.4)  # the same row spacing in both panels
        # Constrained layout leaves a title's and an x label's width out: one wider than its panel runs off the figure.
        axis.set_title(textwrap.fill(title, 20))
        axis.set_xlabel(
            "Odds ratio per +1 SD (1 = no effect)" if effect == "response" else "Odds ratio, attribute × message"
        )
        axis.grid(axis="y", visible=False)
    figure.suptitle(
        f"What drives {METRIC_EVENTS[outcome]}: odds ratios with {confidence:.0%} confidence "
        "intervals (filled = significant after Holm adjustment)",
        fontsize=8.5,
    )
    return figure
