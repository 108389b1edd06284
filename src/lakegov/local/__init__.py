"""The embedded runtime: the whole service on one machine, on moto's server (a child process)."""
