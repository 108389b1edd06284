"""The lake's own records (run audit, test results, lineage events) and lineage graphs."""
