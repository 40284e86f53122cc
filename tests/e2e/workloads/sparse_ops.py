"""torch.sparse on CUDA (cuSPARSE): a CSR matrix times a dense one (SpMM), a CSR matrix-vector
product (SpMV), and a coalesced COO matrix times a dense one (coo2csr, then SpMM). The sparse
matrices are built on the host and copied over, so their non-zero counts are known (a count a
GPU kernel would compute does not exist under emulation). Prints RESULT lines."""

from __future__ import annotations

import torch

M, K, N, NNZ = 4096, 4096, 256, 167_772


def main() -> None:
    gen = torch.Generator().manual_seed(0)
    flat = torch.randperm(M * K, generator=gen)[:NNZ].sort().values
    rows, cols = flat // K, flat % K
    values = torch.randn(NNZ, generator=gen)
    coo_host = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (M, K)).coalesce()
    csr = coo_host.to_sparse_csr().cuda()
    coo = coo_host.cuda()
    b = torch.randn(K, N, device="cuda")
    out = torch.sparse.mm(csr, b)
    vec = torch.mv(csr, torch.randn(K, device="cuda"))
    out2 = torch.sparse.mm(coo, b)
    torch.cuda.synchronize()
    print(f"RESULT nnz={csr._nnz()} spmm_shape={'x'.join(map(str, out.shape))} "
          f"spmv_shape={'x'.join(map(str, vec.shape))} coo_shape={'x'.join(map(str, out2.shape))}")
    print("RESULT done=1")


if __name__ == "__main__":
    main()
