"""2:4 semi-structured sparsity through cuSPARSELt (torch's default on a GPU that has it): a
pruned fp16 weight compressed with to_sparse_semi_structured, then multiplied by a dense
activation. Prints RESULT lines with the shapes."""

from __future__ import annotations

import torch
from torch.sparse import SparseSemiStructuredTensor, to_sparse_semi_structured

M, K, N = 4096, 4096, 2048


def main() -> None:
    assert torch.backends.cusparselt.is_available()
    SparseSemiStructuredTensor._FORCE_CUTLASS = False  # the default; stated for the reader
    weight = torch.tensor([0, 0, 1, 1], dtype=torch.float16).tile((M, K // 4)).cuda()  # 2:4 pattern
    sparse = to_sparse_semi_structured(weight)
    x = torch.randn(K, N, dtype=torch.float16, device="cuda")
    y = torch.mm(sparse, x)
    torch.cuda.synchronize()
    print(f"RESULT kind={type(sparse).__name__} out_shape={'x'.join(map(str, y.shape))}")
    print("RESULT done=1")


if __name__ == "__main__":
    main()
