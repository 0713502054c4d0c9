"""``python -m ff_plugin_sdk check <folder>`` and ``python -m ff_plugin_sdk new <name>``."""

from ff_plugin_sdk.cli import main

raise SystemExit(main())
