"""Athena on the embedded runtime: its query API, running the SQL on DuckDB."""
