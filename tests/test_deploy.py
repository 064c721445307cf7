"""Scale-out configuration: the executor chosen by PERSONALIZATION_EXECUTOR, and the example files in deploy/
validated against the schemas of the Dagster libraries they name (installed by the extras `k8s` and `celery`;
each check is skipped where its library is missing). No cluster or broker is contacted."""

from pathlib import Path

import pytest
from dagster import Definitions, in_process_executor, multiprocess_executor, validate_run_config

from personalization_assets.config import ConfigError
from personalization_assets.deployment import (
    ENV_EXECUTOR,
    ENV_EXECUTOR_CONFIG,
    executor_from_environment,
)
from tests.conftest import PROJECT_ROOT, require_extra

DEPLOY = PROJECT_ROOT / "deploy"
DEPLOYMENT_ENV = {
    "DAGSTER_PG_HOST": "postgres.personalization.svc",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "not-a-real-password",
    "DAGSTER_PG_DB": "dagster",
    "PERSONALIZATION_IMAGE": "registry.example.com/personalization:1.0.0",
    "DAGSTER_CELERY_BROKER_URL": "pyamqp://guest@rabbitmq//",
}


def campaign_job_with(executor):
    """The real campaign job of the code location, run by `executor`."""
    from personalization_assets.definitions import defs

    return Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        resources=defs.resources,
        executor=executor,
    ).resolve_job_def("campaign_job")


def test_default_executor_is_in_process_and_multiprocess_is_a_choice():
    assert executor_from_environment({}) is in_process_executor
    assert executor_from_environment({ENV_EXECUTOR: "Multiprocess"}) is multiprocess_executor


def test_executor_choice_and_settings_file_errors_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"PERSONALIZATION_EXECUTOR='ray' is not an executor.*'celery'"):
        executor_from_environment({ENV_EXECUTOR: "ray"})
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=f"PERSONALIZATION_EXECUTOR_CONFIG: {missing} is not a readable file"):
        executor_from_environment({ENV_EXECUTOR_CONFIG: str(missing)})
    listed = tmp_path / "list.yaml"
    listed.write_text("- max_concurrent: 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping of the multiprocess executor's settings"):
        executor_from_environment({ENV_EXECUTOR: "multiprocess", ENV_EXECUTOR_CONFIG: str(listed)})


def test_executor_settings_are_validated_against_the_executor(tmp_path):
    settings = tmp_path / "multiprocess.yaml"
    settings.write_text("max_concurrent: 2\n")
    good = executor_from_environment({ENV_EXECUTOR: "multiprocess", ENV_EXECUTOR_CONFIG: str(settings)})
    assert validate_run_config(campaign_job_with(good), {})
    settings.write_text("max_concurrent: two\n")
    bad = executor_from_environment({ENV_EXECUTOR: "multiprocess", ENV_EXECUTOR_CONFIG: str(settings)})
    with pytest.raises(Exception, match="max_concurrent"):
        validate_run_config(campaign_job_with(bad), {})


@pytest.mark.parametrize(
    ("choice", "library", "settings"),
    [("k8s", "dagster_k8s", "k8s_job_executor.yaml"), ("celery", "dagster_celery", "celery_executor.yaml")],
)
def test_deploy_executor_settings_fit_their_executor(choice, library, settings, monkeypatch):
    require_extra(library, choice)
    for name, value in DEPLOYMENT_ENV.items():
        monkeypatch.setenv(name, value)
    executor = executor_from_environment({ENV_EXECUTOR: choice, ENV_EXECUTOR_CONFIG: str(DEPLOY / settings)})
    job = campaign_job_with(executor)
    assert job.executor_def.name == executor.name and validate_run_config(job, {})


@pytest.mark.parametrize(
    ("instance_file", "library"),
    [("dagster.k8s.yaml", "dagster_k8s"), ("dagster.celery.yaml", "dagster_celery")],
)
def test_deploy_instance_files_fit_the_instance_and_their_classes(instance_file, library, monkeypatch):
    require_extra(library, instance_file.split(".")[1])
    postgres = require_extra("dagster_postgres", instance_file.split(".")[1])
    import importlib

    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.instance.config import dagster_instance_config

    for name, value in DEPLOYMENT_ENV.items():
        monkeypatch.setenv(name, value)
    config, _ = dagster_instance_config(str(DEPLOY), instance_file)  # the instance schema, env vars resolved

    def check(config_type, value) -> None:
        result = process_config(resolve_to_config_type(config_type), value)
        assert result.success, [error.message for error in result.errors]

    check(postgres.DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    for section in ("run_launcher", "run_coordinator"):
        block = config[section]
        module = importlib.import_module(block["module"].replace("dagster.core.", "dagster._core."))
        check(getattr(module, block["class"]).config_type(), block["config"])


def test_dockerfile_installs_what_the_deploy_files_need():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "'.[k8s,celery]'" in dockerfile
    pyproject = Path(PROJECT_ROOT / "pyproject.toml").read_text()
    for extra in ("k8s", "celery", "snowflake"):
        assert f"\n{extra} = [" in pyproject


def test_a_missing_extra_skips_locally_but_fails_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run in CI: extra `k8s` not installed"):
        require_extra("no_such_module_for_this_test", "k8s")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="extra `k8s` not installed"):
        require_extra("no_such_module_for_this_test", "k8s")
