"""Your own matmul kernels under fnd's checks and timer: a function of a (m, k) and b (k, n) returning c (m,
n).

    fnd matmul-bench --impl examples/mykernels.py:chapter_matmul --impl examples/mykernels.py:row_broadcast
    fnd matmul-bench --impl examples/mykernels.py:chapter_matmul --dtype float64  # float32 output: reported

Each is checked against float64 a @ b at every shape, then timed by the same pyperf worker
processes as the built-ins (which import this file themselves). The row's name is the
reference as given, so runs compare.
"""

import torch


def chapter_matmul(a, b):
    """The chapter's three loops, pasted unmodified (fastbook ch. 17). Its output is float32 whatever the
    inputs."""
    ar, ac = a.shape  # n_rows * n_cols
    br, bc = b.shape
    assert ac == br
    c = torch.zeros(ar, bc)
    for i in range(ar):
        for j in range(bc):
            for k in range(ac):
                c[i, j] += a[i, k] * b[k, j]
    return c


def row_broadcast(a, b):
    """One row of a at a time, as a column, broadcast against b and summed over k; in a's dtype."""
    c = torch.empty(a.shape[0], b.shape[1], dtype=a.dtype, device=a.device)  # (m, n)
    for i in range(a.shape[0]):
        c[i] = (a[i, :, None] * b).sum(dim=0)  # (k, 1) * (k, n) -> (n,)
    return c
