"""The core: events, the per-resource state machine, coalescing and scheduling.

Pure Python. Nothing here imports OpenStack, SQL or Linux networking libraries; the outside
world is reached only through the small protocols in :mod:`astara.core.interfaces`.
"""
