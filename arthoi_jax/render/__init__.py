"""Differentiable 3D Gaussian rasterization in pure JAX (gsplat conventions)."""
