"""The yardstick for orchestration overhead: the pipeline's per-customer work with no Dagster, in one process.

Reads and validates the customer file, segments and profiles the customers, assigns every customer of each
segment to control or a tone, simulates engagement, computes the experiment statistics per segment and pooled,
and writes those tables to a DuckDB file, with the project's own functions (personalization_assets/lib) and
the shipped configuration's segmentation rules. What it leaves out is work whose cost does not grow with the
customers: retrieval, generation and screening of three variants per segment, and the report.

    .venv/bin/python scripts/lean_pipeline.py data/customers.csv /tmp/lean.duckdb

scripts/benchmark.py runs it next to `personalize run` and prints the ratio of the two wall times.
"""

import argparse
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

TONES = ("urgent", "informational", "friendly")


def lean_pipeline(customers_path: Path, warehouse: Path, config_dir: Path = PROJECT_ROOT / "config") -> dict:
    from personalization_assets.config import load_yaml_model
    from personalization_assets.config.segmentation import PipelineConfig, SegmentationConfig
    from personalization_assets.lib.assignment import assign_arms
    from personalization_assets.lib.customers import read_customer_file, validate_customers
    from personalization_assets.lib.segmentation import Condition, Rule, assign_rule_segments, profile_segments
    from personalization_assets.lib.simulation import draw_arm_uplifts, simulate_engagement
    from personalization_assets.lib.statistics import compute_experiment_metrics, compute_pooled_metrics

    timings: dict[str, float] = {}
    started = time.perf_counter()
    # The shipped input settings, as `personalize run` reads the file (extra columns, duplicate ids).
    inputs = load_yaml_model(config_dir / PipelineConfig.FILENAME, PipelineConfig)
    customers = validate_customers(
        read_customer_file(customers_path, delimiter=inputs.customers.delimiter),
        source=str(customers_path),
        allow_extra_columns=inputs.validation.extra_columns == "drop",
        duplicate_ids=inputs.validation.duplicate_ids,
    ).valid
    timings["load+validate"] = time.perf_counter() - started

    started = time.perf_counter()
    config = load_yaml_model(config_dir / SegmentationConfig.FILENAME, SegmentationConfig)

    def to_rule(rule) -> Rule:
        conditions = tuple(Condition(c.feature, c.op, c.value) for c in rule.when)
        return Rule(key=rule.key, name=rule.name, intent=rule.intent, conditions=conditions)

    segments = assign_rule_segments(customers, [to_rule(r) for r in config.rules], to_rule(config.default_segment))
    profiles = profile_segments(customers, segments)
    timings["segmentation"] = time.perf_counter() - started

    started = time.perf_counter()
    features = customers[["customer_id", "historical_open_rate", "historical_click_rate"]]
    uplifts = draw_arm_uplifts(list(TONES))
    engagement = []
    for segment, members in segments.groupby("segment", sort=True):
        variants = [(f"{segment}-{tone}", tone) for tone in TONES]
        assigned = assign_arms(members[["segment", "customer_id"]], variants)
        with_history = assigned.merge(features, on="customer_id", how="left")
        outcomes = simulate_engagement(with_history, uplifts)
        engagement.append(
            assigned.assign(**{flag: outcomes[flag].to_numpy() for flag in ("opened", "clicked", "converted")})
        )
    engagement_frame = pd.concat(engagement, ignore_index=True)
    timings["assign+simulate"] = time.perf_counter() - started

    started = time.perf_counter()
    metrics = compute_experiment_metrics(engagement_frame)
    pooled = compute_pooled_metrics(engagement_frame)
    timings["statistics"] = time.perf_counter() - started

    started = time.perf_counter()
    warehouse.unlink(missing_ok=True)
    with duckdb.connect(str(warehouse)) as connection:
        for name, frame in {
            "customers": customers,
            "customer_segments": segments,
            "segment_profiles": profiles,
            "engagement": engagement_frame,
            "experiment_metrics": metrics,
            "pooled_experiment_metrics": pooled,
        }.items():
            connection.register("frame", frame)
            connection.execute(f"create table {name} as select * from frame")
            connection.unregister("frame")
    timings["write"] = time.perf_counter() - started
    return {"customers": len(customers), "segments": int(profiles.shape[0]), "timings": timings}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("customers", type=Path, help="customer file (.csv or .parquet)")
    parser.add_argument("warehouse", type=Path, help="DuckDB file to write (replaced)")
    args = parser.parse_args()
    started = time.perf_counter()
    result = lean_pipeline(args.customers, args.warehouse)
    wall = time.perf_counter() - started
    steps = " · ".join(f"{step} {seconds:.2f}s" for step, seconds in result["timings"].items())
    print(f"lean pipeline: {result['customers']:,} customers, {result['segments']} segments in {wall:.2f}s ({steps})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
