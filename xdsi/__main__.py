"""``python -m xdsi`` is the ``xdsi`` console script."""

import sys

from xdsi.cli import main

sys.exit(main())
