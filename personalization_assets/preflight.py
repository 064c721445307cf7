"""Checks `personalize run` makes before any stage runs: the code location loads (its resources validate their
YAML sections, endpoints and credential variables when it is imported), every stage's settings file validates,
and every resource can be built (an `EnvVar` that is not set fails here). A refusal names the file and key."""

from __future__ import annotations

from dagster import DagsterError, DagsterInstance, build_resources

from personalization_assets.config import ConfigError, stage_config_models
from resources.azure_auth import MissingCredentialError


def preflight(instance: DagsterInstance | None = None) -> list[str]:
    """Validate configuration and resources; return the stage files checked. Raises ConfigError listing
    every problem found. With `instance`, resources are built on it (without, Dagster makes an ephemeral one,
    ~0.7 s)."""
    from personalization_assets.definitions import defs  # load-time validation raises ConfigError here

    resources = dict(defs.resources or {})
    settings = resources["settings"]
    problems: list[str] = []
    checked: list[str] = []
    for model in stage_config_models():
        try:
            settings.stage(model)
            checked.append(model.FILENAME)
        except ConfigError as error:
            problems.append(str(error))
    try:
        with build_resources(resources, instance=instance) as built:
            # The model client reads its key variable when it is built (not at import): build it here, so a
            # missing key is refused now rather than at the first segment's generation step. No request is sent.
            client = getattr(built.llm, "client", None) if "llm" in resources else None
            if callable(client):
                client()
    except (DagsterError, ConfigError, ValueError, OSError, MissingCredentialError) as error:
        problems.append(f"resources: {_first_line(error)}")
    if problems:
        raise ConfigError("\n".join(problems))
    return checked


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return " ".join(line.strip() for line in text.splitlines()[:4] if line.strip()) or type(error).__name__
