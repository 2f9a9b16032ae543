"""The command line and doctor; nothing in the library imports this package."""
