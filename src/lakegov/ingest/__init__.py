"""Landed files: from an S3 "Object Created" event to Parquet, quarantine, audit and events.

The converter itself (:mod:`lakegov.convert`) knows nothing of S3; this package is the
adapter that streams the object through it and makes the outcome durable and visible.
"""
