"""Model configs for pretraining from scratch (transformers' own classes), parameter budgets, FLOPs and MFU."""

import time

from transformers import TrainerCallback

from llm_recipes.errors import RecipeError

FAMILIES = ("llama", "gpt2", "mixtral", "qwen2_moe", "mamba")


def build_config(args, tokenizer):
    """A transformers config for `args.architecture`. llama: RMSNorm, RoPE, gated MLP with `hidden_act` (silu =
    SwiGLU, gelu = GeGLU, relu = ReGLU); gpt2: LayerNorm, learned positions, plain MLP; mixtral / qwen2_moe: sparse MoE
    with `num_experts` and `num_experts_per_tok`; mamba: a state-space model (no attention)."""
    from transformers import GPT2Config, LlamaConfig, MambaConfig, MixtralConfig, Qwen2MoeConfig

    special = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                   pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=args.tie_word_embeddings)
    kv = args.num_key_value_heads or args.num_attention_heads
    if args.architecture == "llama":
        return LlamaConfig(vocab_size=len(tokenizer), hidden_size=args.hidden_size, hidden_act=args.hidden_act,
                           intermediate_size=args.intermediate_size, num_hidden_layers=args.num_hidden_layers,
                           num_attention_heads=args.num_attention_heads, num_key_value_heads=kv,
                           max_position_embeddings=args.max_position_embeddings, rope_theta=args.rope_theta,
                           initializer_range=args.initializer_range, **special)
    if args.architecture == "gpt2":
        return GPT2Config(vocab_size=len(tokenizer), n_embd=args.hidden_size, n_layer=args.num_hidden_layers,
                          n_head=args.num_attention_heads, n_inner=args.intermediate_size,
                          activation_function="gelu_new" if args.hidden_act in ("silu", "gelu") else args.hidden_act,
                          n_positions=args.max_position_embeddings, initializer_range=args.initializer_range,
                          resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **special)
    if args.architecture in ("mixtral", "qwen2_moe"):
        common = dict(vocab_size=len(tokenizer), hidden_size=args.hidden_size, num_hidden_layers=args.num_hidden_layers,
                      num_attention_heads=args.num_attention_heads, num_key_value_heads=kv,
                      max_position_embeddings=args.max_position_embeddings, rope_theta=args.rope_theta,
                      num_experts_per_tok=args.num_experts_per_tok, initializer_range=args.initializer_range, **special)
        if args.architecture == "mixtral":
            return MixtralConfig(intermediate_size=args.intermediate_size, num_local_experts=args.num_experts, **common)
        return Qwen2MoeConfig(moe_intermediate_size=args.intermediate_size, num_experts=args.num_experts,
                              intermediate_size=args.intermediate_size, shared_expert_intermediate_size=0, **common)
    if args.architecture == "mamba":
        return MambaConfig(vocab_size=len(tokenizer), hidden_size=args.hidden_size,
                           num_hidden_layers=args.num_hidden_layers, **special)
    raise RecipeError(f"architecture: '{args.architecture}' is not one of {', '.join(FAMILIES)}")


def count_parameters(model):
    """Total and non-embedding parameters, and the non-embedding parameters one token uses: in a sparse MoE only
    num_experts_per_tok of the experts run per token, so expert weights count k / E (FLOPs and MFU use this)."""
    total = model.num_parameters()
    non_embedding = model.num_parameters(exclude_embeddings=True)  # without token (and learned position) embeddings
    config = model.config
    experts = getattr(config, "num_local_experts", None) or getattr(config, "num_experts", None)
    active = non_embedding
    if experts and getattr(config, "num_experts_per_tok", None):
        expert = sum(p.numel() for name, p in model.named_parameters() if ".experts." in f"{name}.")
        active -= round(expert * (1 - config.num_experts_per_tok / experts))
    return {"parameters": total, "non_embedding_parameters": non_embedding, "active_non_embedding_parameters": active}


