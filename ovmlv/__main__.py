"""`python -m ovmlv` is the `ovmlv` command."""

from .cli import main

raise SystemExit(main())
