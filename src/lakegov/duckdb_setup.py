"""DuckDB, the project's single-node engine, set up without any download.

Extensions come from the pip packages' folder (``duckdb-ext-httpfs`` and friends ship them
under ``duckdb_ext/extensions``); DuckDB is told never to fetch one itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lakegov.errors import ConfigurationError


def duckdb_extension_dir() -> Path:
    """The extension directory shipped by the ``duckdb-ext-httpfs`` wheel."""
    try:
        import duckdb_ext  # optional dependency: only the local runtime has it
    except ImportError as exc:
        raise ConfigurationError(
            "duckdb-ext-httpfs is not installed (pip install 'lakegov[local]')"
        ) from exc
    for base in getattr(duckdb_ext, "__path__", []):
        candidate = Path(base) / "extensions"
        if candidate.is_dir():
            return candidate
    raise ConfigurationError("duckdb-ext-httpfs is installed but has no extensions/ folder")


def connect_s3(
    *, endpoint_url: str, region: str, access_key_id: str, secret_access_key: str
) -> Any:
    """An in-memory DuckDB reading and writing ``s3://`` through httpfs at ``endpoint_url``
    (an S3-compatible endpoint over plain HTTP, path-style, as the embedded runtime's)."""
    import duckdb

    con = duckdb.connect(
        ":memory:",
        config={
            "extension_directory": str(duckdb_extension_dir()),
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
        },
    )
    con.execute("LOAD httpfs")
    host = endpoint_url.split("://", 1)[-1].rstrip("/")
    con.execute(
        "CREATE SECRET lakegov_s3 (TYPE s3, KEY_ID ?, SECRET ?, REGION ?, ENDPOINT ?, "
        "URL_STYLE 'path', USE_SSL ?)",
        [access_key_id, secret_access_key, region, host, endpoint_url.startswith("https")],
    )
    return con
