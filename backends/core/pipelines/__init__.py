"""What every entry point goes through: the policy that checks a config given from the web
or a preset, pipeline presets and their stages, the pipeline runner, and the headless commands.

May import: spec, access, data, runs, reports, labels, tasks.
"""
