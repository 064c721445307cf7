"""The code location loads, and every job, asset, check, schedule and sensor resolves."""

from personalization_assets.definitions import defs
from personalization_assets.jobs import SEGMENTATION_JOB


def test_definitions_resolve():
    defs.resolve_all_job_defs()
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"customers", "customer_segments", "segment_profiles"} <= keys
    assert SEGMENTATION_JOB in {job.name for job in defs.resolve_all_job_defs()}


def test_every_asset_has_a_description_and_group():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, f"{key.to_user_string()} has no description"
        assert node.group_name != "default", f"{key.to_user_string()} has no group"
