"""The source of `fndcli/kernels/gemm.py`, numba-tiled's kernels: outer-product micro-kernel GEMMs, one per
tile.

numba cannot keep an array of accumulators in registers, but it can keep scalar locals there:
a micro-kernel holds C's MR x NR tile in MR * NR scalar variables, written out here rather
than by hand. With the settings of `fndcli.kernels.jitenv` LLVM's SLP vectorizer packs them
into vector registers: NR is two vectors wide, so each step of k is two vector loads of B
and, per row of the tile, one broadcast of A and two fused multiply-adds (the BLIS design:
Low, Smith, Van Zee et al.; Goto and van de Geijn 2008). The tile must fit the register
file with room for B and a broadcast, so there is one per vector width and dtype (TILES);
`fndcli.kernels.tiled` picks the host's, and KC and MC, at run time. Each row's broadcast
is written just before its multiply-adds: loading all MR first (the older order) made LLVM
spill accumulators on a 16-register AVX2 part (48 GFLOP/s where this order gives 85, AMD
EPYC Zen 3, 1 thread, float32, 1024^3).

numba's on-disk cache needs the source in a real file, so it is generated once and committed;
a test checks that the committed file is what this module writes:

    python -m fndcli.kernels.gemm_source > fndcli/kernels/gemm.py
"""

# (MR, NR) per vector width in bytes and dtype. 64 (AVX-512, 32 registers): 16 accumulator
# vectors; 32 (AVX2, 16 registers) and 16 (SSE): 10, leaving 6 for B, a broadcast and spare.
TILES = {
    64: {"float32": (8, 32), "float64": (8, 16)},
    32: {"float32": (5, 16), "float64": (5, 8)},
    16: {"float32": (5, 8), "float64": (5, 4)},
}


def _micro(name, doc, op, mr, nr):
    """A micro-kernel: c[i0:i0+mr, j0:j0+nr] set to (op '='), or added to (op '+='), ap (kc, mr) x bp (kc,
    nr)."""
    lines = [
        "",
        "",
        "@njit(fastmath=True, cache=True)",
        f"def {name}(ap, bp, kc, c, i0, j0):",
        f'    """{doc}: ap (kc, {mr}) and bp (kc, {nr}) are packed panels; the tile stays in {mr * nr}',
        "    scalar accumulators, which the SLP vectorizer keeps in registers; straight-line loads and",
        '    stores of whole rows vectorise too (a loop would stay scalar: loop vectorisation is off)."""',
    ]
    lines.append(
        "    z = np.float32(0)  # unified with the inputs: float32 stays float32, float64 in float64"
    )
    # unsigned indices: no negative-index wraparound, whose branches would block the vectorizer
    lines += [f"    r{i} = i0 + np.uint64({i})" for i in range(mr)]
    lines += [f"    q{j} = j0 + np.uint64({j})" for j in range(nr)]
    # from zero, C read only after the k loop: its cache misses (C is larger than L2) overlap the loop's tail
    # instead of stalling its first multiply-adds
    lines += [f"    c{i}_{j} = z" for i in range(mr) for j in range(nr)]
    lines.append("    for p in range(kc):")
    lines += [f"        b{j} = bp[p, {j}]" for j in range(nr)]
    for i in range(mr):
        lines.append(f"        a{i} = ap[p, {i}]")
        lines += [f"        c{i}_{j} += a{i} * b{j}" for j in range(nr)]
    lines += [f"    c[r{i}, q{j}] {op} c{i}_{j}" for i in range(mr) for j in range(nr)]
    return lines


def _driver(mr, nr):
    """gemm_MRxNR(a, b, c, kc, mc, parts): the blocked loops around the micro-kernels of one tile."""
    t = f"{mr}x{nr}"
    return [
        "",
        "",
        "@njit(parallel=True, cache=True)",
        f"def gemm_{t}(a, b, c, kc, mc, parts):",
        f'    """c (m, n) = a (m, k) @ b (k, n), all C-contiguous, in {t} tiles. K in blocks of kc: b\'s '
        "block packed",
        "    once (in parallel), then the rows of a split into `parts` (one a thread) of whole MR-row "
        "panels, as",
        "    even as panels allow; each part, in blocks of mc rows (a multiple of MR), packs its block of a "
        "and runs",
        '    the micro-kernel over every tile. The first K block stores into c, the later ones add."""',
        f"    MR, NR = {mr}, {nr}",
        "    m, k = a.shape",
        "    n = b.shape[1]",
        "    npan = (n + NR - 1) // NR",
        "    bp = aligned(npan, kc, NR, a)",
        "    panels = (m + MR - 1) // MR",
        "    for kb in range(0, k, kc):",
        "        kcb = min(kc, k - kb)",
        "        first = kb == 0",
        "        for jp in prange(npan):  # bp[jp, p, j] = b[kb + p, jp * NR + j], zero-padded",
        "            j0 = jp * NR",
        "            if j0 + NR <= n:  # a whole panel: straight-line rows, no test per element",
        "                for p in range(kcb):",
        "                    for j in range(NR):",
        "                        bp[jp, p, j] = b[kb + p, j0 + j]",
        "            else:",
        "                for p in range(kcb):",
        "                    for j in range(NR):",
        "                        bp[jp, p, j] = b[kb + p, j0 + j] if j0 + j < n else 0",
        "        for part in prange(parts):",
        "            r0 = part * panels // parts * MR",
        "            r1 = min(m, (part + 1) * panels // parts * MR)",
        "            ap = aligned((mc + MR - 1) // MR, kc, MR, a)  # this part's block of a, packed k-major",
        "            t = np.empty((MR, NR), dtype=c.dtype)",
        "            for i_start in range(r0, r1, mc):",
        "                mpan = (min(mc, r1 - i_start) + MR - 1) // MR",
        "                for ip in range(mpan):",
        "                    for p in range(kcb):",
        "                        for i in range(MR):",
        "                            row = i_start + ip * MR + i",
        "                            ap[ip, p, i] = a[row, kb + p] if row < m else 0",
        "                for jp in range(npan):",
        "                    j0 = jp * NR",
        "                    for ip in range(mpan):",
        "                        i0 = i_start + ip * MR",
        "                        if i0 + MR <= m and j0 + NR <= n:  # a whole tile, in place",
        "                            if first:",
        f"                                set_{t}(ap[ip], bp[jp], kcb, c, np.uint64(i0), np.uint64(j0))",
        "                            else:",
        f"                                add_{t}(ap[ip], bp[jp], kcb, c, np.uint64(i0), np.uint64(j0))",
        "                            continue",
        f"                        set_{t}(ap[ip], bp[jp], kcb, t, np.uint64(0), np.uint64(0))  # an edge "
        "tile's valid part:",
        "                        for i in range(min(MR, m - i0)):",
        "                            for j in range(min(NR, n - j0)):",
        "                                c[i0 + i, j0 + j] = t[i, j] if first else c[i0 + i, j0 + j] + t[i, "
        "j]",
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
    for mr, nr in sorted({tile for by_dtype in TILES.values() for tile in by_dtype.values()}):
        t = f"{mr}x{nr}"
        lines += _micro(f"set_{t}", f"c[i0:i0+{mr}, j0:j0+{nr}] = the tile (the first K block)", "=", mr, nr)
        lines += _micro(
            f"add_{t}", f"c[i0:i0+{mr}, j0:j0+{nr}] += the tile (the later K blocks)", "+=", mr, nr
        )
        lines += _driver(mr, nr)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(generate(), end="")
