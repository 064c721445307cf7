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


def test_every_stage_settings_file_is_shown_on_the_settings_resource_and_can_be_changed_for_one_run():
    """The code location reads each stage's YAML into `settings.stage_settings`, so the launchpad and the
    resource page show what a run will use; a value given in a run's resource config wins for that run."""
    from dagster import build_resources

    from personalization_assets.config import stage_config_models
    from personalization_assets.config.retrieval import RetrievalConfig

    settings = defs.resources["settings"]
    present = {model.FILENAME for model in stage_config_models() if settings.config_path(model.FILENAME).exists()}
    assert present >= {"pipeline.yaml", "retrieval.yaml", "generation.yaml", "safety_thresholds.yaml"}
    assert set(settings.stage_settings) == present  # an absent optional file (reporting.yaml) keeps its defaults
    assert (
        settings.stage(RetrievalConfig).threshold
        == RetrievalConfig.model_validate(settings.stage_settings[RetrievalConfig.FILENAME]).threshold
    )

    changed = {**settings.stage_settings[RetrievalConfig.FILENAME], "threshold": 0.77}
    run_config = {"stage_settings": {**settings.stage_settings, RetrievalConfig.FILENAME: changed}}
    with build_resources({"settings": settings}, resource_config={"settings": {"config": run_config}}) as built:
        assert built.settings.stage(RetrievalConfig).threshold == 0.77


def test_a_stage_setting_given_for_a_run_is_validated_and_named_by_its_file(tmp_path):
    import pytest

    from personalization_assets.config import ConfigError
    from personalization_assets.config.retrieval import RetrievalConfig
    from resources.settings import PipelineSettings

    settings = PipelineSettings(config_dir=str(tmp_path), stage_settings={"retrieval.yaml": {"treshold": 0.5}})
    with pytest.raises(ConfigError, match=r"retrieval\.yaml: invalid configuration[\s\S]*treshold: unknown key"):
        settings.stage(RetrievalConfig)
