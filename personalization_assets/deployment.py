"""How a run executes its steps, chosen by `PERSONALIZATION_EXECUTOR` when the code location loads
(docs/scale_out.md); the assets do not change.

- `in_process` (default): every step in the run's process, one after another. On one machine this is the
  fastest (no per-step import of the code location); segments run in parallel as separate runs.
- `multiprocess`: each step in its own process on the run's machine.
- `k8s`: each step in its own Kubernetes Job (dagster-k8s, extra `k8s`).
- `celery`: each step as a Celery task on a worker fleet (dagster-celery, extra `celery`).

`PERSONALIZATION_EXECUTOR_CONFIG` names a YAML file with the executor's settings
(deploy/k8s_job_executor.yaml, deploy/celery_executor.yaml), validated when a run is launched; `{env: NAME}`
values are read from the environment of the run's process.
"""

import os
from collections.abc import Mapping
from pathlib import Path

import yaml
from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor

from personalization_assets.config import ConfigError

ENV_EXECUTOR = "PERSONALIZATION_EXECUTOR"
ENV_EXECUTOR_CONFIG = "PERSONALIZATION_EXECUTOR_CONFIG"
IN_PROCESS, MULTIPROCESS, K8S, CELERY = "in_process", "multiprocess", "k8s", "celery"
EXECUTORS = (IN_PROCESS, MULTIPROCESS, K8S, CELERY)


def _named_executor(choice: str) -> ExecutorDefinition:
    if choice == IN_PROCESS:
        return in_process_executor
    if choice == MULTIPROCESS:
        return multiprocess_executor
    try:
        if choice == K8S:
            from dagster_k8s import k8s_job_executor

            return k8s_job_executor
        if choice == CELERY:
            from dagster_celery import celery_executor

            return celery_executor
    except ImportError:
        package = "dagster-k8s" if choice == K8S else "dagster-celery"
        raise ConfigError(f"{ENV_EXECUTOR}={choice} needs {package}: pip install -e '.[{choice}]'") from None
    raise ConfigError(f"{ENV_EXECUTOR}={choice!r} is not an executor of this project; use one of {EXECUTORS}")


def executor_from_environment(environ: Mapping[str, str] = os.environ) -> ExecutorDefinition:
    """The executor `PERSONALIZATION_EXECUTOR` names, configured by `PERSONALIZATION_EXECUTOR_CONFIG`."""
    choice = (environ.get(ENV_EXECUTOR) or IN_PROCESS).strip().lower()
    executor = _named_executor(choice)
    config_file = environ.get(ENV_EXECUTOR_CONFIG)
    if not config_file:
        return executor
    path = Path(config_file)
    if not path.is_file():
        raise ConfigError(f"{ENV_EXECUTOR_CONFIG}: {path} is not a readable file")
    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{ENV_EXECUTOR_CONFIG}: {path} is not valid YAML ({error})") from None
    if not isinstance(settings, dict):
        raise ConfigError(f"{ENV_EXECUTOR_CONFIG}: {path} must hold a mapping of the {choice} executor's settings")
    return executor.configured(settings, name=executor.name)
