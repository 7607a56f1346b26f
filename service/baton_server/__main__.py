"""``python -m baton_server`` is the ``baton`` command."""

import sys

from baton_server.cli import main

sys.exit(main())
