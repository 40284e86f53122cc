"""Write a local Llama-style model directory (config + tokenizer) for vLLM's dummy weights.

    python scripts/make_model_dir.py tiny OUT_DIR
    python scripts/make_model_dir.py llama-3.1-8b OUT_DIR
    python scripts/make_model_dir.py llama-3.1-70b OUT_DIR

The tokenizer is built offline with the `tokenizers` library (a byte-level BPE trained on a
small generated corpus), so nothing is fetched from a hub. With `load_format="dummy"` vLLM
initialises the weights itself; only the shapes in config.json matter.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CONFIGS: dict[str, dict] = {
    "tiny": {
        "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 2048, "max_position_embeddings": 2048,
        "rope_theta": 10000.0,
    },
    # Llama-3.1-8B's published shapes (the weights are vLLM's dummy initialisation).
    "llama-3.1-8b": {
        "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 128256, "max_position_embeddings": 131072,
        "rope_theta": 500000.0,
        "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    },
    # Llama-3.1-70B's published shapes.
    "llama-3.1-70b": {
        "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80, "num_attention_heads": 64,
        "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 128256, "max_position_embeddings": 131072,
        "rope_theta": 500000.0,
        "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    },
}


def write_config(name: str, out: Path) -> None:
    shape = CONFIGS[name]
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "bfloat16",
        "hidden_act": "silu", "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "attention_bias": False,
        "mlp_bias": False, "bos_token_id": 1, "eos_token_id": 2, "initializer_range": 0.02, **shape,
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}))


CHAT_TEMPLATE = ("{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant: {% endif %}")


def write_tokenizer(vocab_size: int, out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    # The trained vocabulary stays small; the model's vocab_size is what sizes the embedding.
    trainer = trainers.BpeTrainer(vocab_size=min(vocab_size, 2048), special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    words = ["the", "time", "warp", "kernel", "stream", "token", "model", "serve", "batch", "cache"]
    corpus = [" ".join(words[(i * 7 + j) % len(words)] for j in range(12)) for i in range(200)]
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "model_max_length": 131072, "clean_up_tokenization_spaces": False,
        # a plain role-prefixed template, as instruct models ship one: chat endpoints need it
        "chat_template": CHAT_TEMPLATE,
    }, indent=2))
    (out / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}))


def make_model_dir(name: str, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    write_config(name, out)
    write_tokenizer(CONFIGS[name]["vocab_size"], out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(CONFIGS))
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    print(make_model_dir(args.model, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
