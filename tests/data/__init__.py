"""Tests of fnn.data."""
