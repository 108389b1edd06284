"""Running again what is stored: ``lakegov reprocess`` (landed objects through the
converter) and ``lakegov reapply`` (config documents through validate-then-apply), as a
Step Functions Distributed Map over the S3 listing."""
