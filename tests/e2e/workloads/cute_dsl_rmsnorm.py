"""FlashInfer's RMSNorm through its CuTe-DSL backend (nvidia-cutlass-dsl), the kernel SGLang's
default path runs first in every layer (sgl_kernel.rmsnorm -> flashinfer.norm.rmsnorm_cute).
The CuTe-DSL runtime carries a statically linked CUDA runtime, which asks the driver for its
private export tables (cuGetExportTable) before its first launch.

    python cute_dsl_rmsnorm.py   -> prints `RESULT shape=4x256` on success
"""

import torch
from flashinfer.norm import rmsnorm

x = torch.randn(4, 256, device="cuda", dtype=torch.bfloat16)
w = torch.ones(256, device="cuda", dtype=torch.bfloat16)
out = rmsnorm(x, w, 1e-5)
torch.cuda.synchronize()
print(f"RESULT shape={'x'.join(map(str, out.shape))}", flush=True)
