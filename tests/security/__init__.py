"""Broker security, the upstream bridge and privacy, against real servers."""
