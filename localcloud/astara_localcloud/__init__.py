"""The local cloud kit: real neutron-server, RabbitMQ and a network-namespace fabric on one host.

The same pieces serve the all-in-one demo (``astara-local``) and the test harness, so that the
tests exercise exactly what an operator runs. The Linux primitives it shares with the netns
provider (namespaces, the bridge fabric, processes by PID) live in :mod:`astara.linux`.
"""
