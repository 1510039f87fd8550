"""The studio's control plane: everything but training itself, importable without torch.

Subpackages by concern, each importing only those below it (its docstring's "May import"
line says which; tests/test_architecture.py checks it):

    pipelines   entry points: the config policy, pipeline presets and runner, headless
    reports     win rates, comparisons, quality signals, verdicts, the pipeline report
    runs        run directory, launcher, executors (local, Ray, fork server), processes, memory
    labels      the preference label store, agreement, queue orders
    data        layouts, read plans, formats, preflight, JSONL, dedup
    access      accounts, logins, the path policy, registered reward functions
    spec        config schema, method registry, model shapes, layout fields, places
    tasks       the embedded tasks and IFEval's instruction format
"""
