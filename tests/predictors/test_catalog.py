"""The GPU catalog: every required part, complete and cited, and helpful errors."""

from __future__ import annotations

import dataclasses

import pytest

from predictors.catalog import SPEC_ENV_KEYS, UnknownGpuError, get_spec, list_specs, spec_env_text

REQUIRED = ("a100-80g", "h100", "h200", "b200", "l40s", "l4")


@pytest.mark.parametrize("key", REQUIRED)
def test_required_specs_are_complete_and_cited(key: str) -> None:
    spec = get_spec(key)
    for f in dataclasses.fields(spec):
        if f.name == "sources":
            continue
        value = getattr(spec, f.name)
        if f.name in ("cc_minor", "nvlink_links", "nvlink_bytes_per_s", "peak_fp8_flops"):
            assert value >= 0
        else:
            assert value, f"{key}.{f.name} is empty"
        assert f.name in spec.sources or f.name == "key", f"{key}.{f.name} has no source"
    assert spec.peak_fp16_flops > spec.peak_fp32_flops  # tensor cores beat CUDA cores
    assert spec.smem_per_block_optin_bytes <= spec.smem_per_sm_bytes


def test_aliases_and_case() -> None:
    assert get_spec("H100-SXM").key == "h100"
    assert get_spec("a100").key == "a100-80g"
    assert {s.key for s in list_specs()} >= set(REQUIRED)


def test_unknown_key_lists_known_keys() -> None:
    with pytest.raises(UnknownGpuError) as info:
        get_spec("rtx9090")
    for key in REQUIRED:
        assert key in str(info.value)
    assert isinstance(info.value, ValueError)


def test_spec_env_has_every_documented_key_once() -> None:
    text = spec_env_text(get_spec("h100"), 4)
    pairs = dict(line.split("=", 1) for line in text.splitlines())
    assert list(pairs) == [*SPEC_ENV_KEYS, "device_count"]
    assert pairs["device_count"] == "4"
    assert pairs["sm_count"] == "132"
    assert int(pairs["hbm_bytes_per_s"]) == 3_350_000_000_000
    assert pairs["name"] == "NVIDIA H100 80GB HBM3"


def test_spec_env_keys_match_tw_gpu_spec() -> None:
    """The names the shim's C parser reads: tw_gpu_spec's fields (tw_core.h)."""
    import re
    from pathlib import Path

    header = (Path(__file__).resolve().parents[2] / "shim" / "src" / "tw_core.h").read_text()
    body = header[header.index("typedef struct tw_gpu_spec"):]
    body = body[:body.index("} tw_gpu_spec;")]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    names: list[str] = []
    for decl in body.split(";"):
        decl = re.sub(r"\[\d+\]", "", decl).strip()
        if "{" in decl:
            decl = decl.split("{", 1)[1]
        parts = decl.replace(",", " , ").split()
        if not parts:
            continue
        names.extend(p for p in parts[1:] if p != ",")
    assert names == list(SPEC_ENV_KEYS)
