"""The embedded backends: offline stand-ins that do each external service's job locally, behind the same
resource interface as the Azure backends (search over the content library, a grounded message composer, a
safety screen). No Dagster imports; `resources/` wraps them."""
