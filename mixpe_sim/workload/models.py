"""Model shapes from HuggingFace `config.json` files (shipped under workloads/, never downloaded)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mixpe_sim.config.presets import data_root, looks_like_path
from mixpe_sim.config.textfile import parse_json, read_text
from mixpe_sim.errors import ConfigError

Family = Literal["llama", "opt", "paper-linear"]
# model_type values we know how to lower, and the block structure each one uses
SUPPORTED_TYPES: dict[str, Family] = {"llama": "llama", "mistral": "llama", "opt": "opt",
                                      "paper-linear": "paper-linear"}
MODEL_DIRS = ("models", "paper")
# Largest accepted model dimension: 2^31 is far above any real model and keeps products exact.
MAX_DIMENSION = 2**31


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    family: Family
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    gated_mlp: bool  # SwiGLU (gate and up projections) vs a plain two-layer FFN
    tied_embeddings: bool
    learned_positions: bool  # OPT adds a learned position embedding; LLaMA applies RoPE instead
    paper_rows: int = 0  # paper-linear workloads: the fixed GEMM row count M
    max_positions: int | None = None  # max_position_embeddings: longest context the model was built for

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim


def op_base_name(name: str) -> str:
    """Op names are "L<block>.<op>" inside blocks: "L12.qkv_proj" -> "qkv_proj"."""
    return name.split(".", 1)[1] if name.startswith("L") and "." in name else name


def model_files() -> dict[str, Path]:
    root = data_root() / "workloads"
    return {p.stem: p for d in MODEL_DIRS for p in sorted((root / d).glob("*.json"))}


def list_models() -> list[str]:
    return sorted(model_files())


def load_model(spec: str) -> ModelSpec:
    """A model preset name or a path to a HuggingFace-style config.json."""
    if looks_like_path(spec):
        path = Path(spec)
        if path.is_dir():
            raise ConfigError("--model", "", f"'{spec}' is a directory; expected a config.json file or a preset name")
        if not path.exists():
            raise ConfigError("--model", "", f"file '{spec}' does not exist")
    else:
        files = model_files()
        if spec not in files:
            raise ConfigError("--model", "", f"unknown model '{spec}' (allowed: {', '.join(sorted(files))})")
        path = files[spec]
    data = parse_json(read_text(path), str(path))
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "expected a JSON object")
    return parse_model(data, name=path.stem, source=str(path))


def parse_model(data: dict[str, Any], name: str, source: str) -> ModelSpec:
    model_type = data.get("model_type")
    family = SUPPORTED_TYPES.get(model_type) if isinstance(model_type, str) else None
    if family is None:
        raise ConfigError(source, "model_type",
                          f"unsupported model type {model_type!r} (allowed: {', '.join(SUPPORTED_TYPES)})")

    def need(key: str) -> int:
        if key not in data:
            raise ConfigError(source, key, f"required key is missing for model_type '{model_type}'")
        value = data[key]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_DIMENSION:
            raise ConfigError(source, key, f"must be a whole number in 1..{MAX_DIMENSION} (got {value!r})")
        return value

    hidden, layers = need("hidden_size"), need("num_hidden_layers")
    if family == "paper-linear":
        return ModelSpec(name=data.get("name", name), family=family, hidden=hidden, layers=layers,
                         heads=1, kv_heads=1, head_dim=hidden, intermediate=4 * hidden, vocab=0,
                         gated_mlp=False, tied_embeddings=False, learned_positions=False,
                         paper_rows=need("rows"))
    heads = need("num_attention_heads")
    kv_heads = need("num_key_value_heads") if "num_key_value_heads" in data else heads
    head_dim = need("head_dim") if data.get("head_dim") is not None else hidden // heads
    if data.get("head_dim") is None and hidden % heads:
        raise ConfigError(source, "num_attention_heads", f"does not divide hidden_size {hidden}")
    if heads * head_dim != hidden:
        raise ConfigError(source, "head_dim", f"num_attention_heads x head_dim = {heads} x {head_dim} must equal "
                          f"hidden_size ({hidden})")
    if kv_heads > heads or heads % kv_heads:
        raise ConfigError(source, "num_key_value_heads", f"must divide num_attention_heads ({heads})")
    if family == "opt":
        if data.get("word_embed_proj_dim", hidden) != hidden:
            raise ConfigError(source, "word_embed_proj_dim", "projected embeddings are not supported")
        intermediate, gated = need("ffn_dim"), False
    else:
        intermediate, gated = need("intermediate_size"), True
    # HF default: OPT ties the LM head to the embedding; LLaMA configs say so explicitly
    tied = data.get("tie_word_embeddings", family == "opt")
    if not isinstance(tied, bool):
        raise ConfigError(source, "tie_word_embeddings", f"must be true or false (got {tied!r})")
    max_positions = need("max_position_embeddings") if "max_position_embeddings" in data else None
    return ModelSpec(name=name, family=family, hidden=hidden, layers=layers, heads=heads,
                     kv_heads=kv_heads, head_dim=head_dim, intermediate=intermediate,
                     vocab=need("vocab_size"), gated_mlp=gated, tied_embeddings=tied,
                     learned_positions=family == "opt", max_positions=max_positions)


def check_context(model: ModelSpec, tokens: int, what: str, allow_longer: bool) -> None:
    """Refuse a prompt or context beyond the model's max_position_embeddings unless asked to allow it."""
    if model.max_positions is not None and tokens > model.max_positions and not allow_longer:
        raise ConfigError(what, "", f"{tokens} tokens exceed {model.name}'s max_position_embeddings "
                          f"({model.max_positions}); pass --allow-long-context to simulate it anyway")
