"""Config of the Gated Linear Attention Transformer; fields and defaults as fla 0.6's ``GLAConfig``."""

from __future__ import annotations

from transformers import PretrainedConfig


class GLAConfig(PretrainedConfig):
    """GLA: fla's ``GatedLinearAttention`` token mixer + SwiGLU MLP, pre-norm blocks.

    Accepted but without effect here (fused CUDA kernels / training tricks in fla): ``fuse_swiglu``,
    ``fuse_cross_entropy``, ``fuse_linear_cross_entropy``, ``use_l2warp``, ``use_gk``, ``use_gv``,
    ``elementwise_affine`` (always affine), ``attn_mode`` (the model uses the chunked kernel for
    sequences and the recurrent one for single decode steps; the math is the same).
    ``fuse_norm`` only picks the parameter name of the output norm (``g_norm_swish_gate`` vs ``g_norm``), as
    in fla. Not implemented (must keep their defaults): ``use_short_conv``, ``attn`` (hybrid layers),
    ``attnres_block_size``. ``gate_logit_normalizer`` and ``gate_low_rank_dim`` are the layer's constants in
    fla (16 and 16) exposed here; ``rescale_prenorm_residual`` (ours) divides the init std of
    o_proj/down_proj by sqrt(2 L).
    """

    model_type = "gla"
    keys_to_ignore_at_inference = ["past_key_values"]

    def __init__(
        self,
        hidden_size: int = 2048,
        expand_k: float = 0.5,
        expand_v: float = 1.0,
        hidden_ratio: int | None = 4,
        intermediate_size: int | None = None,
        num_hidden_layers: int = 24,
        num_heads: int = 4,
        num_kv_heads: int | None = None,
        feature_map: str | None = None,
        attn_mode: str = "chunk",
        use_short_conv: bool = False,
        conv_size: int = 4,
        use_output_gate: bool = True,
        clamp_min: float | None = None,
        hidden_act: str = "swish",
        max_position_embeddings: int = 2048,
        elementwise_affine: bool | None = True,
        norm_eps: float = 1e-6,
        use_gk: bool = True,
        use_gv: bool = False,
        attn: dict | None = None,
        use_cache: bool = True,
        pad_token_id: int | None = None,
        bos_token_id: int = 1,
        eos_token_id: int = 2,
        tie_word_embeddings: bool = False,
        initializer_range: float = 0.02,
        fuse_norm: bool = True,
        fuse_swiglu: bool = True,
        fuse_cross_entropy: bool = True,
        fuse_linear_cross_entropy: bool = False,
        use_l2warp: bool = False,
        vocab_size: int = 32000,
        attnres_block_size: int | None = None,
        gate_logit_normalizer: float = 16,
        gate_low_rank_dim: int = 16,
        rescale_prenorm_residual: bool = False,
        **kwargs,
    ):
        self.hidden_size = hidden_size
        self.expand_k = expand_k
        self.expand_v = expand_v
        self.hidden_ratio = hidden_ratio
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.feature_map = feature_map
        self.attn_mode = attn_mode
        self.use_short_conv = use_short_conv
        self.conv_size = conv_size
        self.use_output_gate = use_output_gate
        self.clamp_min = clamp_min
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.elementwise_affine = elementwise_affine
        self.norm_eps = norm_eps
        self.use_gk = use_gk
        self.use_gv = use_gv
        self.attn = attn
        self.use_cache = use_cache
        self.initializer_range = initializer_range
        self.fuse_norm = fuse_norm
        self.fuse_swiglu = fuse_swiglu
        self.fuse_cross_entropy = fuse_cross_entropy
        self.fuse_linear_cross_entropy = fuse_linear_cross_entropy
        self.use_l2warp = use_l2warp
        self.vocab_size = vocab_size
        self.attnres_block_size = attnres_block_size
        self.gate_logit_normalizer = gate_logit_normalizer
        self.gate_low_rank_dim = gate_low_rank_dim
        self.rescale_prenorm_residual = rescale_prenorm_residual
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )
