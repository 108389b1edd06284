"""Data products: documents, dependency fan-in, runs, run audit and retries."""
