"""Judging and telling: win rates and paired differences with intervals, the comparison of
several models, quality signals of answers, the verdict sentence, and the pipeline report.

May import: spec, access, data, runs, tasks.
"""
