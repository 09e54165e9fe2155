"""The source of `fndcli/kernels/gemm.py`, numba-tiled's kernels: outer-product micro-kernel GEMMs, one per
tile.

numba cannot keep an array of accumulators in registers, but it can keep scalar locals there:
a micro-kernel holds C's MR x NR tile in MR * NR scalar variables, written out here rather
than by hand. With the settings of `fndcli.kernels.jitenv` LLVM's SLP vectorizer packs them
into vector registers: NR is two or three vectors wide, so each step of k is that many vector
loads of B and, per row of the tile, one broadcast of A and a fused multiply-add per vector (the BLIS design:
Low, Smith, Van Zee et al.; Goto and van de Geijn 2008). The tile must fit the register
file with room for B and a broadcast, so there is one per vector width and dtype (TILES);
`fndcli.kernels.tiled` picks the host's, and KC and MC, at run time. Each row's broadcast
is written just before its multiply-adds: loading all MR first (the older order) made LLVM
spill accumulators on a 16-register AVX2 part (48 GFLOP/s where this order gives 85, AMD
EPYC Zen 3, 1 thread, float32, 1024^3).

Around the micro-kernels, per tile, a driver (`_driver`: all of B packed at once, the rows split
over the threads, k in as few blocks as fit L2) and the packing routines (`_pack_b`, `_pack_a`),
written out in straight lines too: with loads and stores interleaved, LLVM kept B's copy scalar
(it cannot prove the arrays apart); all loads first, it copies whole vectors (2048^2 float32:
2.0 ms against 3.2-5.3). The micro-kernel prefetches its tile of C and, a line each step of k,
the panel of B that comes next (`fndcli.kernels.prefetch`).

numba's on-disk cache needs the source in a real file, so it is generated once and committed;
a test checks that the committed file is what this module writes:

    python -m fndcli.kernels.gemm_source > fndcli/kernels/gemm.py
"""

# (MR, NR) per vector width in bytes and dtype. 64 (AVX-512, 32 registers): 7 rows of 3 vectors,
# 21 accumulators, 3 for B and 7 broadcasts (LLVM loads all of a step's broadcasts first: 8 rows
# would spill); 32 (AVX2, 16 registers) and 16 (SSE): 5 rows of 2, 10 accumulators, leaving 6
# for B, a broadcast and spare. Three vectors wide, each step of k is 7 broadcasts and 3 loads for
# 21 FMAs (31 instructions; 8 x 32 took 26 for 16): as fast alone, and 6-17 % faster while the
# host's other tenants slow the core (Intel Xeon, 2 threads, hot panels; docs/matmul-bench.md).
TILES = {
    64: {"float32": (7, 48), "float64": (7, 24)},
    32: {"float32": (5, 16), "float64": (5, 8)},
    16: {"float32": (5, 8), "float64": (5, 4)},
}


def edges(mr, nr):
    """The narrower widths, whole vectors, of the tile's edge kernels (every tile has one at least): the last
    panel of B is packed and multiplied only as wide as it needs (n = 1024 in 48-wide panels leaves 16
    columns: a whole 48 would waste 3 % of the product)."""
    vector = min(
        v // (4 if dtype == "float32" else 8)
        for v, by in TILES.items()
        for dtype, t in by.items()
        if t == (mr, nr)
    )
    return list(range(vector, nr, vector))