def meta_model(config):
    """The model on the meta device: shapes and parameter counts without memory."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def fit_hidden_size(args, tokenizer, target, multiple=8):
    """Hidden size (a multiple of `multiple` and of the head count) whose non-embedding parameter count at this
    depth is closest to `target`; intermediate size keeps its ratio to the hidden size."""
    ratio = args.intermediate_size / args.hidden_size
    best = None
    for hidden in range(multiple, 8193, multiple):
        if hidden % args.num_attention_heads:
            continue
        args.hidden_size, args.intermediate_size = hidden, int(round(ratio * hidden / 8)) * 8
        n = count_parameters(meta_model(build_config(args, tokenizer)))["non_embedding_parameters"]
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (hidden, n)
        if n > target * 2:
            break
    args.hidden_size, args.intermediate_size = best[0], int(round(ratio * best[0] / 8)) * 8
    return best[1]


# bf16 dense tensor-core peaks from the vendors' datasheets (TFLOP/s per device), matched against the device name
DATASHEET_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "GH200": 989.0, "A100": 312.0, "L40S": 362.0, "L40": 181.0,
                         "A6000": 155.0, "L4": 121.0, "A10": 125.0, "RTX 4090": 165.0, "MI300X": 1307.0}


def measured_matmul_tflops(dtype="bfloat16", n=2048, repeats=8):
    """This machine's matrix-multiply throughput (TFLOP/s) for an n x n product in `dtype`, best of `repeats`."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    a = torch.randn(n, n, dtype=getattr(torch, dtype), device=device)
    b = torch.randn(n, n, dtype=getattr(torch, dtype), device=device)
    best = float("inf")
    for _ in range(repeats + 2):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e12


def device_peak_tflops(requested=None, bf16=False):
    """(peak TFLOP/s per device, where it comes from) for MFU: the recipe's value; a GPU's datasheet bf16 peak;
    on a CPU the measured matmul peak in the dtype training multiplies in (bf16 under autocast, else float32)."""
    import torch

    if requested:
        return requested, "recipe (peak_tflops)"
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        for key, value in DATASHEET_BF16_TFLOPS.items():
            if key in name:
                return value, f"{key} datasheet bf16 dense"
        return measured_matmul_tflops("bfloat16"), f"measured bf16 matmul on {name}"
    dtype = "bfloat16" if bf16 else "float32"
    return measured_matmul_tflops(dtype), f"measured {dtype} matmul on this CPU"


def head_flops_per_token(model):
    """Training FLOPs per token of a tied LM head (6 d V): its weight is the embedding, which the non-embedding count
    leaves out, but the output projection is a real matrix multiply (an untied head is already counted)."""
    head, embedding = model.get_output_embeddings(), model.get_input_embeddings()
    if head is None or embedding is None or head.weight.data_ptr() != embedding.weight.data_ptr():
        return 0
    return 6 * head.weight.shape[0] * head.weight.shape[1]


def flops_per_token(non_embedding_parameters, layers, hidden, seq_len):
    """Training FLOPs per token: 6 N (matmuls, forward + backward) + 12 L d T (attention scores and values); for an
    MoE, N is the active non-embedding parameter count."""
    return 6 * non_embedding_parameters + 12 * layers * hidden * seq_len


class ThroughputCallback(TrainerCallback):
    """Logs tokens seen, tokens/s, FLOPs per token and MFU against `peak_tflops` (per device, device_peak_tflops). tokens/s counts from the
    start of training; `tokens_per_second_steady` from the first log on, leaving out warm-up and torch.compile."""

    def __init__(self, tokens_per_step, flops_per_token_, peak_tflops, world_size=1, head_flops=0):
        self.tokens_per_step, self.fpt, self.peak, self.world = tokens_per_step, flops_per_token_, peak_tflops, world_size
        self.head = head_flops  # a tied LM head's matmul (head_flops_per_token): in MFU, logged apart
        self.start, self.start_step, self.first_log, self.last = None, 0, None, {}

    def on_train_begin(self, args, state, control, **kwargs):
        self.start, self.start_step = time.time(), state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or self.start is None or "loss" not in logs:
            return
        now = time.time()
        tps = (state.global_step - self.start_step) * self.tokens_per_step / max(now - self.start, 1e-9)
        self.last = {"tokens_seen": state.global_step * self.tokens_per_step, "tokens_per_second": round(tps, 1),
                     "flops_per_token": self.fpt, "head_flops_per_token": self.head,
                     "mfu": tps * (self.fpt + self.head) / (self.peak * 1e12 * self.world)}
        if self.first_log is None:
            self.first_log = (now, state.global_step)
        elif state.global_step > self.first_log[1]:
            steady = (state.global_step - self.first_log[1]) * self.tokens_per_step / max(now - self.first_log[0], 1e-9)
            self.last.update(tokens_per_second_steady=round(steady, 1),
                             mfu_steady=steady * (self.fpt + self.head) / (self.peak * 1e12 * self.world))
        logs.update(self.last)
