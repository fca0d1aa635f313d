"""The sync benchmark: floor, today's practice, full and nightly sync against the simulator (see README.md)."""
