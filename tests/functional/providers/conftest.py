"""Fixtures for compute-provider tests: a kit (fabric + management endpoint) per test."""

from tests.functional.localcloud.netns_kit import NetnsKit, netns_kit, port, random_mac

__all__ = ["NetnsKit", "netns_kit", "port", "random_mac"]
