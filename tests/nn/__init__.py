"""Tests of fnn.nn."""
