"""Model families (descriptors of diffusers video pipelines) and named models."""

from .base import FAMILIES, MODELS, ModelFamily, NamedModel, family_for_pipeline_class

__all__ = ["FAMILIES", "MODELS", "ModelFamily", "NamedModel", "family_for_pipeline_class"]
