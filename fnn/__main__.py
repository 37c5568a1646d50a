"""``python -m fnn``: the same as the ``fnn`` command."""

import sys

from .cli import main

sys.exit(main())
