"""Tests of fnn.io."""
