"""Athena SQL from the command line and the demo: the same calls on AWS and locally."""
