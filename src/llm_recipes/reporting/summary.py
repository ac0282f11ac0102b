"""One line of figures per stage report, for the recipe summary table."""


def _f(x, digits=3):
    return "-" if x is None else f"{x:.{digits}g}"


def summarize_stage(r):
    stage = r.get("stage")
    if stage == "corpus":
        removed = ", ".join(f"{k} {v}" for k, v in r["removed"].items() if v)
        masked = ", ".join(f"{k} {v}" for k, v in r["masked"].items() if v)
        return f"read {r['read']} → kept {r['kept']}; removed: {removed or 'none'}; PII masked in: {masked or 'none'}"
    if stage == "tokenizer" and "sweep" in r:
        return "vocab sweep, ja chars/token: " + ", ".join(
            f"{size}: {m['chars_per_token'].get('ja', '-')}" for size, m in r["sweep"].items())
    if stage == "tokenizer":
        cpt = ", ".join(f"{k} {v}" for k, v in r["chars_per_token"].items())
        return f"vocab {r['vocab_size']}; chars/token: {cpt}; round-trip exact {r['round_trip_exact']:.0%}"
    if stage == "pretrain":
        return (f"{r['parameters'] / 1e6:.2f}M params, {r['steps']} steps; loss {_f(r.get('loss_first'))} → "
                f"{_f(r.get('loss_last'))}; eval loss {_f(r['eval_loss'])}" + (
                    f"; loss on {r['selected_token_fraction']:.0%} of tokens (Rho-1)"
                    if r.get("selected_token_fraction") is not None else ""))
    if stage == "import":
        return (f"{r['parameters'] / 1e6:.1f}M params ({r['num_hidden_layers']} layers x {r['hidden_size']}), "
                f"{r['format']}; max |logit difference| {r['max_logit_difference']:.2g}; EOS {r['eos_token']}")
    if stage == "expand_vocab":
        return (f"vocab {r['old_vocab_size']} → {r['new_vocab_size']} (+{r['new_tokens']}, {r['merges_added']} merges); "
                f"ja chars/token {r['ja_chars_per_token_before']:.3f} → {r['ja_chars_per_token_after']:.3f}"
                + (f"; English ids unchanged {r['en_ids_unchanged']}, loss change {r['en_loss_change']:+.2%}"
                   if "en_loss_change" in r else ""))
    if stage == "audit":
        return "; ".join(f"{label}: {t['whole_cjk_ideographs']} whole kanji, {t['ja_chars_per_token']:.3f} ja chars/token, "
                         f"{t['ja_japanese_chars_byte_fallback']:.0%} of Japanese characters in bytes"
                         for label, t in r["tokenizers"].items())
    if stage == "quality_classifier":
        return (f"held-out at P({r['label']}) >= {r['threshold']}: precision {_f(r['precision'])}, recall "
                f"{_f(r['recall'])}, ROC AUC {_f(r['roc_auc'])}")
    if stage == "semdedup":
        return (f"read {r['read']} → kept {r['kept']}; removed at epsilon {r['epsilon']}: {r['removed']['semdedup']}; "
                "per epsilon: " + ", ".join(f"{e}: {n}" for e, n in r["removed_by_epsilon"].items()))
    if stage == "self_instruct":
        return (f"{r['tasks_generated']} tasks generated in {len(r['rounds'])} rounds, {r['tasks_kept']} kept, "
                f"{r['sft_records']} SFT records")
    if stage == "verdict":
        return "; ".join(f"{v['better']} vs {v['worse']} on {v['metric']}"
                         + (f" (margin {_f(v['margin'])})" if v.get("margin") else "") + f": {v['verdict']} (difference "
                         f"{_f(v['mean_difference'])} [{_f(v['low'])}, {_f(v['high'])}])" for v in r["verdicts"])
    if stage == "reward":
        return (f"{r['steps']} steps on {r['pairs']} pairs; loss {_f(r.get('loss_first'))} → {_f(r.get('loss_last'))}"
                + (f"; held-out pairwise accuracy {_f(r.get('heldout_accuracy_before'))} → "
                   f"{_f(r['heldout_accuracy'])} of {r['eval_pairs']}" if "heldout_accuracy" in r else ""))
    if stage == "rl":
        return (f"{r['steps']} steps (RLOO, beta {r['beta']}); KL at step 0 {_f(r['kl_step0'])}; train reward "
                f"{_f(r['reward_first'])} → {_f(r['reward_last'])}" + (
                    f"; held-out reward {_f(r['heldout_reward_before'])} → {_f(r['heldout_reward_after'])}, KL "
                    f"{_f(r['heldout_kl_before'])} → {_f(r['heldout_kl_after'])}" if "eval_prompts" in r else ""))
    if stage == "rso":
        return (f"{r['prompts']} prompts x {r['num_candidates']} samples ({r['distinct']} distinct) → {r['accepted']} "
                f"accepted ({'beta ' + str(r['beta']) if r.get('rejection_sampling', True) else 'no rejection'}) → "
                f"{r['pairs']} pairs; mean reward {_f(r['mean_reward_candidates'])} "
                f"(all) vs {_f(r['mean_reward_accepted'])} (accepted)")
    gen = (f"; stops at EOS {r['stops_at_eos']:.0%} of {r['generation_prompts']} held-out prompts"
           if "stops_at_eos" in r else "")
    if stage == "sft":
        return f"{r['steps']} steps; loss {_f(r.get('loss_first'))} → {_f(r.get('loss_last'))}{gen}"
    if stage == "dpo":
        return (f"{r['steps']} steps ({r['loss_type']}, beta {r['beta']}); reward accuracy "
                f"{_f(r['reward_accuracy'])}, margin {_f(r['reward_margin'])}{gen}")
    if stage == "evaluate":
        parts = []
        for model, tasks in r["scores"].items():
            for task, s in tasks.items():
                if not isinstance(s, dict):  # the checkpoint step
                    continue
                verdict = ""
                if s.get("chance") is not None:
                    verdict = f" vs chance {s['chance']:.0%} ({'above' if s['above_chance'] else 'NOT above'} chance, " \
                              f"p={s['p_value']:.2g})"
                value = f"{s['score']:.3g}" if s["metric"] in ("bleu", "chrf", "bits_per_char") else f"{s['score']:.1%}"
                parts.append(f"{model} {task}: {s['metric']} {value} of {s['n']}{verdict}")
        parts += [f"best on {task}: {model}" for task, model in (r.get("best") or {}).items()]
        return "; ".join(parts)
    return ", ".join(f"{k} {v}" for k, v in r.items() if isinstance(v, (int, float)))


def summary_table(reports):
    """{stage name: report} -> the markdown summary table run_recipe prints (stage, result)."""
    from llm_recipes.reporting.report import markdown_table

    return markdown_table(["stage", "result"], [[name, summarize_stage(r)] for name, r in reports.items()])
