"""Task base classes."""
