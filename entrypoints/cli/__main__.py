"""``python -m entrypoints.cli``: the ``taskq`` command without its console script."""

import sys

from entrypoints.cli import main

sys.exit(main())
