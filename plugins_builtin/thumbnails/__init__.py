"""Thumbnails: image.thumbnail assets derived from every ingested image."""
