"""A from-scratch tiled matmul in Triton (timed on CUDA only; imported only when the `triton` impl runs).

Each program computes one BLOCK_M x BLOCK_N tile of C, walking K in BLOCK_K steps with
fp32 accumulation (`tl.dot`). Programs are ordered in groups of GROUP_M tile rows, so
tiles that share rows of A and columns of B run close together in time and hit L2
(the "grouped ordering" of Triton's matmul tutorial). float32 inputs are multiplied in
IEEE fp32, not TF32, so the result is checked at float32's tolerance. Autotuning over a
few Hopper-sized configurations happens on the first call for a shape: fnd keeps that
out of the timings (compile time is reported apart). On CPU tensors, Triton's interpreter runs
`launch` with each configuration in turn, for correctness only (tests/test_triton_interp.py).
"""

import torch
import triton
import triton.language as tl

from fndcli.names import IMPL_SPECS

_CONFIGS = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 256, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=4, num_warps=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=5, num_warps=2),
]


@triton.jit
def _tile(pid, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """Program `pid`'s output tile (pid_m, pid_n), in grouped order: GROUP_M tile rows are swept column
    by column before moving on; the last group holds the rows left over."""
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    pids_per_group = GROUP_M * num_pid_n
    group = pid // pids_per_group
    first_m = group * GROUP_M
    group_rows = min(num_pid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % pids_per_group) % group_rows
    pid_n = (pid % pids_per_group) // group_rows
    return pid_m, pid_n


@triton.autotune(configs=_CONFIGS, key=["M", "N", "K", "IEEE"])
@triton.jit
def _matmul_kernel(
    a_ptr,
    b_ptr,
    c_ptr,
    M,
    N,
    K,
    stride_am,
    stride_ak,
    stride_bk,
    stride_bn,
    stride_cm,
    stride_cn,
    IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
):
    pid_m, pid_n = _tile(tl.program_id(axis=0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K)
    a_tile = a_ptr + rows[:, None] * stride_am + ks[None, :] * stride_ak  # (BLOCK_M, BLOCK_K) pointers
    b_tile = b_ptr + ks[:, None] * stride_bk + cols[None, :] * stride_bn  # (BLOCK_K, BLOCK_N) pointers
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for step in range(0, tl.cdiv(K, BLOCK_K)):
        k_left = K - step * BLOCK_K
        a = tl.load(a_tile, mask=(rows[:, None] < M) & (ks[None, :] < k_left), other=0.0)
        b = tl.load(b_tile, mask=(ks[:, None] < k_left) & (cols[None, :] < N), other=0.0)
        if IEEE:
            acc = tl.dot(a, b, acc, input_precision="ieee")
        else:
            acc = tl.dot(a, b, acc)
        a_tile += BLOCK_K * stride_ak
        b_tile += BLOCK_K * stride_bk
    c = c_ptr + rows[:, None] * stride_cm + cols[None, :] * stride_cn
    tl.store(c, acc.to(c_ptr.dtype.element_ty), mask=(rows[:, None] < M) & (cols[None, :] < N))


def matmul(a, b):
    """c = a @ b on the GPU; a (M, K), b (K, N), both CUDA tensors of one dtype."""
    if not (a.is_cuda and b.is_cuda):
        raise ValueError(f"the triton kernel runs only on CUDA tensors ({IMPL_SPECS['triton'].elsewhere})")
    c = torch.empty((a.shape[0], b.shape[1]), device=a.device, dtype=a.dtype)
    launch(a, b, c)
    return c


def launch(a, b, c, config=None):
    """c[:] = a @ b through any strides: autotuned over _CONFIGS, or with one `config` through the JIT
    function itself, as tests/test_triton_interp.py runs each config on CPU tensors under Triton's
    interpreter (the autotuner needs a GPU to time its configs)."""
    M, K = a.shape
    N = b.shape[1]

    def grid(meta):
        return (triton.cdiv(M, meta["BLOCK_M"]) * triton.cdiv(N, meta["BLOCK_N"]),)

    kernel, meta = (_matmul_kernel, {}) if config is None else (_matmul_kernel.fn, config.all_kwargs())
    kernel[grid](
        a,
        b,
        c,
        M,
        N,
        K,
        a.stride(0),
        a.stride(1),
        b.stride(0),
        b.stride(1),
        c.stride(0),
        c.stride(1),
        IEEE=a.dtype == torch.float32,
        **meta,
    )
