"""`python -m gateway` is `community-gateway`."""

from gateway.cli import main

raise SystemExit(main())
