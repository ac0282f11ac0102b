"""A model card (README.md with the hub's YAML metadata, written with huggingface_hub's ModelCard) in every saved
model directory, so a pushed or copied model explains itself: recipe, base model, data, the resolved options,
metrics and licence (as alignment-handbook's scripts do with Trainer.create_model_card)."""

import dataclasses
import json
import os

import yaml

SECRET_KEYS = {"hub_token", "push_to_hub_token"}


def resolved_options(*configs):
    """Every option of the stage's dataclasses, secrets left out (JSON-safe values)."""
    options = {}
    for config in configs:
        for f in dataclasses.fields(config):
            if f.init and f.name not in SECRET_KEYS:
                options[f.name] = getattr(config, f.name)
    return json.loads(json.dumps(options, default=str))


def write_model_card(output_dir, stage, metrics, configs=(), base_model=None, datasets=(), license="apache-2.0",
                     language=("ja", "en"), description=None):
    """Write output_dir/README.md. The recipe is the one run_recipe / sweep launched (LLM_RECIPE), else the script."""
    from huggingface_hub import ModelCard, ModelCardData

    recipe = os.environ.get("LLM_RECIPE") or f"scripts/{stage}.py (run by hand)"
    datasets = [d for d in datasets if d]
    data = ModelCardData(language=list(language), license=license, library_name="transformers",
                         base_model=base_model if base_model and not os.path.isdir(str(base_model)) else None,
                         tags=["llm-recipes", stage], datasets=[d for d in datasets if not os.path.exists(d)] or None)
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool)) and v is not None}
    rows = "\n".join(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in shown.items())
    options = yaml.safe_dump(resolved_options(*configs), allow_unicode=True, sort_keys=True) if configs else ""
    content = f"""---
{data.to_yaml()}
---

# {os.path.basename(os.path.abspath(output_dir))}

{description or f"Trained by the `{stage}` stage of the LLM recipes repository."}

- **Recipe:** {recipe}
- **Base model:** {base_model or "none (trained from scratch)"}
- **Data:** {", ".join(map(str, datasets)) or "-"}
- **Licence:** {license} (check the licences of the base model and the data before release)

## Metrics

| metric | value |
|---|---|
{rows}

## Resolved options

```yaml
{options}```
"""
    card = ModelCard(content)
    card.save(os.path.join(output_dir, "README.md"))
    return card
