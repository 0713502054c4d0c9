"""Entities: the primary identity objects (spec §7.1)."""
