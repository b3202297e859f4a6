"""Shared tools for the checks: strategies, PyTorch parity, gradient checks, tolerances."""
