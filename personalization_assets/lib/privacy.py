"""Customer-id pseudonyms for logs, errors and metadata (no Dagster import, so pure logic can use them)."""

import hashlib
import os

ENV_LOG_SALT = "PERSONALIZATION_LOG_SALT"
# Not a secret: it only keeps pseudonyms from matching plain SHA-256 tables. Set your own salt per deployment.
DEFAULT_LOG_SALT = "customer-personalization-orchestrator/logs/v1"


def hash_customer_id(customer_id: object) -> str:
    """A stable pseudonym: `cust_` + 16 hex digits of SHA-256 salted with PERSONALIZATION_LOG_SALT."""
    salt = os.environ.get(ENV_LOG_SALT) or DEFAULT_LOG_SALT
    digest = hashlib.sha256(f"{salt}\x00{customer_id}".encode()).hexdigest()
    return f"cust_{digest[:16]}"
