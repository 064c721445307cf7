"""Names shared across stages: asset groups, warehouse tables, the partition column."""

SEGMENT_COLUMN = "segment"
# IO-manager metadata for every per-segment asset: the column a partition's rows are selected by.
SEGMENT_PARTITION_METADATA = {"partition_expr": SEGMENT_COLUMN}
STORAGE_KINDS = {"pandas", "duckdb"}

CUSTOMERS_TABLE = "customers"
CUSTOMER_SEGMENTS_TABLE = "customer_segments"

# Per-segment warehouse tables. When a segment disappears from a new segmentation its rows are removed from these.
# `safety_audit` is deliberately absent: it is append-only and keeps every decision ever made.
PER_SEGMENT_TABLES = (
    "retrieved_content",
    "message_variants",
    "safety_verdicts",
    "assignments",
    "engagement",
    "experiment_metrics",
    "personalized_messages",
    "personal_field_verdicts",
)
# The safety stage's verdicts on the customer fields (tier, city) that personalized opening lines quote: a value
# reaches a message only if it is approved here. Written through the warehouse resource, one segment at a time.
PERSONAL_FIELDS_TABLE = "personal_field_verdicts"
