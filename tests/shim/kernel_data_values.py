"""Small CUDA tensors through the kernels the shim evaluates on the host (shim/src/kernel_data.c):
each case runs on the emulated GPU and on the CPU, and one `RESULT name gpu cpu` line per case
gives both values as lists (the test compares them). Buffers are reused from the caching
allocator, so a kernel that is not evaluated leaves stale values the test would see."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def cases() -> dict[str, Callable[[str], torch.Tensor]]:
    def t(values: list, dtype: torch.dtype, device: str) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype, device=device)

    long, f32 = torch.long, torch.float32
    return {
        # fills (FillFunctor), then additions on them
        "zeros_add_sum": lambda d: torch.zeros(4, device=d).add_(3).sum(),
        "full_long_sum": lambda d: torch.full((5,), 7, dtype=long, device=d).sum(),
        "ones_uint8": lambda d: torch.ones(6, dtype=torch.uint8, device=d),
        "fill_large": lambda d: t([9.0] * 70000, f32, d).fill_(2.5),
        # additions with a scalar on either side, and between tensors (sub: alpha negated)
        "sub_scalar": lambda d: t([1, 5, 3], long, d) - 1,
        "rsub_scalar": lambda d: 1 - t([1, 5, 3], long, d),
        "add_alpha": lambda d: t([1, 5, 3], long, d).add(t([2, 2, 2], long, d), alpha=3),
        "add_float": lambda d: t([1.5, 2.25, -1.0], f32, d) + t([0.5, 0.75, 4.0], f32, d),
        "add_bfloat16": lambda d: t([1.5, 2.25, -1.0], torch.bfloat16, d) + 1,
        "add_half_tensor": lambda d: t([1.5, 2.25, 1000.0], torch.half, d) + t([0.125, 1.0, 0.5], torch.half, d),
        "wrap_uint8": lambda d: t([250, 3], torch.uint8, d) + 10,
        "wrap_int32": lambda d: t([2**31 - 1], torch.int32, d) + 1,
        # products and quotients (Loops.cuh wrappers around MulFunctor / DivFunctor)
        "mul_scalar": lambda d: t([1, 5, 3], long, d) * 2,
        "mul_tensor": lambda d: t([1, 5, 3], long, d) * t([4, -2, 3], long, d),
        "mul_float": lambda d: t([1.5, 2.5, -1.0], f32, d) * 0.5,
        "div_float_scalar": lambda d: t([1.5, 2.5, -1.0], f32, d) / 2,
        "div_float_tensor": lambda d: t([1.0, 2.5, -1.0], f32, d) / t([3.0, 0.5, 7.0], f32, d),
        # comparisons, with a scalar on either side
        "eq_scalar": lambda d: t([1, 5, 3], long, d) == 5,
        "ne_scalar": lambda d: t([1, 5, 3], long, d) != 5,
        "eq_tensor": lambda d: t([1, 5, 3], long, d) == t([1, 4, 3], long, d),
        "lt_scalar": lambda d: t([1, 5, 3], long, d) < 4,
        "reflected_gt": lambda d: 4 > t([1, 5, 3], long, d),
        "ge_scalar": lambda d: t([1, 5, 3], long, d) >= 3,
        "le_tensor": lambda d: t([1, 5, 3], long, d) <= t([2, 5, 1], long, d),
        "gt_float_nan": lambda d: t([1.0, math.nan, 3.0], f32, d) > t([0.5, 1.0, 3.0], f32, d),
        # concatenation: 1-D, along an inner dimension, stacked (pieces of 8 bytes: the element-wise
        # variants)
        "cat_long": lambda d: torch.cat([t([5], long, d), t([7], long, d), t([11], long, d)]),
        "cat_dim1": lambda d: torch.cat([t([[1, 2, 3], [4, 5, 6]], long, d), t([[7, 8], [9, 10]], long, d)], dim=1),
        "stack": lambda d: torch.stack([t([1.0, 2.0], f32, d), t([3.0, 4.0], f32, d)]),
        # a strided input (a transposed view): the variant that reads each input's sizes and strides
        "cat_strided": lambda d: torch.cat([t([[1, 2], [3, 4]], long, d).t(), t([[5, 6]], long, d)]),
        # pieces of whole 16-byte units, 16-byte aligned: the _vectorized variant
        "cat_units": lambda d: torch.cat([t([1.0, 2.0, 3.0, 4.0], f32, d), t([5.0, 6.0, 7.0, 8.0], f32, d)]),
        "cat_units_dim1": lambda d: torch.cat([t([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]], f32, d),
                                               t([[9.0, 10.0, 11.0, 12.0], [13.0, 14.0, 15.0, 16.0]], f32, d)], dim=1),
        "cat_units_bytes": lambda d: torch.cat([t(list(range(16)), torch.uint8, d),
                                                t(list(range(100, 132)), torch.uint8, d)]),
        "cat_units_half": lambda d: torch.cat([t([0.5 * i for i in range(8)], torch.half, d),
                                               t([-0.25 * i for i in range(8)], torch.half, d)]),
        # reductions
        "sum_long": lambda d: torch.sum(torch.cat([t([5], long, d), t([7], long, d)])),
        "sum_half": lambda d: t([1.5, 2.25, -1.0, 8.0], torch.half, d).sum(),
        "sum_rows": lambda d: t([[1, 2, 3], [4, 5, 6]], long, d).sum(dim=1),
        "sum_cols": lambda d: t([[1, 2, 3], [4, 5, 6]], long, d).sum(dim=0),
        "max_long": lambda d: torch.max(t([3, 9, -2], long, d)),
        "min_long": lambda d: torch.min(t([3, 9, -2], long, d)),
        "max_float_nan": lambda d: t([1.0, math.nan, 3.0], f32, d).max(),
        "any": lambda d: (t([0, 0, 3], long, d) > 2).any(),
        "all": lambda d: (t([0, 0, 3], long, d) >= 0).all(),
        # argmax and argmin: the first index among equals, a NaN wins; along either dimension
        "argmax_ties": lambda d: t([3.0, 9.0, -2.0, 9.0], f32, d).argmax(),
        "argmin_long": lambda d: t([3, 9, -2, -2], long, d).argmin(),
        "argmax_nan": lambda d: t([1.0, math.nan, 3.0], f32, d).argmax(),
        "argmax_rows_bf16": lambda d: t([[1, 7, 7], [8, 0, 2]], torch.bfloat16, d).argmax(dim=-1),
        "argmin_cols": lambda d: t([[1.0, 7.0, 7.0], [0.5, 9.0, 2.0]], f32, d).argmin(dim=0),
        # casting copies (`.to`): integers wrap, floating to integer truncates toward zero
        "cast_long_int": lambda d: t([5, -7, 2**33 + 3], long, d).to(torch.int32),
        "cast_float_long": lambda d: t([-1.75, 2.9, 1e6], f32, d).to(long),
        "cast_int_float": lambda d: t([3, -4, 2**24 + 1], torch.int32, d).to(f32),
        "cast_float_half": lambda d: t([1.0 / 3, 65504.0, -2.5e-8], f32, d).to(torch.half),
        "cast_bf16_float": lambda d: t([1.5, -0.0078125, 3e38], torch.bfloat16, d).to(f32),
        "cast_float_bool": lambda d: t([0.0, 0.5, -2.0], f32, d).to(torch.bool),
        "cast_bool_long": lambda d: t([True, False, True], torch.bool, d).to(long),
    }


def object_sizes(device: str) -> list[int]:
    """What torch.distributed's object collectives do with their size tensors: the largest of
    a list by Python's max (comparisons read back as bools), and running offsets (`+=`)."""
    sizes = [torch.tensor([v], dtype=torch.long, device=device) for v in (31, 57, 44)]
    largest = int(max(sizes).item())
    offset: int | torch.Tensor = 0
    offsets = []
    for size in torch.cat(sizes):
        offset += size
        offsets.append(int(offset))
    return [largest, *offsets]


