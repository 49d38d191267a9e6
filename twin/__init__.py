"""Da Nang Twin: the spatial model of Đà Nẵng (no web framework imported here)."""

__version__ = "0.1.0"
