"""Jobs, one per way the pipeline is run: segmentation (the unpartitioned inputs), one segment's campaign (a
partition), and the cross-segment report. They are derived from the assets' partitioning and dependencies, so a new
stage joins the right job without editing this file."""

from collections.abc import Sequence

from dagster import AssetKey, AssetsDefinition, AssetSelection, define_asset_job

from personalization_assets.partitions import segment_partitions

SEGMENTATION_JOB = "segmentation_job"
CAMPAIGN_JOB = "campaign_job"
REPORT_JOB = "report_job"


def _downstream_of(roots: set[AssetKey], assets: Sequence[AssetsDefinition]) -> set[AssetKey]:
    deps = {key: set(asset.asset_deps.get(key, ())) for asset in assets for key in asset.keys}
    reached = set(roots)
    changed = True
    while changed:
        changed = False
        for key, upstream in deps.items():
            if key not in reached and upstream & reached:
                reached.add(key)
                changed = True
    return reached - roots


def build_jobs(assets: Sequence[AssetsDefinition]) -> list:
    partitioned = {
        key for asset in assets if asset.partitions_def == segment_partitions for key in asset.keys
    }
    report = _downstream_of(partitioned, assets) - partitioned
    inputs = {key for asset in assets for key in asset.keys} - partitioned - report
    jobs = [
        define_asset_job(
            SEGMENTATION_JOB,
            selection=AssetSelection.assets(*inputs),
            description="Load and validate customers and content; segment customers; register segment partitions.",
        )
    ]
    if partitioned:
        jobs.append(
            define_asset_job(
                CAMPAIGN_JOB,
                selection=AssetSelection.assets(*partitioned),
                description="One segment's campaign: retrieval, generation, safety, experiment (one partition).",
            )
        )
    if report:
        jobs.append(
            define_asset_job(
                REPORT_JOB,
                selection=AssetSelection.assets(*report),
                description="Pooled metrics and the campaign report across all segments.",
            )
        )
    return jobs