def values(x: torch.Tensor) -> list:
    """The elements, or for a large tensor its size and distinct values (read on the host: a
    strided view on the GPU would copy through a kernel that is not evaluated)."""
    return x.tolist() if x.numel() <= 64 else [x.numel(), x.unique().tolist()]


def main() -> None:
    for name, make in cases().items():
        gpu, cpu = make("cuda").cpu(), make("cpu")
        print(f"RESULT {name} {values(gpu)} {values(cpu)}".replace(", ", ","))
    print(f"RESULT object_sizes {object_sizes('cuda')} {object_sizes('cpu')}".replace(", ", ","))
    print(f"RESULT item {torch.zeros(4, device='cuda').add_(3).sum().item()} 12.0")
    print(f"RESULT sampled {sampled_ids()} in-vocabulary".replace(", ", ","))


def sampled_ids() -> list[int]:
    """A server's sampler: one draw per row from [8, 32000] probabilities (torch.multinomial: an
    argmax over 256,000 elements, more than the shim ranks on the host) cast to int32, after the
    caching allocator handed the ids' block to an earlier tensor of 10**9 values."""
    stale = torch.full((64,), 10**9, dtype=torch.long, device="cuda")
    del stale
    logits = torch.randn(8, 64, device="cuda") @ torch.randn(64, 32000, device="cuda")
    return torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1).view(-1).to(torch.int32).tolist()


if __name__ == "__main__":
    main()
