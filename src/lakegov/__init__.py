"""lakegov: event-driven serverless governance for AWS data lakes.

All domain logic lives in this package; `src/handlers/` holds the thin Lambda entry points.
Nothing here reads ``os.environ`` outside :mod:`lakegov.settings`, and domain code receives
its AWS clients as arguments.
"""

__version__ = "0.1.0"
