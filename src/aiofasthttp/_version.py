"""The package's one version string: pyproject.toml reads it (setuptools dynamic version)."""

__version__ = "0.1.0"
