"""The built-in task types."""
