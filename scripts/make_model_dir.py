"""Write a local Llama-style model directory (config + tokenizer) for vLLM's dummy weights.

    python scripts/make_model_dir.py tiny OUT_DIR
    python scripts/make_model_dir.py llama-3.1-8b OUT_DIR
    python scripts/make_model_dir.py llama-3.1-70b OUT_DIR

The tokenizer is built offline with the `tokenizers` library (a byte-level BPE trained on a
small generated corpus), so nothing is fetched from a hub. With `load_format="dummy"` vLLM
initialises the weights itself; only the shapes in config.json matter.

The vocabulary is laid out as Llama 3's: ordinary tokens from id 0, every id up to the model's
vocab_size a token that decodes to text, the special tokens last. Under emulate the sampler
never runs, so the ids a server streams are whatever its output buffer held (zeros, at first):
they must decode to text, since benchmark clients (SGLang's bench_serving) time the first token
at the first non-empty text (docs/serving.md).
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


SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")   # the last ids of the vocabulary, in this order


def special_ids(vocab_size: int) -> dict[str, int]:
    return {token: vocab_size - len(SPECIAL_TOKENS) + i for i, token in enumerate(SPECIAL_TOKENS)}


def write_config(name: str, out: Path) -> None:
    shape = CONFIGS[name]
    ids = special_ids(shape["vocab_size"])
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "bfloat16",
        "hidden_act": "silu", "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "attention_bias": False,
        "mlp_bias": False, "bos_token_id": ids["<s>"], "eos_token_id": ids["</s>"], "initializer_range": 0.02,
        **shape,
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "generation_config.json").write_text(json.dumps({"bos_token_id": ids["<s>"], "eos_token_id": ids["</s>"]}))


CHAT_TEMPLATE = ("{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant: {% endif %}")


def ascii_alphabet() -> list[str]:
    """The byte-level spellings of the 128 ASCII bytes (GPT-2's map: printable bytes stand for
    themselves, the others for 256 + their rank among the non-printable ones)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    others = [b for b in range(256) if b not in printable]
    return [chr(b) if b in printable else chr(256 + others.index(b)) for b in range(128)]


def write_tokenizer(vocab_size: int, out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    # ASCII bytes only: every token decodes to whole characters on its own (a lone byte of a
    # multi-byte character is held back by a streaming detokenizer)
    trainer = trainers.BpeTrainer(vocab_size=min(vocab_size, 2048), initial_alphabet=ascii_alphabet())
    words = ["the", "time", "warp", "kernel", "stream", "token", "model", "serve", "batch", "cache"]
    corpus = [" ".join(words[(i * 7 + j) % len(words)] for j in range(12)) for i in range(200)]
    tokenizer.train_from_iterator(corpus, trainer)
    # The corpus teaches a few hundred tokens: the rest of the vocabulary is filler words that
    # encoding never produces but decoding prints (ASCII is its own byte-level spelling).
    data = json.loads(tokenizer.to_str())
    vocab = data["model"]["vocab"]
    for token_id in range(len(vocab), vocab_size - len(SPECIAL_TOKENS)):
        vocab[f"w{token_id}"] = token_id
    tokenizer = Tokenizer.from_str(json.dumps(data))
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == list(special_ids(vocab_size).values())
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