def _micro(name, doc, op, mr, nr):
    """A micro-kernel: c[i0:i0+mr, j0:j0+nr] set to (op '='), or added to (op '+='), ap (kc, mr) x bp (kc,
    nr); one line of pf (the next panel of B, flat) at pf[pfi + p * step] prefetched into L2 each step p."""
    lines = [
        "",
        "",
        "@njit(fastmath=True, cache=True)",
        f"def {name}(ap, bp, kc, c, i0, j0, pf, pfi, step):",
        f'    """{doc}: ap (kc, {mr}) and bp (kc, {nr}) are packed panels; the tile stays in {mr * nr}',
        "    scalar accumulators, which the SLP vectorizer keeps in registers; straight-line loads and",
        "    stores of whole rows vectorise too (a loop would stay scalar: loop vectorisation is off).",
        "    C's rows are asked for first and the next panel of B a line a step, so neither stalls the",
        '    multiply-adds (fndcli/kernels/prefetch.py)."""',
    ]
    lines.append(
        "    z = np.float32(0)  # unified with the inputs: float32 stays float32, float64 in float64"
    )
    # unsigned indices: no negative-index wraparound, whose branches would block the vectorizer
    lines += [f"    r{i} = i0 + np.uint64({i})" for i in range(mr)]
    lines += [f"    q{j} = j0 + np.uint64({j})" for j in range(nr)]
    # a row of the tile spans up to three cache lines (128 bytes, not aligned): its first, middle and last
    for i in range(mr):
        lines += [f"    write_l1(c, r{i}, q{j})" for j in sorted({0, nr // 2, nr - 1})]
    # from zero, C read only after the k loop: its cache misses (C is larger than L2) overlap the loop's tail
    # instead of stalling its first multiply-adds
    lines += [f"    c{i}_{j} = z" for i in range(mr) for j in range(nr)]
    lines.append("    for p in range(kc):")
    lines.append("        read_l2(pf, pfi + p * step)")
    lines += [f"        b{j} = bp[p, {j}]" for j in range(nr)]
    for i in range(mr):
        lines.append(f"        a{i} = ap[p, {i}]")
        lines += [f"        c{i}_{j} += a{i} * b{j}" for j in range(nr)]
    lines += [f"    c[r{i}, q{j}] {op} c{i}_{j}" for i in range(mr) for j in range(nr)]
    return lines


def _pack_b(nr):
    """pack_b_NR(b, k0, kc, j0, dst): dst (kc, NR) = b[k0:k0+kc, j0:j0+NR], zero past b's last column."""
    return [
        "",
        "",
        "@njit(fastmath=True, cache=True)",
        f"def pack_b_{nr}(b, k0, kc, j0, dst):",
        f'    """dst (kc, {nr}) = b[k0:k0+kc, j0:j0+{nr}], zero past b\'s last column; a whole panel in',
        '    straight lines with unsigned indices, which vectorise."""',
        "    n = b.shape[1]",
        f"    if j0 + {nr} <= n:",
        "        q = np.uint64(j0)",
        "        for p in range(kc):",
        "            r = np.uint64(k0 + p)",
        "            s = np.uint64(p)",
        # all loads before the stores: dst and b might overlap as far as LLVM knows, and loads and stores
        # interleaved stayed scalar (a vmovss an element); this way both are whole vectors
        *[f"            v{j} = b[r, q + np.uint64({j})]" for j in range(nr)],
        *[f"            dst[s, np.uint64({j})] = v{j}" for j in range(nr)],
        "        return",
        "    for p in range(kc):",
        f"        for j in range({nr}):",
        "            dst[p, j] = b[k0 + p, j0 + j] if j0 + j < n else 0",
    ]


def _pack_a(mr):
    """pack_a_MR(a, i0, k0, kc, dst): dst (kc, MR) = a[i0:i0+MR, k0:k0+kc].T, zero past a's last row."""
    return [
        "",
        "",
        "@njit(fastmath=True, cache=True)",
        f"def pack_a_{mr}(a, i0, k0, kc, dst):",
        f'    """dst (kc, {mr}) = a[i0:i0+{mr}, k0:k0+kc] transposed (k-major), zero past a\'s last row;',
        '    a whole panel in straight lines with unsigned indices."""',
        "    m = a.shape[0]",
        f"    if i0 + {mr} <= m:",
        *[f"        r{i} = np.uint64(i0 + {i})" for i in range(mr)],
        "        for p in range(kc):",
        "            q = np.uint64(k0 + p)",
        "            s = np.uint64(p)",
        *[f"            v{i} = a[r{i}, q]" for i in range(mr)],
        *[f"            dst[s, np.uint64({i})] = v{i}" for i in range(mr)],
        "        return",
        "    for p in range(kc):",
        f"        for i in range({mr}):",
        "            dst[p, i] = a[i0 + i, k0 + p] if i0 + i < m else 0",
    ]


def _edge_in_place(mr, nr):
    """The driver's lines for a last panel of B exactly as wide as an edge kernel (n = 1024 in 48-wide
    panels leaves 16, 2048 leaves 32): its whole-row tiles of the first K block (the only one, for k up to
    thousands) straight into c. The later K blocks go through t: add_ kernels for the edge widths would
    double what the edge costs to compile (numba-tiled's float32 on AVX-512: 31 s, 50 s with them)."""
    lines = []
    call = "(apart[ip], bp[kb, jp], kcb, c, np.uint64(i0), np.uint64(j0), flat, pfi, step)"
    for e in edges(mr, nr):
        lines += [
            f"                        if kb == 0 and i0 + MR <= m and w == {e}:",
            f"                            set_{mr}x{e}{call}",
            "                            continue",
        ]
    return lines


def _edge_calls(mr, nr):
    """The driver's lines that multiply an edge tile into t, by the narrowest kernel as wide as its
    columns."""
    lines, keyword = [], "if"
    for e in edges(mr, nr):
        lines += [
            f"                        {keyword} w <= {e}:",
            f"                            set_{mr}x{e}(apart[ip], bp[kb, jp], kcb, t, np.uint64(0), "
            "np.uint64(0), flat, pfi, step)",
        ]
        keyword = "elif"
    call = f"set_{mr}x{nr}(apart[ip], bp[kb, jp], kcb, t, np.uint64(0), np.uint64(0), flat, pfi, step)"
    return [*lines, "                        else:", f"                            {call}"]


def _driver(mr, nr):
    """gemm_MRxNR(a, b, c, kc, mc, parts, bp, ap): the blocked loops around the micro-kernels of one tile."""
    t = f"{mr}x{nr}"
    return [
        "",
        "",
        "@njit(parallel=True, cache=True)",
        f"def gemm_{t}(a, b, c, kc, mc, parts, bp, ap):",
        f'    """c (m, n) = a (m, k) @ b (k, n), all C-contiguous, in {t} tiles, through two buffers the',
        "    caller keeps: bp (ceil(k / kc), ceil(n / NR), kc, NR), all of b packed at once into KC x NR",
        "    panels (in parallel), and ap (parts, mc / MR, kc, MR), a packed MC x KC block of a a part.",
        "    The rows of a are split into `parts` (one a thread) of whole MR-row panels, as even as panels",
        "    allow; each part, in blocks of mc rows, goes over k in blocks of kc: packs its block of a,",
        "    then runs the micro-kernel over every tile, B's panels in the outer loop, each used by every",
        "    MR-row panel of the block while the next is prefetched. The first K block stores into c, the",
        '    later ones add."""',
        f"    MR, NR = {mr}, {nr}",
        "    m, k = a.shape",
        "    n = b.shape[1]",
        "    npan = (n + NR - 1) // NR",
        "    nk = (k + kc - 1) // kc",
        "    for task in prange(nk * npan):",
        "        kb, jp = task // npan, task % npan",
        f"        pack_b_{nr}(b, kb * kc, min(kc, k - kb * kc), jp * NR, bp[kb, jp])",
        "    flat = bp.reshape(-1)",
        "    step = 64 // bp.itemsize  # elements in a cache line",
        "    chunks = (NR + step - 1) // step  # micro-kernel calls to prefetch a whole panel, a line a step",
        "    panels = (m + MR - 1) // MR",
        "    for part in prange(parts):",
        "        r0 = part * panels // parts * MR",
        "        r1 = min(m, (part + 1) * panels // parts * MR)",
        "        apart = ap[part]",
        "        t = np.empty((MR, NR), dtype=c.dtype)",
        "        for i_start in range(r0, r1, mc):",
        "            mpan = (min(mc, r1 - i_start) + MR - 1) // MR",
        "            for kb in range(nk):",
        "                k0 = kb * kc",
        "                kcb = min(kc, k - k0)",
        "                for ip in range(mpan):",
        f"                    pack_a_{mr}(a, i_start + ip * MR, k0, kcb, apart[ip])",
        "                for jp in range(npan):",
        "                    j0 = jp * NR",
        "                    # the panel computed after this one (the first of the next block at the end)",
        "                    nxt = (kb * npan + jp + 1) % (nk * npan) * kc * NR",
        "                    for ip in range(mpan):",
        "                        i0 = i_start + ip * MR",
        "                        pfi = nxt + min(ip, chunks - 1) * kcb * step",
        "                        if i0 + MR <= m and j0 + NR <= n:  # a whole tile, in place",
        "                            if kb == 0:",
        f"                                set_{t}(apart[ip], bp[kb, jp], kcb, c, np.uint64(i0), "
        "np.uint64(j0), flat, pfi, step)",
        "                            else:",
        f"                                add_{t}(apart[ip], bp[kb, jp], kcb, c, np.uint64(i0), "
        "np.uint64(j0), flat, pfi, step)",
        "                            continue",
        "                        w = n - j0",
        *_edge_in_place(mr, nr),
        "                        # an edge tile's valid part, through t; B's last panel as wide as needed",
        *_edge_calls(mr, nr),
        "                        for i in range(min(MR, m - i0)):",
        "                            for j in range(min(NR, n - j0)):",
        "                                c[i0 + i, j0 + j] = t[i, j] if kb == 0 else "
        "c[i0 + i, j0 + j] + t[i, j]",
    ]


def generate():
    """The module's source."""
    lines = [
        '"""numba-tiled\'s kernels, generated by fndcli/kernels/gemm_source.py: do not edit (see that '
        "module's docstring).",
        "",
        "Call them through fndcli.kernels.tiled, which picks the tile and blocking; run them only in a "
        "process whose",
        "numba was imported with fndcli.kernels.jitenv.settings(): without them they are correct but scalar, "
        "slower.",
        '"""',
        "import numpy as np",
        "from numba import njit, prange",
        "",
        "from fndcli.kernels.prefetch import read_l2, write_l1",
        "",
        "",
        "@njit(cache=True)",
        "def aligned(d0, d1, d2, like):",
        '    """An empty (d0, d1, d2) array of like\'s dtype whose data starts on a 64-byte boundary: numba '
        "aligns to 32",
        "    only, and a packed panel's vector loads that straddle cache lines cost 10-20 % of the "
        "micro-kernel's speed",
        '    (Intel Xeon, AVX-512)."""',
        "    size = d0 * d1 * d2",
        "    flat = np.empty(size + 64 // like.itemsize, dtype=like.dtype)",
        "    skip = (-flat.ctypes.data) % 64 // like.itemsize",
        "    return flat[skip:skip + size].reshape((d0, d1, d2))",
    ]
    tiles = sorted({tile for by_dtype in TILES.values() for tile in by_dtype.values()})
    narrow = sorted({(mr, e) for mr, nr in tiles for e in edges(mr, nr)} - set(tiles))
    for mr, e in narrow:  # the edge kernels no tile already is
        lines += _micro(
            f"set_{mr}x{e}", f"c[i0:i0+{mr}, j0:j0+{e}] = an edge tile (bp's first {e} columns)", "=", mr, e
        )

    for mr, nr in tiles:
        t = f"{mr}x{nr}"
        lines += _micro(f"set_{t}", f"c[i0:i0+{mr}, j0:j0+{nr}] = the tile (the first K block)", "=", mr, nr)
        lines += _micro(
            f"add_{t}", f"c[i0:i0+{mr}, j0:j0+{nr}] += the tile (the later K blocks)", "+=", mr, nr
        )
        lines += _driver(mr, nr)
    for nr in sorted({nr for _, nr in tiles}):
        lines += _pack_b(nr)
    for mr in sorted({mr for mr, _ in tiles}):
        lines += _pack_a(mr)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(generate(), end="")
