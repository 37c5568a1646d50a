"""fnn's test suite: one file per module of fnn, in a tree that mirrors fnn/."""
