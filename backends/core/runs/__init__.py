"""Running one training run: its run directory (the only interface between the UI and the
worker), the launcher and the executors that start it (local, Ray; forked from a warm worker when
one is up), the process plan and the memory estimate, GPUs, and resuming.

May import: spec, access, data, tasks.
"""
