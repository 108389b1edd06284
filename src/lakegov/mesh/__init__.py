"""The data mesh: the central event bus, domain subscriptions and their rules.

Producers forward ``DatasetRefreshed`` (and ``SchemaChanged``) from their service bus to the
central bus; each ``subscriptions/*.json`` document becomes rules on the central bus that
deliver the datasets a domain asked for to that domain's bus, and nothing else.
"""
