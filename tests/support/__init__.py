"""Helpers shared by test files in more than one directory."""
