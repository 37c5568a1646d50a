"""Tests of fnn.optim."""
