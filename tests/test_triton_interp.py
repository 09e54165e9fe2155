"""fnd's Triton kernel on the CPU, under Triton's interpreter, against float64 a @ b (issue 23).

The interpreter (TRITON_INTERPRET=1) runs @triton.jit functions on CPU tensors with numpy: slow, but
exact about indexing, masks and tile order. It has to be on before triton is imported (triton's own jit
functions, tl.cdiv among them, are built then), and then it is on for everything that process runs
later; so the kernel runs in one spawned child process born with the variable set, and these tests
send it their inputs and compare what comes back here. What only a GPU can tell (speed, autotuning,
bfloat16) is left to tests/test_gpu.py; IEEE against TF32 is read in the PTX (tests/test_triton_compiles.py).
"""

import math
import multiprocessing
import os

import pytest
import torch

triton = pytest.importorskip(
    "triton", reason="triton is not installed (pip install -e '.[test]' installs it)"
)
import triton.language as tl

from fndcli.kernels import triton_kernel
from fndcli.numerics import relative

pytestmark = pytest.mark.xdist_group("triton-interpreter")  # one worker, so one child process
CONFIGS = triton_kernel._CONFIGS
SMALLEST = min(CONFIGS, key=lambda c: c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"] * c.kwargs["BLOCK_K"]).kwargs
# float32: fp32 sums (1.4e-7 seen at 5x784x10); float16: fp32 sums rounded to float16 (eps 1e-3) at the end
TOLERANCES = {torch.float32: 1e-6, torch.float16: 1e-3}
CHILD_SECONDS = 120  # a child that died (a kernel writing out of bounds) fails a test instead of hanging it


@pytest.fixture(scope="module")
def interpreter():
    """A pool of one spawned process that had TRITON_INTERPRET=1 from its start (the variable is set
    here only while the pool starts it)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TRITON_INTERPRET", "1")
        pool = multiprocessing.get_context("spawn").Pool(1)
    with pool:
        yield pool


def _interpreted_matmul(a, b, meta):
    """In the child: a @ b by the kernel with the config `meta`, written into a c full of NaN, so a tile
    that no program writes stays NaN."""
    assert os.environ.get("TRITON_INTERPRET") == "1"
    c = torch.full((a.shape[0], b.shape[1]), math.nan, dtype=a.dtype)  # (M, N)
    triton_kernel.launch(a, b, c, triton.Config(meta))
    return c


@triton.jit
def _tile_probe(pids_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """Each program writes its pid into its tile's cell of a (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N)) grid,
    through the kernel's own tile map."""
    pid = tl.program_id(axis=0)
    pid_m, pid_n = triton_kernel._tile(pid, M, N, BLOCK_M, BLOCK_N, GROUP_M)
    tiles_m, tiles_n = tl.cdiv(M, BLOCK_M), tl.cdiv(N, BLOCK_N)
    tl.store(pids_ptr + pid_m * tiles_n + pid_n, pid, mask=(pid_m < tiles_m) & (pid_n < tiles_n))


def _interpreted_tile_map(M, N, meta):
    """In the child: the grid of which pid computed each output tile, -1 where none did."""
    assert os.environ.get("TRITON_INTERPRET") == "1"
    tiles_m, tiles_n = triton.cdiv(M, meta["BLOCK_M"]), triton.cdiv(N, meta["BLOCK_N"])
    pids = torch.full((tiles_m, tiles_n), -1, dtype=torch.int32)
    _tile_probe[(tiles_m * tiles_n,)](pids, M, N, meta["BLOCK_M"], meta["BLOCK_N"], meta["GROUP_M"])
    return pids


def assert_matches_float64(interpreter, a, b, meta):
    c = interpreter.apply_async(_interpreted_matmul, (a, b, meta)).get(CHILD_SECONDS)
    assert c.shape == (a.shape[0], b.shape[1]) and c.dtype == a.dtype
    ref = a.double() @ b.double()
    rel = relative((c.double() - ref).norm().item(), ref.norm().item())  # inf if a tile was left NaN
    assert rel <= TOLERANCES[a.dtype], (tuple(a.shape), tuple(b.shape), meta, rel)


def inputs(m, k, n, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    # (m, k), (k, n)
    return torch.randn(m, k, generator=gen).to(dtype), torch.randn(k, n, generator=gen).to(dtype)


def fenced(x):
    """x's values in a view of a buffer one row and one column larger, the rest NaN: a K mask off by one
    reads the NaN beside a's last column or below b's last row into the sums, even where the other
    operand's mask made the product 0 (NaN * 0 is NaN)."""
    buffer = torch.full((x.shape[0] + 1, x.shape[1] + 1), math.nan, dtype=x.dtype)
    buffer[:-1, :-1] = x
    return buffer[:-1, :-1]


@pytest.mark.parametrize("meta", [c.kwargs for c in CONFIGS], ids=lambda m: "x".join(map(str, m.values())))
def test_every_autotune_config_matches_float64(interpreter, meta):
    """Each config at a shape one past its blocks each way (the last row, column and K step nearly all
    masked) and at one under them (K < BLOCK_K, a single partial tile), the inputs fenced by NaN."""
    bm, bn, bk = meta["BLOCK_M"], meta["BLOCK_N"], meta["BLOCK_K"]
    for m, k, n in [(bm + 1, bk + 1, bn + 1), (bm - 3, bk - 5, bn - 7)]:
        a, b = inputs(m, k, n)
        assert_matches_float64(interpreter, fenced(a), fenced(b), meta)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
@pytest.mark.parametrize(
    "shape",
    [
        "1x1x1",
        "5x784x10",  # the chapter's: K = 24.5 blocks of 32
        "100x37x130",  # M, N and K ragged
        "70x5x70",  # K < BLOCK_K
        "300x7x3",  # tall and skinny: five tile rows, one partial tile column
        "3x7x300",  # wide and short
        "128x64x128",  # whole blocks: no mask cuts anything
    ],
)
def test_ragged_shapes_match_float64(interpreter, shape, dtype):
    m, k, n = map(int, shape.split("x"))
    assert_matches_float64(interpreter, *inputs(m, k, n, dtype), SMALLEST)


@pytest.mark.skip(
    reason="Triton's interpreter returns garbage for bfloat16 (relative error 3e10: its tl.dot "
    "multiplies bfloat16's bits as integers); bfloat16 is checked on a GPU (tests/test_gpu.py)"
)
def test_bfloat16_matches_float64(interpreter):
    assert_matches_float64(interpreter, *inputs(5, 784, 10, torch.bfloat16), SMALLEST)


@pytest.mark.parametrize("layout", ["transposed", "every-other-column"])
def test_non_contiguous_inputs_are_read_through_their_strides(interpreter, layout):
    a, b = inputs(100, 37, 70)
    if layout == "transposed":  # column-major views of the same values
        a, b = a.t().contiguous().t(), b.t().contiguous().t()
    else:
        a, b = torch.cat([a, a], dim=1)[:, ::2], torch.cat([b, b], dim=1)[:, ::2]  # (100, 37), (37, 70) views
    assert not (a.is_contiguous() or b.is_contiguous())
    assert_matches_float64(interpreter, a, b, SMALLEST)


def test_several_groups_of_tile_rows_cover_every_tile_once(interpreter):
    """The real kernel with a small config: 9 tile rows in groups of 2 (the last one short), 3 tile
    columns; every element is checked, so a tile no program computed would be NaN and fail."""
    meta = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16, "GROUP_M": 2}
    a, b = inputs(9 * 16 - 5, 20, 3 * 16 - 2)
    assert_matches_float64(interpreter, fenced(a), fenced(b), meta)


def grouped_order(tiles_m, tiles_n, group_m):
    """The tiles in the order the programs should take them: by group of group_m tile rows, then by
    column, then by row (Triton's matmul tutorial, "L2 cache optimizations")."""
    tiles = [(m, n) for m in range(tiles_m) for n in range(tiles_n)]
    return sorted(tiles, key=lambda tile: (tile[0] // group_m, tile[1], tile[0]))


def test_tile_order_of_a_small_grid():
    """The rule above, on a picture: 5 x 3 tiles, groups of 2 tile rows, the last group one row."""
    order = grouped_order(5, 3, 2)
    pids = [[order.index((m, n)) for n in range(3)] for m in range(5)]
    assert pids == [[0, 2, 4], [1, 3, 5], [6, 8, 10], [7, 9, 11], [12, 13, 14]]


@pytest.mark.parametrize(
    "tiles_m,tiles_n,group_m",
    [
        (5, 3, 2),
        (1, 1, 8),
        (9, 2, 8),
        (17, 3, 8),
        (8, 4, 8),
        (4, 5, 1),
        (3, 7, 4),
        (7, 1, 3),
        (2, 6, 8),
        *[(2 * g + 3, 3, g) for g in sorted({c.kwargs["GROUP_M"] for c in CONFIGS})],  # the autotune list's
    ],
)
def test_each_program_computes_its_tile_in_grouped_order(interpreter, tiles_m, tiles_n, group_m):
    """The kernel's own pid -> tile map, run under the interpreter: every tile is written by exactly
    one program, the one grouped_order gives it."""
    meta = {"BLOCK_M": 16, "BLOCK_N": 32, "GROUP_M": group_m}
    pids = interpreter.apply_async(_interpreted_tile_map, (tiles_m * 16 - 3, tiles_n * 32 - 7, meta)).get(
        CHILD_SECONDS
    )
    expected = torch.full((tiles_m, tiles_n), -1, dtype=torch.int32)
    for pid, tile in enumerate(grouped_order(tiles_m, tiles_n, group_m)):
        expected[tile] = pid
    assert torch.equal(pids, expected), pids


def test_the_interpreter_stays_in_its_process(interpreter):
    """This process never turned the interpreter on: its kernel is the compiled JIT function."""
    assert "TRITON_INTERPRET" not in os.environ and not triton.knobs.runtime.interpret
    assert type(triton_kernel._matmul_kernel.fn) is triton.runtime.jit.JITFunction


def test_cpu_tensors_are_refused_for_timing():
    with pytest.raises(ValueError, match="runs only on CUDA tensors.*interpreter.*correctness only"):
        triton_kernel.matmul(*inputs(4, 4, 4))


def _interpreted_fma(programs, iters):
    """In the child: fnd peak's GPU FMA kernel (fndcli/kernels/cuda_peak.py) on `programs` x BLOCK chains from
    0."""
    assert os.environ.get("TRITON_INTERPRET") == "1"
    from fndcli.kernels import cuda_peak

    acc = torch.zeros(programs * cuda_peak.BLOCK)
    cuda_peak.fma(acc, 0.5, 0.25, iters)
    return acc


def test_fnd_peaks_gpu_fma_kernel_runs_every_chain_every_step(interpreter):
    """c -> c * 0.5 + 0.25 from 0, 3 steps: 0.25, 0.375, 0.4375 = 0.5 (1 - 0.5^3), in every one of the chains
    (a program that skipped its block, or a step, would leave another value)."""
    acc = interpreter.apply_async(_interpreted_fma, (3, 3)).get(CHILD_SECONDS)
    assert acc.shape == (3 * 1024,) and torch.all(acc == 0.5 * (1 - 0.5**3))
