"""Benchmark: training tokens/s of scripts/pretrain.py (transformers Trainer) against a bare PyTorch loop (forward,
backward, AdamW step) on the same model, batch and data. On a GPU it also reports MFU (bf16) for a 125M model.

    python scripts/bench_pretrain.py [--steps 60] [--hidden_size 256] [--layers 4] [--batch 16] [--block 128]
                                     [--torch_compile]

Both paths are timed after `--warmup` steps (the Trainer's steady tokens/s counts from its first log, so torch.compile's
compilation is left out of the rate and reported as the first interval's time). `--torch_compile` adds a row with the
recipe key `torch_compile: true`. Prints figures; asserts nothing. Goal: the Trainer path at >= 0.9x the bare loop.
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # noqa: E402
import pretrain  # noqa: E402
import tokenizer as tokenizer_stage  # noqa: E402
from recipekit.cli import load_recipe  # noqa: E402
from recipekit.data import pack  # noqa: E402
from recipekit.report import markdown_table  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "recipes", "tiny", "data", "docs.jsonl")


def bare_loop(args, tok_dir, blocks, steps, warmup, device, dtype):
    import torch
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    margs, _ = load_recipe(pretrain.ARGUMENTS, os.path.join(REPO, "recipes", "tiny", "pretrain.yaml"),
                           tokenizer_name_or_path=tok_dir, hidden_size=args.hidden_size,
                           intermediate_size=4 * args.hidden_size, num_hidden_layers=args.layers,
                           block_size=args.block, output_dir="/tmp/unused")
    model = pretrain.build_model(margs, AutoTokenizer.from_pretrained(tok_dir)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1,
                                  fused=device == "cuda" or None)
    data = torch.tensor(blocks["input_ids"])
    model.train()
    start = None
    for step in range(steps + warmup):
        if step == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.time()
        idx = torch.randint(0, len(data), (args.batch,))
        batch = data[idx].to(device)
        with torch.autocast(device_type=device, dtype=dtype, enabled=dtype != torch.float32):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * args.batch * args.block / (time.time() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--hidden_size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--block", type=int, default=128)
    parser.add_argument("--torch_compile", action="store_true", help="also time pretrain.py with torch_compile: true")
    args = parser.parse_args()
    import torch
    from datasets import load_dataset
    from transformers import AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with tempfile.TemporaryDirectory() as tmp:
        tok_dir = os.path.join(tmp, "tok")
        tokenizer_stage.main(tokenizer_stage.TokenizerArguments(input_path=DOCS, output_dir=tok_dir, vocab_size=1500))
        tok = AutoTokenizer.from_pretrained(tok_dir)
        blocks = pack(load_dataset("json", data_files=DOCS, split="train"), tok, "text", args.block)
        bare = bare_loop(args, tok_dir, blocks, args.steps, args.warmup, device, dtype)
        rows, figures = [["bare PyTorch loop", round(bare), "-", "-"]], {"bare_tokens_per_second": bare}
        for compiled in [False, True] if args.torch_compile else [False]:
            t0 = time.time()
            margs, targs = load_recipe(
                pretrain.ARGUMENTS, os.path.join(REPO, "recipes", "tiny", "pretrain.yaml"),
                tokenizer_name_or_path=tok_dir, dataset_name=DOCS, hidden_size=args.hidden_size,
                intermediate_size=4 * args.hidden_size, num_hidden_layers=args.layers, block_size=args.block,
                output_dir=os.path.join(tmp, f"trainer{int(compiled)}"), max_steps=args.steps + args.warmup,
                per_device_train_batch_size=args.batch, logging_steps=args.warmup, save_strategy="no",
                torch_compile=compiled, dataloader_drop_last=True,  # a short last batch recompiles (dynamic shapes)
                bf16=device == "cuda", peak_tflops=989.0 if device == "cuda" else 1.0)
            report = pretrain.main(margs, targs)
            tps = report["tokens_per_second_steady"]
            warm_s = report["wall_time_s"] - args.steps * args.batch * args.block / tps
            name = "scripts/pretrain.py (Trainer" + (", torch_compile)" if compiled else ")")
            rows.append([name, round(tps), f"{tps / bare:.2f}x", f"{warm_s:.0f} s"])
            figures[f"trainer{'_compiled' if compiled else ''}_tokens_per_second"] = tps
            figures[f"mfu{'_compiled' if compiled else ''}"] = report.get("mfu_steady")
            print(f"{name}: {time.time() - t0:.0f} s in all")
    print(f"\ndevice {device}, model {report['parameters'] / 1e6:.2f}M parameters, batch {args.batch} x {args.block} "
          f"tokens, {args.steps} timed steps after {args.warmup} warm-up steps")
    print(markdown_table(["path", "tokens/s", "vs bare loop", "run time outside the timed steps"], rows))
    print(json.dumps({**figures, "flops_per_token": report.get("flops_per_token")}))


if __name__ == "__main__":
    main()
