"""Metadata documents in the config bucket: validate first, then apply, then report.

Every prefix (``governance/``, ``datasets/``, ``products/``, ``subscriptions/``) is a
:class:`~lakegov.metadata.kinds.MetadataKind`; :func:`~lakegov.metadata.service.process_upload`
runs the same path for all of them.
"""
