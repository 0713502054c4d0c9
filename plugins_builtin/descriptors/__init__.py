"""Descriptors: time-bound facts about an entity, with their history (spec §7.3)."""
