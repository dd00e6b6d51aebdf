"""``python -m tapegrad``: the ``tapegrad`` command (see :mod:`tapegrad.cli`)."""

from tapegrad.cli import main

raise SystemExit(main())
