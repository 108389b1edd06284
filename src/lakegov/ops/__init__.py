"""Operator tools: ``lakegov status`` (what happened) and ``lakegov redrive`` (replay DLQs)."""
