"""Raises while being imported, like a model file that reads a missing environment variable."""
raise RuntimeError("DATA_ROOT is not set")
