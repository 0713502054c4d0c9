"""Metadata extraction: ExifTool, PNG text chunks and safetensors headers."""
