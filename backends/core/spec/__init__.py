"""What a run is, before anything runs: the config schema (its sections and their fields), the
method registry that every method module registers with, a model's shape from its config.json,
the fields of each data layout, and where the studio's own files live.

May import: tasks.
"""
