"""Building blocks shared by the three architectures (pure PyTorch)."""

from kernels.modules.mlp import GatedMLP, intermediate_size_for
from kernels.modules.norm import RMSNorm, rms_norm
from kernels.modules.rotary import RotaryEmbedding, apply_rotary

__all__ = ["GatedMLP", "intermediate_size_for", "RMSNorm", "rms_norm", "RotaryEmbedding", "apply_rotary"]
