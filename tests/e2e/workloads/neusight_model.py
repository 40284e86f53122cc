"""One of NeuSight's end-to-end models (../shared/data/neusight: its label JSONs), unmodified
Hugging Face transformers in fp32 with eager attention, as NeuSight ran them: inference is one
forward under no_grad, training one forward and loss.backward() (no optimizer step); each timed
with CUDA events, the mean of the 5 fastest of --iterations (NeuSight: of 25). The model is built
on the device directly (its fp32 weights never exist on the host). Each iteration also prints
the (virtual) host times around it, so that the GPU time of its ops can be summed from the run's
records whatever the host's speed.

    python neusight_model.py MODEL MODE SEQ BATCH [--layers N]

MODEL: bert_large, gpt2_large, gpt3_xl, gpt3_27, opt_13 (configurations read off NeuSight's
per-operator traces: hidden sizes, heads, layers). Prints RESULT lines.
"""

from __future__ import annotations

import argparse
import time

import torch

CONFIGS = {
    "bert_large": ("bert", dict(hidden_size=1024, num_attention_heads=16, intermediate_size=4096, vocab_size=30522,
                                max_position_embeddings=512), 24),
    "gpt2_large": ("gpt2", dict(n_embd=1280, n_head=20, vocab_size=50257, n_positions=1024), 36),
    "gpt3_xl": ("gpt2", dict(n_embd=3072, n_head=24, vocab_size=50257, n_positions=2048), 24),
    "gpt3_27": ("gpt2", dict(n_embd=2560, n_head=32, vocab_size=50257, n_positions=2048), 32),
    "opt_13": ("opt", dict(hidden_size=2048, num_attention_heads=32, ffn_dim=8192, vocab_size=50272,
                           max_position_embeddings=2048, word_embed_proj_dim=2048), 24),
}


def build(model: str, layers: int) -> torch.nn.Module:
    import transformers

    family, fields, default_layers = CONFIGS[model]
    layers = layers or default_layers
    if family == "bert":
        config = transformers.BertConfig(num_hidden_layers=layers, **fields)
        cls = transformers.BertForPreTraining
    elif family == "gpt2":
        config = transformers.GPT2Config(n_layer=layers, **fields)
        cls = transformers.GPT2LMHeadModel
    else:
        config = transformers.OPTConfig(num_hidden_layers=layers, **fields)
        cls = transformers.OPTForCausalLM
    config._attn_implementation = "eager"  # NeuSight's traces: HF eager attention, no SDPA kernels
    with torch.device("cuda"):
        return cls(config)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=sorted(CONFIGS))
    ap.add_argument("mode", choices=("inf", "train"))
    ap.add_argument("seq", type=int)
    ap.add_argument("batch", type=int)
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--iterations", type=int, default=8)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False  # NeuSight: fp32 GEMMs (SIMT), TF32 off
    torch.backends.cudnn.allow_tf32 = False
    model = build(args.model, args.layers)
    vocab = model.config.vocab_size
    tokens = torch.randint(0, vocab, (args.batch, args.seq), device="cuda")
    times = []
    for i in range(args.iterations):
        issued_ns = time.monotonic_ns()  # virtual under emulate: the ops issued from here on are this iteration's
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if args.mode == "inf":
            model.eval()
            with torch.no_grad():
                start.record()
                model(input_ids=tokens)
                end.record()
        else:
            model.train()
            start.record()
            if args.model == "bert_large":
                out = model(input_ids=tokens, labels=tokens, next_sentence_label=tokens[:, 0] % 2)
            else:
                out = model(input_ids=tokens, labels=tokens)
            out.loss.backward()
            end.record()
            model.zero_grad(set_to_none=True)
        end.synchronize()
        times.append(start.elapsed_time(end))
        print(f"RESULT iteration={i} issue_begin_ns={issued_ns} issue_end_ns={time.monotonic_ns()} "
              f"elapsed_ms={times[-1]:.6f}", flush=True)
    fastest = sorted(times)[:min(5, len(times))]
    print(f"RESULT model={args.model} mode={args.mode} seq={args.seq} batch={args.batch} "
          f"e2e_ms={sum(fastest) / len(fastest):.6f}")
    print("RESULT done=1")


if __name__ == "__main__":
    main()
