"""A LoRA trainer for FaceForge in fast-test mode: an out-of-process plugin (see README)."""
