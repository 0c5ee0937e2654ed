"""The package's version (one place; ``datamanifest.__version__`` re-exports it)."""

__version__ = "0.1.0"
