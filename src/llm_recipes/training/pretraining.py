"""The pieces of scripts/pretrain.py that are not the stage itself: argument checks, building or loading the model,
the block trainers (plain, Rho-1, UL2) and a data stage's TrainingArguments."""

import dataclasses

from transformers import Trainer

from llm_recipes.errors import RecipeError
from llm_recipes.training.common import require_model_dir
from llm_recipes.training.modeling import build_config
from llm_recipes.training.token_selection import TokenSelectionMixin
from llm_recipes.training.ul2 import CausalEvalMixin, grow_embeddings

SOURCE_KEYS = {"path", "weight", "split", "config", "text_key"}  # one dataset of a stage's mixture


def check_shape(args):
    """Model shape and data stages, checked before anything loads."""
    kv = args.num_key_value_heads or args.num_attention_heads
    if args.hidden_size % args.num_attention_heads:
        raise RecipeError(f"hidden_size {args.hidden_size} is not divisible by num_attention_heads "
                          f"{args.num_attention_heads}")
    if args.num_attention_heads % kv:
        raise RecipeError(f"num_attention_heads {args.num_attention_heads} is not divisible by num_key_value_heads {kv}")
    if args.block_size > args.max_position_embeddings:
        raise RecipeError(f"block_size {args.block_size} exceeds max_position_embeddings {args.max_position_embeddings}")
    if not args.dataset_name and not args.data_stages:
        raise RecipeError("dataset_name: set it (or data_stages)")
    for i, stage in enumerate(args.data_stages or []):
        unknown = set(stage) - {"dataset_name", "datasets", "max_steps", "max_tokens", "block_size"}
        if unknown or ("dataset_name" in stage) == ("datasets" in stage) or {"max_steps", "max_tokens"} <= set(stage):
            raise RecipeError(f"data_stages[{i}]: expected dataset_name or datasets (one of them), max_steps or "
                              f"max_tokens (not both) and optionally block_size; got keys {sorted(stage)}")
        for j, source in enumerate(stage.get("datasets") or []):
            weight = source.get("weight", 1.0) if isinstance(source, dict) else None
            if not isinstance(source, dict) or not source.get("path") or set(source) - SOURCE_KEYS \
                    or not isinstance(weight, (int, float)) or weight <= 0:
                raise RecipeError(f"data_stages[{i}].datasets[{j}]: expected {{path, weight > 0, and optionally split, "
                                  f"config, text_key}}; got {source}")
        if stage.get("block_size", args.block_size) > args.max_position_embeddings:
            raise RecipeError(f"data_stages[{i}].block_size {stage['block_size']} exceeds max_position_embeddings "
                              f"{args.max_position_embeddings}")


def build_model(args, tokenizer):
    from transformers import AutoModelForCausalLM

    if args.model_name_or_path:
        model = AutoModelForCausalLM.from_pretrained(
            require_model_dir(args.model_name_or_path, allow_pickle=args.allow_pickle_weights))
        if args.ul2_denoisers:
            grow_embeddings(model, tokenizer)  # UL2 tokens the base tokenizer lacked
        if model.get_input_embeddings().num_embeddings < len(tokenizer):
            raise RecipeError(f"tokenizer_name_or_path has {len(tokenizer)} tokens but the model's embedding has "
                              f"{model.get_input_embeddings().num_embeddings}")
        return model
    kwargs = {} if args.architecture == "mamba" else {"attn_implementation": args.attn_implementation}
    return AutoModelForCausalLM.from_config(build_config(args, tokenizer), **kwargs)


class VocabOnly:
    """Stands in for a tokenizer in a dry run: its size is all a model config needs."""

    bos_token_id = eos_token_id = pad_token_id = None

    def __init__(self, size):
        self.size = size

    def __len__(self):
        return self.size


class BlockTrainer(Trainer):
    """Evaluation sees every held-out block, also when training drops a short last batch (dataloader_drop_last,
    advised with torch_compile): Trainer would drop it from evaluation too, or every batch of a small split."""

    def get_eval_dataloader(self, eval_dataset=None):
        drop, self.args.dataloader_drop_last = self.args.dataloader_drop_last, False
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.args.dataloader_drop_last = drop


class SelectiveTrainer(TokenSelectionMixin, BlockTrainer):
    """Rho-1 (`token_selection`): the loss uses the tokens with the highest excess loss over a reference model."""


class UL2Trainer(CausalEvalMixin, BlockTrainer):
    """UL2 (`objective: ul2`): training batches from the UL2 collator, held-out loss from the causal one."""


def stage_training_args(training_args, output_dir, max_steps):
    """A data stage's TrainingArguments: a copy with its own output_dir and steps (dataclasses.replace, not to_dict(),
    which writes the literal "<HUB_TOKEN>" into hub_token)."""
    return dataclasses.replace(training_args, output_dir=output_dir, max_steps=max_steps)
