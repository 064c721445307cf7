"""Shared pytest fixtures. Service emulators live in tests/emulators (real HTTP on 127.0.0.1)."""

import contextlib
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, build_run_status_sensor_context, materialize

from resources.content_safety import EmbeddedContentSafetyResource
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager
from tests.emulators.identity import ManagedIdentityEndpoint

pytest_plugins = ["tests.emulators.fixtures"]


@pytest.fixture
def managed_identity(monkeypatch):
    """Route azure-identity's managed-identity flow to a local token endpoint; yields it (its `.token`)."""
    with ManagedIdentityEndpoint() as endpoint:
        endpoint.route(monkeypatch)
        yield endpoint


# --- Pipeline fixtures: real resources on a temporary warehouse, an ephemeral Dagster instance ---------------


PROJECT_ROOT = Path(__file__).resolve().parents[1]


def isolated_pipeline_env(root: Path) -> dict[str, str]:
    """Environment for a `personalize`/`dagster` subprocess: the shipped sample data and config, and a fresh
    DAGSTER_HOME (with the project's dagster.yaml), warehouse and reports folder under `root`."""
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PERSONALIZATION_WAREHOUSE": str(root / "warehouse.duckdb"),
        "PERSONALIZATION_REPORTS": str(root / "reports"),
        "PERSONALIZATION_CUSTOMERS": str(PROJECT_ROOT / "data" / "customers.csv"),
        "PERSONALIZATION_CONTENT": str(PROJECT_ROOT / "data" / "content"),
        "PERSONALIZATION_CONFIG": str(PROJECT_ROOT / "config"),
    }


@contextlib.contextmanager
def dagster_instance_at(home: str | Path):
    """The persistent instance in `home` (DAGSTER_HOME set meanwhile: dagster.yaml's storage is found from it)."""
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with DagsterInstance.get() as instance:
            yield instance
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


def run_partitions_concurrently(
    module: str, job_factory: str, partitions: list[str], env: dict[str, str], timeout: float = 240
) -> None:
    """Start one `execute_job(reconstructable(module.job_factory))` run per partition, each in a process of its
    own, all at once (as separate run workers or machines would), and assert that every run succeeded."""
    script = (
        "import sys\n"
        "from dagster import DagsterInstance, execute_job, reconstructable\n"
        f"from {module} import {job_factory}\n"
        "with DagsterInstance.get() as instance:\n"
        f"    with execute_job(reconstructable({job_factory}), instance=instance,"
        " tags={'dagster/partition': sys.argv[1]}) as result:\n"
        "        sys.exit(0 if result.success else 1)\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, partition],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for partition in partitions
    ]
    for partition, process in zip(partitions, processes, strict=True):
        _, stderr = process.communicate(timeout=timeout)
        assert process.returncode == 0, f"partition {partition}: {stderr[-3000:]}"


def fresh_python_output(code: str) -> str:
    """The last line `code` prints in a fresh interpreter with the project on its path: what importing or first
    use does in a new process, whatever this test process has already imported."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
        env={"PYTHONPATH": str(PROJECT_ROOT)},
    )
    return result.stdout.strip().splitlines()[-1]


def require_extra(module: str, extra: str):
    """Import an optional extra's module: skip the test where it is not installed, fail in CI (CI=true), where
    `make test` installs every extra and a skip would hide an untested scale-out option."""
    try:
        return importlib.import_module(module)
    except ImportError:
        problem = f"extra `{extra}` not installed (pip install -e '.[{extra}]'): no module {module}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"cannot run in CI: {problem}")
        pytest.skip(problem)


@pytest.fixture
def settings(tmp_path) -> PipelineSettings:
    """The shipped sample data and config; reports under tmp_path."""
    return PipelineSettings(
        customers_path=str(PROJECT_ROOT / "data" / "customers.csv"),
        content_path=str(PROJECT_ROOT / "data" / "content"),
        config_dir=str(PROJECT_ROOT / "config"),
        reports_dir=str(tmp_path / "reports"),
    )


@pytest.fixture
def warehouse(tmp_path) -> DuckDBWarehouse:
    return DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


@pytest.fixture
def base_resources(settings, warehouse) -> dict:
    """Resources every asset needs, with the embedded safety screen (content_index screens the library);
    tests add or replace service resources (search, llm, content_safety) in a copy."""
    return {
        "settings": settings,
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
        "content_safety": EmbeddedContentSafetyResource(),
    }


@pytest.fixture
def segmented(instance, base_resources):
    """Run the segmentation stage on the sample data; the instance then has the segment partitions."""
    from personalization_assets import segmentation

    result = materialize(
        [segmentation.load_customers, segmentation.customer_segments, segmentation.segment_profiles],
        instance=instance,
        resources=base_resources,
    )
    assert result.success
    return instance


def run_failure_sensor_context(instance: DagsterInstance, run, sensor_name: str):
    """The context the daemon gives a run-failure sensor for `run`'s (stored) failure event."""
    (failure,) = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_FAILURE).records
    return build_run_status_sensor_context(
        sensor_name=sensor_name,
        dagster_event=failure.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
    ).for_run_failure()
