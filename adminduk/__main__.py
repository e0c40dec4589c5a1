"""``python -m adminduk``: the same as the ``adminduk`` command."""

import sys

from adminduk.cli import main

sys.exit(main())
