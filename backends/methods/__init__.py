"""One module per method. Each defines `METHOD = MethodSpec(...)` (see backends/core/spec/registry.py)
and a `train(ctx)` that the worker calls with a RunContext (backends/worker/context.py). Importing a module here must stay
cheap and torch-free: the studio reads the declarations; only `train` imports torch / TRL.
"""
