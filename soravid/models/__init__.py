"""The model: a causal video autoencoder, a text encoder and a DiT over spacetime patches."""

from soravid.models.registry import MODEL_CONFIGS, ModelConfig, SoravidModel, build_model

__all__ = ["MODEL_CONFIGS", "ModelConfig", "SoravidModel", "build_model"]
