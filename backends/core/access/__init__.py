"""Who may do what: accounts and their roles, login sessions, the one path policy every typed
path goes through, and the reward functions an operator registered.

May import: spec, tasks.
"""
