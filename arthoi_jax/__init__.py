"""arthoi_jax: articulated human-object interaction synthesis from a monocular video, in JAX."""

__version__ = "0.1.0"
