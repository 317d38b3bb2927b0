"""``python -m flowbridge run script.py``."""

import sys

from ._cli import main

sys.exit(main())
