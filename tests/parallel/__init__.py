"""Tests of fnn.parallel and the sharded training step."""
