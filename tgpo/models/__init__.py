"""Preparing cluster checkpoints (`python -m tgpo prepare-model`) and aligning vocabularies."""
