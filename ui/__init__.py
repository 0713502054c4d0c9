"""The UI shell."""
