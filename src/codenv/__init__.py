"""codenv: shared Python code environments, built fast and switched atomically."""

__version__ = "0.1.0"
