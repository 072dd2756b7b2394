"""Shared test setup: JAX on the CPU, float32 by default (tests that need float64 enable it locally)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
