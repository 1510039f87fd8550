"""The preference label store (SQLite: sessions, queues, slots, votes), agreement between
labelers, and the orders a queue can be served in.

May import: nothing else in backends.core.
"""
