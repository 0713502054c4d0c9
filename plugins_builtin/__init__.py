"""Built-in feature plugins, each registered through its own entry point."""
