"""Jobs, one per way the pipeline is run: segmentation (the unpartitioned inputs), one segment's campaign (a
partition), and the cross-segment report. They are derived from the assets' partitioning and dependencies, so a new
stage joins the right job without editing this file."""

from collections.abc import Sequence

from dagster import AssetsDefinition, AssetSelection, HookDefinition, define_asset_job

from personalization_assets.partitions import segment_partitions

SEGMENTATION_JOB = "segmentation_job"
CAMPAIGN_JOB = "campaign_job"
REPORT_JOB = "report_job"


def build_jobs(assets: Sequence[AssetsDefinition], campaign_hooks: Sequence[HookDefinition] = ()) -> list:
    """The three jobs; `campaign_hooks` run on the campaign job's steps (the report's failure flag)."""
    partitioned = AssetSelection.assets(
        *(key for asset in assets if asset.partitions_def == segment_partitions for key in asset.keys)
    )
    # The report is what the per-segment assets feed; the segmentation job is everything upstream of them.
    report = partitioned.downstream(include_self=False)
    inputs = AssetSelection.all() - partitioned - report
    return [
        define_asset_job(
            SEGMENTATION_JOB,
            selection=inputs,
            description="Load and validate customers and content; segment customers; register segment partitions.",
        ),
        define_asset_job(
            CAMPAIGN_JOB,
            selection=partitioned,
            description="One segment's campaign: retrieval, generation, safety, experiment (one partition).",
            hooks=set(campaign_hooks),
        ),
        define_asset_job(
            REPORT_JOB,
            selection=report,
            description="Pooled metrics and the campaign report across the segments served in the campaign.",
        ),
    ]
