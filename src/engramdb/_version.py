"""The package version, in a module of its own: the SDK and the server read it without importing the
top-level package (whose imports include the SDK)."""

__version__ = "0.1.0"
