"""Gatewayz: a universal AI inference gateway."""

__version__ = "0.1.0"
