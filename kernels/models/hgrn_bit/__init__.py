"""MatMul-free LM (HGRN-bit) in ridgerchu/matmulfreellm's layout; model_type ``hgrn_bit``."""

from kernels.models.common import register_with_auto_classes
from kernels.models.hgrn_bit.configuration_hgrn_bit import HGRNBitConfig
from kernels.models.hgrn_bit.modeling_hgrn_bit import (HGRNBitAttention, HGRNBitForCausalLM,
                                                       HGRNBitForSequenceClassification, HGRNBitModel,
                                                       HGRNBitPreTrainedModel)

# mmfreelm registers "hgrn_bit" without exist_ok: when it is installed, leave the Auto mapping to it.
register_with_auto_classes(HGRNBitConfig, HGRNBitModel, HGRNBitForCausalLM, HGRNBitForSequenceClassification,
                           defer_to_packages=("mmfreelm",))

__all__ = ["HGRNBitConfig", "HGRNBitModel", "HGRNBitForCausalLM", "HGRNBitForSequenceClassification",
           "HGRNBitPreTrainedModel", "HGRNBitAttention"]
