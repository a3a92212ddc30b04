"""``python -m faultserver``: see :mod:`faultserver.cli`."""

from faultserver.cli import main

raise SystemExit(main())
