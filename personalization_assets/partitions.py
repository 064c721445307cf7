"""The segment partitions: one partition per customer segment, registered by the segmentation step."""

from dagster import DynamicPartitionsDefinition

SEGMENT_PARTITIONS_NAME = "segment"
segment_partitions = DynamicPartitionsDefinition(name=SEGMENT_PARTITIONS_NAME)
