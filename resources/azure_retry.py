"""The retry policy the Azure-backed resources share: azure-core's RetryPolicy, extended to a read-only POST.

azure-core retries a POST only on 500/503/504 or when Retry-After is present, and never after a read error, since
a POST may not be idempotent. Some service calls are POSTs that only read (a search query, a text analysis):
retrying those after a 429 without Retry-After, a 408 or 502, a timeout or a cut-off answer is safe.
"""

from typing import Any


def read_only_post_retry_policy(
    path_suffix: str, total: int, backoff: float, backoff_max: float, retry_after_max: float | None = None
) -> Any:
    """azure-core's RetryPolicy (exponential backoff, Retry-After honoured) that also retries POSTs to URLs
    whose path ends with `path_suffix`. A Retry-After longer than `retry_after_max` (if set) is capped, so one
    answer cannot stall a partition."""
    from azure.core.pipeline.policies import RetryPolicy

    class ReadOnlyPostRetryPolicy(RetryPolicy):
        def _is_method_retryable(self, settings, request, response=None):
            if request.method.upper() == "POST" and request.url.split("?")[0].endswith(path_suffix):
                return True
            return super()._is_method_retryable(settings, request, response=response)

        def get_retry_after(self, response):
            retry_after = super().get_retry_after(response)
            if retry_after is None or retry_after_max is None:
                return retry_after
            return min(retry_after, retry_after_max)

    return ReadOnlyPostRetryPolicy(
        retry_total=total,
        retry_connect=total,
        retry_read=total,
        retry_status=total,
        retry_backoff_factor=backoff,
        retry_backoff_max=backoff_max,
    )
