"""What runs inside an appliance.

REST API, data plane (netlink, nftables, dnsmasq, bird), metadata proxy.

Importing this package loads nothing heavy; each module imports what it needs.
"""
