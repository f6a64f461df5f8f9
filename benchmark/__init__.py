"""erasebench: an evaluation harness for concept erasure in text-to-video diffusion models."""

__version__ = "0.1.0"
