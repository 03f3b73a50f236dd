"""Astara: network orchestration for OpenStack, one service appliance per tenant router."""

__version__ = "0.1.0"
