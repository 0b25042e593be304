"""The generic families' classifier (``family: hf`` and ``family: fla``): one class of ours around any causal-LM
backbone of transformers or fla, registered with transformers' Auto classes as model type
``backbone_classifier`` (no ``trust_remote_code``)."""

from kernels.models.common import logger
from kernels.models.generic.configuration_backbone_classifier import BackboneClassifierConfig, backbone_fields
from kernels.models.generic.libraries import BackboneClasses, BackboneResolutionError, backbone_class, resolve
from kernels.models.generic.modeling_backbone_classifier import (BackboneForSequenceClassification,
                                                                 backbone_hidden_size, build_backbone_config)


def _register() -> None:
    from transformers import AutoConfig, AutoModelForSequenceClassification

    try:
        AutoConfig.register(BackboneClassifierConfig.model_type, BackboneClassifierConfig, exist_ok=True)
        AutoModelForSequenceClassification.register(BackboneClassifierConfig, BackboneForSequenceClassification,
                                                    exist_ok=True)
    except Exception as err:  # an API change: stay importable, the registry reaches the classes directly
        logger.info("backbone_classifier not registered with transformers Auto classes: %s", err)


_register()

__all__ = ["BackboneClassifierConfig", "BackboneForSequenceClassification", "BackboneClasses",
           "BackboneResolutionError", "backbone_class", "backbone_fields", "backbone_hidden_size",
           "build_backbone_config", "resolve"]
