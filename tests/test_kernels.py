"""Every matmul kernel against float64 a @ b, on random shapes (fastbook ch. 17's ladder)."""

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fndcli.bench.check import check_impl
from fndcli.bench.spec import Shape, make_inputs
from fndcli.kernels.registry import IMPLS

dims = st.integers(min_value=1, max_value=9)
CPU_IMPLS = [name for name, impl in IMPLS.items() if "cpu" in impl.devices]  # triton: tests/test_gpu.py


def on_numba_worker(impl, dtype, *rest):
    """A test case of numba-tiled in `dtype` runs on that dtype's xdist worker, which compiles it once (about
    10 s); the two dtypes compile side by side on a fresh clone (make test's --dist loadgroup)."""
    marks = [pytest.mark.xdist_group(f"numba-tiled-{dtype}")] if impl == "numba-tiled" else []
    return pytest.param(impl, dtype, *rest, marks=marks, id="-".join(map(str, (impl, dtype, *rest))))


@pytest.mark.parametrize(
    "impl,dtype", [on_numba_worker(i, d) for i in CPU_IMPLS for d in ("float32", "float64")]
)
@settings(max_examples=8, deadline=None)
@given(m=dims, k=dims, n=dims, seed=st.integers(0, 2**16))
def test_kernel_matches_float64_reference(impl, dtype, m, k, n, seed):
    dtype = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(m, k, generator=gen, dtype=dtype)
    b = torch.randn(k, n, generator=gen, dtype=dtype)
    out = IMPLS[impl].fn(a, b)
    assert out.shape == (m, n) and out.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out.double(), a.double() @ b.double(), rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "impl,dtype,shape",
    [on_numba_worker(i, "float64", s) for i in CPU_IMPLS for s in ("1x1x1", "7x1x3", "1x13x1", "3x5x2")],
)
def test_kernel_edge_shapes(impl, dtype, shape):
    check = check_impl(impl, Shape.parse(shape), dtype, seed=1)
    assert check.correct and check.rel_err < 1e-14


