"""Linux primitives shared by the ``netns`` compute provider and the local cloud kit.

Network namespaces, bridges and veths made so that they are always cleaned up (``netns``), the
L2 fabric of one bridge per Neutron network in one namespace (``fabric``), and processes
started and stopped by PID and start time, never by name (``processes``, start times read
through psutil). Nothing here imports another astara package (an import-linter contract).
"""
