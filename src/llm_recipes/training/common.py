"""The lifecycle every training stage (pretrain, sft, dpo, kto, reward, rl) goes through, and the pieces it is made of:

    start_stage        dry run (print the plan, load nothing), hub token, seed, choices
    claim_output_dir   refuse another run's output_dir (run_identity), mark the stage incomplete
    train_resuming     build the trainer, train under the NaN guard, resuming from the last checkpoint
    finish_stage       merged LoRA model, model card, report.json (last), hub upload

train_and_save is claim_output_dir + train_resuming + save for a stage that trains one model once (the TRL stages);
scripts/pretrain.py claims its output_dir once and trains each data stage with train_resuming."""

import dataclasses
import glob
import json
import math
import os

from transformers import TrainerCallback

from llm_recipes.errors import RecipeError


@dataclasses.dataclass
class DataArguments:
    """The data and safety options every TRL stage (sft, dpo, kto, ...) shares; a stage's dataclass extends it. A field
    with `"result": False` in its metadata does not change what a run computes (run_identity leaves it out)."""

    dataset_name: str | None = dataclasses.field(default=None, metadata={
        "help": "local JSONL/Parquet file or folder, or a hub dataset id"})
    dataset_split: str = "train"
    dataset_mixture: list[dict] | None = dataclasses.field(default=None, metadata={
        "help": "[{path, weight (fraction kept, may exceed 1 to repeat), split}] instead of dataset_name"})
    subset_seed: int | None = dataclasses.field(default=None, metadata={
        "help": "the shuffled order a fractional weight takes a prefix of (default: seed): nested subsets"})
    on_bad_record: str = dataclasses.field(default="error", metadata={
        "help": "error | drop (counted, with an example)"})
    allow_pickle_weights: bool = dataclasses.field(default=False, metadata={
        "result": False, "help": "load *.bin weights (can run code)"})
    dry_run: bool = dataclasses.field(default=False, metadata={
        "result": False, "help": "check the recipe and print the plan; load nothing"})


# Options of the library dataclasses we do not own (transformers' TrainingArguments, TRL's configs and ModelConfig)
# that do not change what a run computes: where a run writes, how often it logs, saves or evaluates, how it is
# watched or uploaded. (save_safetensors: TrainingArguments before transformers 5.) Our own dataclasses say it in the
# field instead: `field(..., metadata={"result": False, ...})`. Every other option is part of the run identity.
LIBRARY_NON_RESULT_KEYS = {
    "output_dir", "logging_steps", "logging_first_step", "logging_strategy", "logging_nan_inf_filter", "log_level",
    "log_level_replica", "log_on_each_node", "disable_tqdm", "save_steps", "save_strategy", "save_total_limit",
    "save_only_model", "save_on_each_node", "save_safetensors", "report_to", "run_name", "project",
    "trackio_space_id", "push_to_hub", "hub_model_id", "hub_strategy", "hub_token", "hub_private_repo",
    "hub_always_push", "hub_revision", "eval_strategy", "eval_steps", "eval_delay", "eval_on_start",
    "per_device_eval_batch_size", "dataloader_num_workers", "dataloader_persistent_workers",
    "dataloader_prefetch_factor", "resume_from_checkpoint", "local_rank", "ddp_timeout",
}


def changes_result(f):
    """Whether a dataclass field changes what a run computes: its metadata's `result` (our dataclasses), else not
    one of LIBRARY_NON_RESULT_KEYS."""
    return f.metadata.get("result", f.name not in LIBRARY_NON_RESULT_KEYS)


def run_identity(*configs, ignore=()):
    """Every option that changes what a training run computes (the init fields for which changes_result holds), as
    JSON values: resuming an output_dir is allowed only when this is unchanged (a new learning rate is a new run)."""
    identity = {}
    for config in configs:
        for f in dataclasses.fields(config):
            if f.init and changes_result(f) and f.name not in ignore:
                identity[f.name] = getattr(config, f.name)
    return json.loads(json.dumps(identity, default=str, sort_keys=True))


def start_stage(args, training_args, model_args=None, describe=None):
    """The start every training stage shares. A dry run prints the plan and returns False (nothing is loaded): the
    TRL stages' table (model, data, LoRA, batch, hub repository), or `describe(hub target)` for a stage that prints its
    own plan after it. Otherwise the seed is set and what would fail after training fails now (no hub token, a bad
    on_bad_record), and True."""
    from transformers import set_seed

    from llm_recipes.config import check_choices
    from llm_recipes.reporting.report import plan

    push = hub_push_target(training_args)  # no token: stop now, not after training
    if args.dry_run:  # real-scale recipes: parsed and checked offline, nothing downloaded
        print(describe(push) if describe else plan(args, training_args, model_args, push))
        return False
    set_seed(training_args.seed)
    if hasattr(args, "on_bad_record"):
        check_choices(args, on_bad_record=("error", "drop"))
    return True


def claim_output_dir(configs, ignore=()):
    """Before training: refuse an output_dir that holds another run (its recorded run_identity of `configs`, the
    `ignore` keys left out, differs), record this run's identity there, and remove a report.json so that an
    interrupted re-run never looks complete. configs[1] is the training config (its output_dir)."""
    from llm_recipes.reporting.report import check_output_dir, clear_report

    output_dir = configs[1].output_dir
    check_output_dir(output_dir, run_identity(*configs, ignore=ignore))
    clear_report(output_dir)


def train_resuming(trainer_cls, training_args, callbacks=(), **trainer_kwargs):
    """Build the trainer (NaN guard first among the callbacks) and train it, resuming from the last checkpoint in
    training_args.output_dir; a non-finite loss stops with one line naming the last good checkpoint. Returns
    (trainer, train result, checkpoint resumed from or None)."""
    output_dir = training_args.output_dir
    guard = NaNGuard()
    trainer = trainer_cls(args=training_args, callbacks=[guard, *callbacks], **trainer_kwargs)
    checkpoint = last_checkpoint(output_dir)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    guard.check(output_dir)
    return trainer, result, checkpoint


def trained_on(args):
    """The data a stage trained on, for its model card: dataset_name, a dataset_mixture's paths and the sources of
    pretraining's data_stages."""
    stages = getattr(args, "data_stages", None) or []
    return [getattr(args, "dataset_name", None), *(m["path"] for m in getattr(args, "dataset_mixture", None) or []),
            *(s.get("dataset_name") or src["path"] for s in stages for src in (s.get("datasets") or [s]))]


def finish_stage(stage, trainer, metrics, args, training_args, model_args=None, start=None):
    """The end every training stage shares (call on the main process, after the model is saved): the merged model
    when LoRA and merge_adapter, a model card in each saved directory, report.json written last, then the hub upload
    when push_to_hub is set. Without TRL's ModelConfig (pretraining) the base model is args.model_name_or_path;
    `start` (time.time() at the start) gives the report's wall_time_s."""
    import time

    from llm_recipes.reporting.model_card import write_model_card
    from llm_recipes.reporting.report import markdown_table, write_report

    saved = [training_args.output_dir]
    if model_args is not None and model_args.use_peft and getattr(args, "merge_adapter", False):
        saved.append(os.path.join(training_args.output_dir, "merged"))
        save_merged(trainer.model, trainer.processing_class, saved[-1])
    print(markdown_table(["metric", "value"], [(k, v) for k, v in metrics.items() if not isinstance(v, list)]))
    configs = tuple(c for c in (args, training_args, model_args) if c is not None)
    for out in saved:
        write_model_card(out, stage, metrics, configs, (model_args or args).model_name_or_path, trained_on(args))
    report = write_report(training_args.output_dir, stage, metrics,
                          wall_time_s=None if start is None else time.time() - start)
    push_to_hub(trainer)
    return report


def hub_push_target(training_args):
    """Where `push_to_hub: true` sends the model, checked before any training: a token must be available (hub_token,
    HF_TOKEN or a saved login), else one line says so. None when the recipe does not push."""
    if not getattr(training_args, "push_to_hub", False):
        return None
    from huggingface_hub import get_token

    if not (training_args.hub_token or get_token()):
        raise RecipeError("push_to_hub: no Hugging Face token (set HF_TOKEN, run `hf auth login`, or set hub_token)")
    return training_args.hub_model_id or os.path.basename(os.path.abspath(training_args.output_dir))


def push_to_hub(trainer):
    """After saving (model card included): upload the output_dir with the trainer's own push_to_hub."""
    if trainer.args.push_to_hub and trainer.is_world_process_zero():
        trainer.push_to_hub(commit_message="llm-recipes: end of training")


def last_checkpoint(output_dir):
    """The checkpoint to resume from, as the alignment-handbook scripts do (None for a fresh run)."""
    from transformers.trainer_utils import get_last_checkpoint

    if output_dir and os.path.isdir(output_dir):
        return get_last_checkpoint(output_dir)
    return None


def all_checkpoints(output_dir, hint="set save_steps in the recipe"):
    """[(step, path)] of every `checkpoint-<step>` a Trainer saved in output_dir, oldest first (probes and trackers
    that score each checkpoint); none is an error naming the folder and `hint`."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    found = sorted((int(p.rsplit("-", 1)[1]), p) for p in glob.glob(os.path.join(output_dir, PREFIX_CHECKPOINT_DIR + "-*"))
                   if p.rsplit("-", 1)[1].isdigit())
    if not found:
        raise RecipeError(f"runs: {output_dir} has no {PREFIX_CHECKPOINT_DIR}-* directories ({hint})")
    return found


def require_model_dir(path, key="model_name_or_path", needs="config.json", allow_pickle=False, revision=None):
    """A local model (or tokenizer) directory must hold `needs`, and weights as safetensors unless `allow_pickle`.
    A name of the hub's "org/name" form is a hub id: offline (HF_HUB_OFFLINE=1, the default here) it must already be
    in the local cache, else one line names it and the setting (air-gapped clusters fail before any work). A `.gguf`
    file or a `package:` path becomes a converted safetensors directory (llm_recipes.training.importing): use the
    returned path."""
    from llm_recipes.training.importing import resolve_model_path

    path = resolve_model_path(path, key)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, needs)):
            raise RecipeError(f"{key}: {path} has no {needs} (not a Hugging Face directory)")
        if needs == "config.json" and not allow_pickle and not glob.glob(os.path.join(path, "*.safetensors")) and (
                glob.glob(os.path.join(path, "*.bin")) or glob.glob(os.path.join(path, "*.pt"))):
            raise RecipeError(f"{key}: {path} has pickle weights (*.bin), which can run code when loaded; convert them "
                              "to safetensors or set allow_pickle_weights: true")
    elif path.startswith((".", "/", "~")) or path.count("/") != 1:  # not of the hub's "org/name" form
        raise RecipeError(f"{key}: model directory not found: {path}")
    else:
        from huggingface_hub import constants, try_to_load_from_cache

        if constants.HF_HUB_OFFLINE and not isinstance(try_to_load_from_cache(path, needs, revision=revision), str):
            raise RecipeError(f"{key}: {path} is a hub model that is not in the local cache, and HF_HUB_OFFLINE=1: "
                              f"download it first (hf download {path}) or set HF_HUB_OFFLINE=0")
    return path


class NaNGuard(TrainerCallback):
    """Stops training at the first non-finite logged loss or gradient norm (Trainer's logging_nan_inf_filter logs a
    NaN loss as a finite number, so the gradient norm is watched too), before a checkpoint of the bad state is saved.
    Log every step (logging_steps: 1) to catch it at once."""

    def __init__(self):
        self.bad = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "grad_norm"):
            value = (logs or {}).get(key)
            if self.bad is None and isinstance(value, (int, float)) and not math.isfinite(value):
                self.bad = (state.global_step, key, value)
        if self.bad:
            control.should_training_stop = True
            control.should_save = False
        return control

    def check(self, output_dir):
        if self.bad:
            step, key, value = self.bad
            good = last_checkpoint(output_dir)
            raise RecipeError(f"training stopped: {key} became {value} at step {step} (loss became non-finite); "
                              f"last good checkpoint: {good or 'none'} (lower learning_rate or check the data)")


def model_init_kwargs(model_args, training_args=None):
    """from_pretrained keyword arguments from TRL's ModelConfig, as TRL's own scripts build them: revision, dtype,
    attention implementation, quantization (TRL's get_quantization_config; QLoRA = load_in_4bit + use_peft) placed
    on this process's GPU, and the training config's model_init_kwargs."""
    import importlib.util

    from trl import get_quantization_config

    kwargs = dict(getattr(training_args, "model_init_kwargs", None) or {})
    kwargs["revision"] = model_args.model_revision
    if model_args.dtype is not None:
        kwargs["dtype"] = model_args.dtype
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    quantization = get_quantization_config(model_args)
    if quantization is not None:
        import torch

        key = "load_in_4bit" if model_args.load_in_4bit else "load_in_8bit"
        if not torch.cuda.is_available():
            raise RecipeError(f"{key}: quantized (QLoRA) loading needs a CUDA GPU with bitsandbytes; this machine has "
                              "none (set it to false to train in full precision)")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise RecipeError(f"{key}: bitsandbytes is not installed (pip install -r requirements-gpu.txt)")
        from accelerate import PartialState

        kwargs["quantization_config"] = quantization
        kwargs["device_map"] = {"": PartialState().local_process_index}  # each process its own GPU
    return kwargs


def load_model(model_args, allow_pickle=False, trust_remote_code=False, training_args=None):
    """Model and tokenizer from TRL's ModelConfig (every key honoured, see model_init_kwargs); remote code only if
    the recipe sets trust_remote_code."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = require_model_dir(model_args.model_name_or_path or "", allow_pickle=allow_pickle,
                             revision=model_args.model_revision)
    kwargs = model_init_kwargs(model_args, training_args)
    tokenizer = AutoTokenizer.from_pretrained(path, revision=model_args.model_revision,
                                              trust_remote_code=trust_remote_code)
    return AutoModelForCausalLM.from_pretrained(path, trust_remote_code=trust_remote_code, **kwargs), tokenizer


def save_merged(model, tokenizer, output_dir):
    """LoRA: fold the adapter into the base weights and save a plain model (loads without PEFT). A model with tied
    embeddings (SmolLM2, Gemma, ...) stays tied: with `lora_modules_to_save: [embed_tokens]` (new rows after a
    vocabulary expansion) the merge would otherwise leave the head pointing at the old embedding."""
    embedding, head = model.get_input_embeddings(), model.get_output_embeddings()
    original = getattr(embedding, "original_module", embedding)  # PEFT's modules_to_save wrapper keeps the original
    tied = head is not None and head.weight.data_ptr() == original.weight.data_ptr()  # (PEFT sets the config False)
    merged = model.merge_and_unload()
    if tied:
        merged.config.tie_word_embeddings = True
        merged.tie_weights()
        if merged.get_output_embeddings().weight.data_ptr() != merged.get_input_embeddings().weight.data_ptr():
            raise RecipeError(f"{output_dir}: the merged model's LM head is no longer tied to its embeddings")
    merged.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)


def train_and_save(trainer_cls, configs, **trainer_kwargs):
    """The run of a stage that trains one model once (the TRL stages), from its (script args, training config,
    ModelConfig): claim_output_dir, train_resuming (LoRA from TRL's get_peft_config) and save. Returns (trainer,
    result, checkpoint resumed from)."""
    from trl import get_peft_config

    training_args, model_args = configs[1], configs[2]
    trainer_kwargs.setdefault("peft_config", get_peft_config(model_args))
    claim_output_dir(configs)
    trainer, result, checkpoint = train_resuming(trainer_cls, training_args, **trainer_kwargs)
    trainer.save_model(training_args.output_dir)
    return trainer, result, checkpoint
