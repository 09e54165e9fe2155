"""The chapter's three loops, plain Python: `kernels` runs them on tensors, `jit` compiles them with numba.

Here, with neither torch nor numba imported, so the two can share the very same function.
"""


def three_loops(a, b, c):
    """c[i,j] += a[i,k] * b[k,j], in the chapter's i, j, k order (fastbook ch. 17)."""
    m, k = a.shape
    n = b.shape[1]
    for i in range(m):
        for j in range(n):
            for p in range(k):
                c[i, j] += a[i, p] * b[p, j]
