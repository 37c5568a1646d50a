"""Tests of fnn.tree."""
