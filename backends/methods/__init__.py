"""One module per method. Each defines `METHOD = MethodSpec(...)` (see backends/core/spec/registry.py)
and a `train(cfg, run, runtime)` that the worker calls. Importing a module here must stay
cheap and torch-free: the studio reads the declarations; only `train` imports torch / TRL.
"""
