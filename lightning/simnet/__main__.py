"""``python -m lightning.simnet``: see ``lightning.simnet.main``."""

from lightning.simnet import main

raise SystemExit(main())
