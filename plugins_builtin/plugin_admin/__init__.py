"""The Plugins page: every plugin with its state, consent to enable, its runner and its
settings form (drawn from its ``config_schema`` by :mod:`.schema_form`)."""
