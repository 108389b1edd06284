"""Lambda entry points: decorators, event parsing and one call into ``lakegov``."""
