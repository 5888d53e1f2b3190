"""soundark: build, publish and mirror music preservation archives."""

__version__ = "0.1.0"
