"""The error of data that cannot be used (private; exported by :mod:`fnn.data`)."""

from __future__ import annotations


class DataError(ValueError):
    """A data file, picture or directory that cannot be used: not the format it claims,
    larger than the limit, damaged, truncated, or not the dataset it should be.

    A subclass of :class:`ValueError`; the message names the file, what was expected and
    what was found. The ``fnn`` command reports it in one line.
    """
