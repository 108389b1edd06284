"""Compaction of small Parquet files per partition, behind a generation switch in Glue."""
