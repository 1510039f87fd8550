"""The data people bring, read as TRL's formats: layouts and their readers, the read plan,
conversations and turns, format detection and loading for a method, the checks and the preflight
that run before a run, JSONL files, near-duplicate filtering, whether the Hub can be reached.

May import: spec, access, tasks.
"""
