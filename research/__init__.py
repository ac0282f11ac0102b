"""Research tools run as recipe stages or by hand: verdicts from seeds, sweeps, scaling-law fits, the EOS and
context-recall probes, and the generated results tables (docs/research.md). Installed as llm_recipes.research."""
