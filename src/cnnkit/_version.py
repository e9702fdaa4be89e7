"""The package version, on the lowest floor so that anything may name it."""

__version__ = "0.2.0"
