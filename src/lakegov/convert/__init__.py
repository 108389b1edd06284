"""Landed files to Parquet: options, the CSV dialect, the DuckDB engine and its CLI.

The handler reads the key through :mod:`lakegov.layout`, picks a
:class:`~lakegov.convert.options.DatasetOptions` (from a ``datasets/`` document), then
calls :func:`lakegov.convert.engine.convert`. Nothing is imported here: the config
function validates ``datasets/`` documents with :mod:`lakegov.convert.options` and must
not load the engine (DuckDB is only in the convert function's layer).
"""
