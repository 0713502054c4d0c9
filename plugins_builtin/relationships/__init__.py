"""Relationships: typed, directed, time-bound links between two entities (spec §7.4)."""
