"""Model registry: trained models with their labels, input modality, training run and metrics."""

from kaapana.models.registry import (
    ModelRegistry,
    ModelView,
    check_model_name,
    parse_model_reference,
)

__all__ = ["ModelRegistry", "ModelView", "check_model_name", "parse_model_reference"]
