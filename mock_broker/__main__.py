"""``python -m mock_broker``: the same as the ``mega-mock-broker`` command."""

from ._cli import main

raise SystemExit(main())