@pytest.mark.parametrize("impl,dtype", [on_numba_worker(i, "float64") for i in CPU_IMPLS])
def test_kernel_accepts_non_contiguous_inputs(impl, dtype):
    a, b = make_inputs(Shape(6, 4, 5), dtype, seed=2)
    at, bt = a.t().contiguous().t(), b.t().contiguous().t()  # same values, column-major strides
    assert not at.is_contiguous()
    torch.testing.assert_close(IMPLS[impl].fn(at, bt), a @ b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_kernel_shape_mismatch_names_both_shapes(impl):
    with pytest.raises(ValueError, match=r"\(2, 3\) by \(4, 5\)"):
        IMPLS[impl].fn(torch.ones(2, 3), torch.ones(4, 5))


def test_checker_flags_a_wrong_kernel(monkeypatch):
    """A kernel that forgets one term of the sum is reported incorrect, not hidden by tolerance."""
    import dataclasses

    def drops_last_k(a, b):
        return a[:, :-1] @ b[:-1]

    monkeypatch.setitem(IMPLS, "torch", dataclasses.replace(IMPLS["torch"], fn=drops_last_k))
    check = check_impl("torch", Shape(5, 784, 10), "float32", seed=0)
    assert not check.correct and check.rel_err > 1e-3


@pytest.mark.parametrize("text,expected", [("5x784x10", Shape(5, 784, 10)), (" 1X2x3 ", Shape(1, 2, 3))])
def test_shape_parse(text, expected):
    assert Shape.parse(text) == expected


@pytest.mark.parametrize("text", ["abc", "5x0x3", "5x3", "-1x2x3", "1x2x3x4", ""])
def test_shape_parse_rejects(text):
    with pytest.raises(ValueError, match="MxKxN|zero dimension"):
        Shape.parse(text)


@pytest.mark.parametrize("impl", ["loops", "dot", "broadcast", "einsum", "torch"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_within_its_tolerance(impl, dtype):
    """bfloat16 and float16 on the CPU: correct at their own tolerance, and not at float32's."""
    from fndcli.bench.spec import TOLERANCES

    check = check_impl(impl, Shape(4, 64, 3), dtype, seed=0)
    assert check.correct and check.rel_err > TOLERANCES["float32"]


@pytest.mark.xdist_group("numba-tiled-float64")
def test_numba_tiled_pads_odd_shapes_and_keeps_float64():
    a, b = make_inputs(Shape(37, 53, 29), "float64", seed=5)
    out = IMPLS["numba-tiled"].fn(a, b)
    assert out.shape == (37, 29) and out.dtype == torch.float64
    torch.testing.assert_close(out, a @ b, rtol=1e-12, atol=1e-12)


def test_compiled_impl_reports_compile_time_apart():
    check = check_impl("numba-loops", Shape(3, 4, 5), "float32", seed=0)
    assert check.correct and check.compile_s >= 0 and check.call_s < 0.01
    assert math.isnan(check_impl("torch", Shape(3, 4, 5), "float32", seed=0).compile_s)


def test_the_committed_gemm_kernel_is_the_generators():
    """fndcli/kernels/gemm.py is written by fndcli/kernels/gemm_source.py (numba's cache needs a real file):
    they must agree."""
    from pathlib import Path

    from fndcli.kernels import gemm_source

    committed = (Path(__file__).parent.parent / "fndcli" / "kernels" / "gemm.py").read_text()
    assert committed == gemm_source.generate(), (
        "run: python -m fndcli.kernels.gemm_source > fndcli/kernels/gemm.py"
    )


@pytest.mark.xdist_group("numba-tiled-float64")
def test_numba_tiled_packs_into_cache_line_aligned_buffers():
    """The packed panels start on 64-byte boundaries (numba's own arrays on 32 only): a zmm load that
    straddles two cache lines cost the micro-kernel 10-20 % on an Intel Xeon. Distinct buffers, each its full
    shape."""
    import numpy as np

    from fndcli.kernels import gemm

    for like in (np.zeros(1, np.float32), np.zeros(1, np.float64)):
        buffers = [gemm.aligned(d0, 3, 5, like) for d0 in (1, 2, 7, 33) for _ in range(4)]
        assert {b.ctypes.data % 64 for b in buffers} == {0}
        assert all(b.dtype == like.dtype and b.shape[1:] == (3, 5) and b.flags.c_contiguous for b in buffers)
        for i, b in enumerate(buffers):
            b[:] = i
        assert [b.min() == b.max() == i for i, b in enumerate(buffers)] == [True] * len(buffers)


@pytest.mark.xdist_group("numba-tiled-float64")
def test_numba_tiled_keeps_its_buffers_for_one_shape_and_never_reads_stale_ones():
    """The packing buffers live on between calls of one shape (no page faults a call) and are made anew for
    another; each call is still a @ b after a larger shape, a smaller one and the same shape with other
    values; and the buffers with the output fit the memory fnd reserves for numba-tiled before a run."""
    import numpy as np

    from fndcli.kernels import tiled
    from fndcli.names import IMPL_SPECS

    rng = np.random.default_rng(0)
    kept = []
    for m, k, n in [(70, 300, 90), (9, 17, 33), (70, 300, 90), (70, 300, 90)]:
        a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
        c = tiled.matmul(a, b)
        np.testing.assert_allclose(c, a @ b, rtol=1e-12, atol=1e-12)
        kept.append(tiled._buffers.bp)
        used = tiled._buffers.bp.nbytes + tiled._buffers.ap.nbytes + c.nbytes
        assert used <= IMPL_SPECS["numba-tiled"].scratch(m, k, n) * 8
    assert kept[3] is kept[2] and kept[1] is not kept[0] and kept[2] is not kept[0]


@pytest.mark.xdist_group("numba-tiled-float64")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("edge", ["3 columns", "half a panel and 1", "an edge kernel's width"])
def test_numba_tiled_kernel_over_many_k_blocks_and_stale_buffers(dtype, edge):
    """This host's tile through k in several blocks (the later ones add into c, the last one short), rows
    over 3 parts, and a last panel of B of 3 columns, of half a panel and one (the narrowest edge kernel, or a
    wider one, through a buffer), or exactly an edge kernel's width (straight into c): the blocking the host
    picks keeps k whole below 4096, so the suite drives the kernel directly. The buffers start as NaN:
    anything the kernel read without writing would show."""
    import numpy as np

    from fndcli.kernels import gemm
    from fndcli.kernels.tiled import blocking

    mr, nr, _, _ = blocking(dtype, 1, 1, 1)
    from fndcli.kernels.gemm_source import edges

    widths = {"3 columns": 3, "half a panel and 1": nr // 2 + 1, "an edge kernel's width": edges(mr, nr)[0]}
    n = nr + widths[edge]
    (m, k), kc, mc, parts = (61, 300), 64, 2 * mr, 3
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    c = np.full((m, n), np.nan, dtype)
    bp = np.full((-(-k // kc), -(-n // nr), kc, nr), np.nan, dtype)
    ap = np.full((parts, mc // mr, kc, mr), np.nan, dtype)
    getattr(gemm, f"gemm_{mr}x{nr}")(a, b, c, kc, mc, parts, bp, ap)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    assert np.abs(c - ref).max() <= (1e-5 if dtype == "float32" else 1e-12) * np.abs(ref).max()


@pytest.mark.xdist_group("numba-tiled-float64")
def test_numba_tiled_buffers_are_made_anew_when_either_shape_changes():
    """The same arrays for the same shapes; for more rows on the same b (a larger block of A only), a new
    block of A of the shape asked for, not the smaller one kept."""
    from fndcli.kernels import tiled

    b_shape, a_shape = (1, 4, 300, 24), (2, 5, 300, 7)
    bp, ap = tiled.buffers("float64", b_shape, a_shape)
    again = tiled.buffers("float64", b_shape, a_shape)
    assert again[0] is bp and again[1] is ap
    bp, ap = tiled.buffers("float64", b_shape, (2, 25, 300, 7))
    assert bp.shape == b_shape and ap.shape == (2, 25, 300, 7)


@pytest.mark.parametrize(
    "impl,dtype,shape",
    [
        on_numba_worker("numba-tiled", "float32", "1x64x1"),
        on_numba_worker("numba-tiled", "float64", "300x1x300"),
        on_numba_worker("numba-tiled", "float64", "2xKx3"),
    ],
)
def test_numba_tiled_buffers_hold_all_of_b_and_fit_the_reserve(impl, dtype, shape):
    """bp holds every K block and every NR-wide panel of b, ap an MC-row block of A, and the two with c fit
    the scratch fnd reserves (elements of the dtype) where each of its terms counts: one row of A packed as
    MR rows, a c far larger than a and b, and (K) the first k this host's L2 cuts into K blocks that do
    not divide it, so matmul runs k in several blocks too."""
    import numba
    import numpy as np

    from fndcli.kernels import tiled
    from fndcli.names import IMPL_SPECS

    (m, k, n), threads = [int(d) if d != "K" else None for d in shape.split("x")], numba.get_num_threads()
    k = k or next(k for k in range(2, 1 << 16) if k % tiled.blocking(dtype, m, k, threads)[2])
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    c = tiled.matmul(a, b)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    assert np.abs(c - ref).max() <= (1e-5 if dtype == "float32" else 1e-12) * np.abs(ref).max()
    bp, ap = tiled._buffers.bp, tiled._buffers.ap
    _, nr, kc, mc = tiled.blocking(dtype, m, k, threads)
    assert bp.shape[0] * kc >= k and bp.shape[1:] == (-(-n // nr), kc, nr) and ap.shape[1] * ap.shape[3] >= mc
    assert bp.nbytes + ap.nbytes + c.nbytes <= IMPL_SPECS["numba-tiled"].scratch(m, k, n) * c.itemsize


@pytest.mark.parametrize("impl,dtype", [on_numba_worker(i, "float64") for i in CPU_IMPLS])
def test_an_empty_product_is_zeros(impl, dtype):
    """k = 0: each entry is a sum of nothing, 0, not what was in the memory the output was made in (a
    NaN-filled array of its size freed just before, for the allocator to hand back)."""
    import numpy as np

    np.full((3, 4), np.nan)
    out = IMPLS[impl].fn(torch.ones(3, 0, dtype=torch.float64), torch.ones(0, 4, dtype=torch.float64))
    assert out.shape == (3, 4) and out.eq(0).all()


def test_prefetch_intrinsics_emit_prefetch_instructions():
    """read_l2 and write_l1 become x86's prefetcht1 and prefetchw (where the CPU has it) and change nothing
    they touch."""
    import numpy as np
    from numba import njit

    from fndcli.kernels.prefetch import read_l2, write_l1

    @njit
    def touch(flat, matrix):
        for i in range(flat.size):
            read_l2(flat, i)
        write_l1(matrix, 1, 2)
        return flat.sum() + matrix.sum()

    flat, matrix = np.arange(40.0), np.arange(12.0).reshape(3, 4)
    assert touch(flat, matrix) == 780 + 66 and flat[3] == 3 and matrix[1, 2] == 6
    asm = touch.inspect_asm(touch.signatures[0])
    from fndcli.kernels import jitenv

    assert "prefetcht1" in asm and ("prefetchw" in asm or "+prfchw" not in jitenv.host_features())


@pytest.mark.parametrize(
    "impl,dtype,shape",
    [
        on_numba_worker("numba-tiled", d, s)
        for d in ("float32", "float64")
        for s in ("7x13x3", "65x129x33", "1x1x1", "1000x1x1000", "9x300x40", "129x257x65")
    ],
)
def test_numba_tiled_edge_tiles_and_odd_shapes(impl, dtype, shape):
    """Tiles of 5x16 or 7x48 (float32), 5x8 or 7x24 (float64), blocks of 30-250 rows: every shape that is not
    a multiple of them, and 1000 rows in blocks spread over the threads (k in several blocks: below)."""
    check = check_impl("numba-tiled", Shape.parse(shape), dtype, seed=3)
    assert check.correct, (check.rel_err, check.error)


@settings(max_examples=200, deadline=None)
@given(
    m=st.integers(1, 5000),
    k=st.integers(1, 20000),
    threads=st.integers(1, 64),
    vector=st.sampled_from([16, 32, 64]),
    dtype=st.sampled_from(["float32", "float64"]),
    l2=st.sampled_from([256, 512, 1024, 2048]),
)
def test_numba_tiled_blocking_fits_the_caches_and_spreads_rows_over_threads(m, k, threads, vector, dtype, l2):
    """MC x KC of A in a quarter of L2 with room for 4 MR-row panels; k in the fewest blocks that allows, of
    equal length; MC a multiple of MR (blocks must not share rows); no thread more than one block of MR rows
    beyond its fair share."""
    from fndcli.kernels import gemm_source
    from fndcli.kernels.tiled import blocking

    item = 4 if dtype == "float32" else 8
    mr, nr, kc, mc = blocking(dtype, m, k, threads, vector, {1: 32 << 10, 2: l2 << 10})
    vectors = 3 if vector == 64 else 2  # B is three vectors wide on AVX-512, two on AVX2 and SSE
    assert (mr, nr) == gemm_source.TILES[vector][dtype] and nr * item == vectors * vector
    longest = (l2 << 10) // 4 // (4 * mr * item)
    blocks = -(-k // kc)
    assert kc <= longest and blocks == -(-k // longest) and kc * (blocks - 1) < k <= kc * blocks
    assert mc % mr == 0 and mr <= mc and mc * kc * item <= (l2 << 10) // 4
    row_blocks = -(-m // mc)
    busiest = -(-row_blocks // threads) * mc  # rows of the thread with the most blocks
    assert busiest <= -(-m // threads) + mc, (row_blocks, busiest)
    assert busiest <= -(-m // threads) + mr * (-(-row_blocks // threads)) or row_blocks <= threads


@pytest.mark.parametrize(
    "vector,dtype,m,k,threads,l2,expected",
    [
        # AVX-512, float32 (7 x 48), 2 MiB L2: A's block in 512 KiB, KC up to 512 KiB / (4 x 7 x 4 B) = 4681,
        # so all of k = 2048 in one block; MC = 512 KiB / (2048 x 4 B) = 64 rows, 63 in whole 7-row panels
        (64, "float32", 2048, 2048, 1, 2048, (7, 48, 2048, 63)),
        # AVX-512, float64 (7 x 24): KC up to 512 KiB / (4 x 7 x 8 B) = 2340, so k = 5000 in 3 blocks of 1667;
        # MC = 512 KiB / (1667 x 8 B) = 39 rows, 35; 256 rows: 8 blocks of 32, rounded up to panels: 35
        (64, "float64", 256, 5000, 1, 2048, (7, 24, 1667, 35)),
        # AVX2, float32 (5 x 16), 512 KiB L2: KC up to 128 KiB / (4 x 5 x 4 B) = 1638, so k = 1000 whole;
        # MC = 128 KiB / 4000 B = 32 rows, 30; 130 rows on 2 threads: 3 blocks each of 22 rows, 25 in panels
        (32, "float32", 130, 1000, 2, 512, (5, 16, 1000, 25)),
        # SSE, float32 (5 x 8), k = 7: one block of 7; 3 rows: one panel of 5
        (16, "float32", 3, 7, 1, 256, (5, 8, 7, 5)),
    ],
)
def test_numba_tiled_blocking_worked_out_by_hand(vector, dtype, m, k, threads, l2, expected):
    """KC: k in the fewest equal blocks that leave 4 MR-row panels of A in a quarter of L2; MC: the MC x KC
    block of A in a quarter of L2, whole MR-row panels, the blocks spread evenly over the threads."""
    from fndcli.kernels.tiled import blocking

    assert blocking(dtype, m, k, threads, vector, {1: 32 << 10, 2: l2 << 10}) == expected


def test_cache_sizes_reads_the_data_and_unified_caches_and_skips_the_instruction_cache(tmp_path, monkeypatch):
    """A sysfs tree like cpu0's on an AMD EPYC: L1d 32K and L1i 64K at level 1, L2 1024K, L3 32M (K and M
    are KiB and MiB: 32768, 1048576, 33554432 bytes). Built twice with index0 and index1 swapped, so that
    whichever order the directory lists them in, one tree reads the instruction cache last: were it read,
    L1 would be 64 KiB."""
    from fndcli.kernels import tiled

    sysfs = "/sys/devices/system/cpu/cpu0/cache"
    level1 = [("1", "Data", "32K"), ("1", "Instruction", "64K")]
    for order in (level1, level1[::-1]):
        root = tmp_path / order[0][1]
        for i, (level, kind, size) in enumerate([*order, ("2", "Unified", "1024K"), ("3", "Unified", "32M")]):
            index = root / f"index{i}"
            index.mkdir(parents=True)
            for name, text in (("level", level), ("type", kind), ("size", size)):
                (index / name).write_text(text + "\n")
        monkeypatch.setattr(tiled, "Path", lambda path, root=root: root if path == sysfs else Path(path))
        assert tiled.cache_sizes.__wrapped__() == {1: 32768, 2: 1048576, 3: 33554432}  # not functools' cache


def test_the_schedule_interleaves_worker_processes():
    from fndcli.bench.run import schedule
    from fndcli.bench.spec import PRESETS, BenchSpec

    runs = PRESETS["default"].runs
    specs = [(BenchSpec(name, "cpu", Shape(4, 4, 4), 10), runs) for name in ("a", "b")]
    specs.append((BenchSpec("loops", "cpu", Shape(4, 4, 4), 1), PRESETS["default"].slow))  # 1 process only
    assert [label for _, _, label in schedule(specs, "interleaved", False)] == [
        "a 4x4x4 cpu #1",
        "b 4x4x4 cpu #1",
        "loops 4x4x4 cpu #1",
        "a 4x4x4 cpu #2",
        "b 4x4x4 cpu #2",
    ]
    assert all(
        r.processes == 1 and "--processes" in r.pyperf_args
        for _, r, _ in schedule(specs, "interleaved", False)
    )
    assert [label for _, _, label in schedule(specs, "sequential", False)] == [
        "a 4x4x4 cpu x2",
        "b 4x4x4 cpu x2",
        "loops 4x4x4 cpu x1",
    ]
    in_process = schedule(specs[:2], "interleaved", "once")
    assert len(in_process) == 1 and len(in_process[0][0]) == 2
    # --gate: each process times every benchmark, the order reversed every other process; the slow loops apart
    shared = schedule(
        [(spec, PRESETS["gate"].runs) for spec, _ in specs[:2]] + [(specs[2][0], PRESETS["gate"].slow)],
        "interleaved",
        "shared",
    )
    orders = [[spec.impl for spec in group] for group, _, _ in shared]
    assert (
        orders[:3] == [["a", "b"], ["loops"], ["b", "a"]]
        and len(orders) == PRESETS["gate"].runs.processes + 5
    )
    assert all(r.pyperf_args[:3] == ("--in-process", "--processes", "1") for _, r, _ in shared)
