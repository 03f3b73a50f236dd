"""Operator tools: astara-ctl, astara-debug-router, astara-dbsync."""
