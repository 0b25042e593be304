"""Config of the MatMul-free LM (HGRN-bit); fields and defaults as ridgerchu/matmulfreellm's ``HGRNBitConfig``."""

from __future__ import annotations

from transformers import PretrainedConfig


class HGRNBitConfig(PretrainedConfig):
    """HGRN-bit: MLGRU token mixer and GLU channel mixer, every projection a ternary BitLinear.

    ``attn_mode`` is accepted for compatibility (upstream only has ``fused_recurrent``; here sequences use
    the chunked scan and single decode steps the recurrent step, the same math). ``fuse_cross_entropy`` has
    no effect. ``use_short_conv=True`` (off in upstream defaults and the published checkpoints) is not
    implemented. ``rescale_prenorm_residual`` (default True, as upstream's ``_init_weights``) divides the
    init std of o_proj/down_proj by sqrt(2 L).
    """

    model_type = "hgrn_bit"
    keys_to_ignore_at_inference = ["past_key_values"]

    def __init__(
        self,
        vocab_size: int = 32000,
        hidden_size: int = 2048,
        num_hidden_layers: int = 24,
        attn_mode: str = "fused_recurrent",
        num_heads: int | None = 1,
        expand_ratio: int | None = 1,
        use_short_conv: bool = False,
        conv_size: int = 4,
        share_conv_kernel: bool = True,
        use_lower_bound: bool = True,
        hidden_ratio: int | None = 4,
        intermediate_size: int | None = None,
        hidden_act: str = "swish",
        max_position_embeddings: int = 2048,
        rms_norm_eps: float = 1e-6,
        use_cache: bool = True,
        pad_token_id: int | None = None,
        bos_token_id: int = 1,
        eos_token_id: int = 2,
        tie_word_embeddings: bool = False,
        initializer_range: float = 0.02,
        fuse_cross_entropy: bool = True,
        rescale_prenorm_residual: bool = True,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.attn_mode = attn_mode
        self.num_heads = num_heads
        self.expand_ratio = expand_ratio
        self.use_short_conv = use_short_conv
        self.conv_size = conv_size
        self.share_conv_kernel = share_conv_kernel
        self.use_lower_bound = use_lower_bound
        self.hidden_ratio = hidden_ratio
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.rms_norm_eps = rms_norm_eps
        self.use_cache = use_cache
        self.initializer_range = initializer_range
        self.fuse_cross_entropy = fuse_cross_entropy
        self.rescale_prenorm_residual = rescale_prenorm_residual
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )
