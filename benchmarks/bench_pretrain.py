"""Benchmark: training tokens/s of scripts/pretrain.py (transformers Trainer) against a bare PyTorch loop (forward,
backward, AdamW step) on the same model, batch and data, and MFU.

    python benchmarks/bench_pretrain.py [--steps 60] [--hidden_size H] [--layers L] [--batch B] [--block T]
                                     [--torch_compile]

On CPU the default model is a 4.6M-parameter Llama (256 x 4, batch 16 x 128, fp32). On a GPU the default is a
201M-non-embedding-parameter Llama (1024 x 12, 16 heads, batch 16 x 1024, bf16, flash-attention 2 when installed, else
sdpa) and MFU is against `--peak_tflops` (H100 bf16 dense 989). Both paths are timed after `--warmup` steps (the
Trainer's steady tokens/s counts from its first log, so torch.compile's compilation is left out of the rate).
`--torch_compile` adds a row with the recipe key `torch_compile: true`. Prints figures; asserts nothing.
Goal: the Trainer path at >= 0.9x the bare loop.
"""

import argparse
import json
import math
import os
import tempfile
import time

from llm_recipes.config import load_recipe
from llm_recipes.data import load_records
from llm_recipes.reporting.report import markdown_table
from llm_recipes.scripts import pretrain
from llm_recipes.scripts import tokenizer as tokenizer_stage
from llm_recipes.training.token_blocks import pack

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "recipes", "tiny", "data", "docs.jsonl")
TINY = os.path.join(REPO, "recipes", "tiny", "pretrain.yaml")


def shape(args):
    """The recipe keys both paths build the model from."""
    return dict(hidden_size=args.hidden_size, intermediate_size=4 * args.hidden_size, num_hidden_layers=args.layers,
                num_attention_heads=args.heads, block_size=args.block, max_position_embeddings=max(512, args.block),
                attn_implementation=args.attn)


def bare_loop(args, tok_dir, blocks, device, dtype):
    import torch
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    margs, _ = load_recipe(pretrain.ARGUMENTS, TINY, tokenizer_name_or_path=tok_dir, output_dir="/tmp/unused",
                           **shape(args))
    model = pretrain.build_model(margs, AutoTokenizer.from_pretrained(tok_dir)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1, fused=device == "cuda" or None)
    data = torch.tensor(blocks["input_ids"])
    model.train()
    start = None
    for step in range(args.steps + args.warmup):
        if step == args.warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.time()
        batch = data[torch.randint(0, len(data), (args.batch,))].to(device)
        with torch.autocast(device_type=device, dtype=dtype, enabled=dtype != torch.float32):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if device == "cuda":
        torch.cuda.synchronize()
    del model, optimizer
    return args.steps * args.batch * args.block / (time.time() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--hidden_size", type=int, help="default 256 on CPU, 1024 on a GPU")
    parser.add_argument("--layers", type=int, help="default 4 on CPU, 12 on a GPU")
    parser.add_argument("--heads", type=int, help="default 4 on CPU, 16 on a GPU")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--block", type=int, help="default 128 on CPU, 1024 on a GPU")
    parser.add_argument("--attn", help="attn_implementation (default sdpa; flash_attention_2 on a GPU if installed)")
    parser.add_argument("--peak_tflops", type=float, default=989.0, help="per-device peak on a GPU (H100 bf16 dense)")
    parser.add_argument("--torch_compile", action="store_true", help="also time pretrain.py with torch_compile: true")
    args = parser.parse_args()
    import torch
    from datasets import Dataset, concatenate_datasets
    from transformers import AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = device == "cuda"
    dtype = torch.bfloat16 if gpu else torch.float32
    for key, cpu_value, gpu_value in [("hidden_size", 256, 1024), ("layers", 4, 12), ("heads", 4, 16),
                                      ("block", 128, 1024)]:
        if getattr(args, key) is None:
            setattr(args, key, gpu_value if gpu else cpu_value)
    if args.attn is None:
        import importlib.util

        args.attn = "flash_attention_2" if gpu and importlib.util.find_spec("flash_attn") else "sdpa"
    with tempfile.TemporaryDirectory() as tmp:
        tok_dir = os.path.join(tmp, "tok")
        tokenizer_stage.main(tokenizer_stage.TokenizerArguments(input_path=DOCS, output_dir=tok_dir, vocab_size=1500))
        tok = AutoTokenizer.from_pretrained(tok_dir)
        # the shipped documents, repeated until there are blocks for every step (content does not matter for speed)
        docs = load_records(DOCS, text_keys=["text"])
        blocks = pack(docs, tok, "text", args.block)
        repeat = math.ceil((args.steps + args.warmup) * args.batch / max(len(blocks), 1))
        data = os.path.join(tmp, "docs.jsonl")
        Dataset.from_dict({"text": list(docs["text"]) * repeat}).to_json(data, force_ascii=False)
        if repeat > 1:
            blocks = pack(concatenate_datasets([docs] * repeat), tok, "text", args.block)
        bare = bare_loop(args, tok_dir, blocks, device, dtype)
        rows, figures = [["bare PyTorch loop", round(bare), "-", "-", "-"]], {"bare_tokens_per_second": bare}
        for compiled in [False, True] if args.torch_compile else [False]:
            t0 = time.time()
            margs, targs = load_recipe(
                pretrain.ARGUMENTS, TINY, tokenizer_name_or_path=tok_dir, dataset_name=data, **shape(args),
                output_dir=os.path.join(tmp, f"trainer{int(compiled)}"), max_steps=args.steps + args.warmup,
                per_device_train_batch_size=args.batch, logging_steps=args.warmup, save_strategy="no",
                torch_compile=compiled, dataloader_drop_last=True,  # a short last batch recompiles (dynamic shapes)
                bf16=gpu, peak_tflops=args.peak_tflops if gpu else 1.0)
            report = pretrain.main(margs, targs)
            tps = report["tokens_per_second_steady"]
            warm_s = report["wall_time_s"] - args.steps * args.batch * args.block / tps
            name = "scripts/pretrain.py (Trainer" + (", torch_compile)" if compiled else ")")
            rows[0][3] = f"{bare * report['flops_per_token'] / (args.peak_tflops * 1e12):.3f}" if gpu else "-"
            rows.append([name, round(tps), f"{tps / bare:.2f}x", f"{report['mfu_steady']:.3f}" if gpu else "-",
                         f"{warm_s:.0f} s"])
            figures[f"trainer{'_compiled' if compiled else ''}_tokens_per_second"] = tps
            figures[f"mfu{'_compiled' if compiled else ''}"] = report.get("mfu_steady") if gpu else None
            print(f"{name}: {time.time() - t0:.0f} s in all")
    gpu_name = torch.cuda.get_device_name() if gpu else "cpu"
    print(f"\ndevice {gpu_name}, model {report['parameters'] / 1e6:.1f}M parameters "
          f"({report['non_embedding_parameters'] / 1e6:.1f}M without embeddings), {args.attn}, "
          f"{'bf16' if gpu else 'fp32'}, batch {args.batch} x {args.block} tokens, {args.steps} timed steps after "
          f"{args.warmup} warm-up steps")
    print(markdown_table(["path", "tokens/s", "vs bare loop", f"MFU (peak {args.peak_tflops:g} TFLOP/s)",
                          "run time outside the timed steps"], rows))
    print(json.dumps({"device": gpu_name, **figures, "flops_per_token": report.get("flops_per_token"),
                      "parameters": report["parameters"]}))


if __name__ == "__main__":
    main()
