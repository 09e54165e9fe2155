"""The BLAS and OpenMP thread pools of this process, through threadpoolctl: `--threads` reaches them, and a
run names the BLAS that numpy's `a @ b` called.

torch.set_num_threads sizes torch's own pool (and OpenMP's); numpy's BLAS (OpenBLAS in numpy's wheels, MKL or
OpenBLAS in conda's) keeps a pool of its own, sized to every core when it loads unless OPENBLAS_NUM_THREADS or
OMP_NUM_THREADS says otherwise. threadpoolctl finds each such library loaded in the process and sets its
threads. torch's own BLAS (MKL, oneDNN) is linked into torch and is not among them: torch's threads are its.
Imported by the processes that check and time (never by `fnd --help`): threadpoolctl and numpy load here.
"""


def limit(threads):
    """Every BLAS and OpenMP pool of this process held to `threads` (None: left as it is). The limit holds
    from this call; used as a context manager, the pools' sizes come back on leaving it."""
    import numpy  # noqa: F401  (its BLAS loads with it: a library not yet loaded is not limited)
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def describe():
    """Each BLAS loaded in this process as threadpoolctl reports it, '; '-joined ('' if none):
    'openblas 0.3.31 (Haswell, pthreads, 1 thread)'."""
    from threadpoolctl import threadpool_info

    return "; ".join(_one(lib) for lib in threadpool_info() if lib["user_api"] == "blas")


def _one(lib):
    n = lib["num_threads"]
    facts = [lib.get("architecture"), lib.get("threading_layer"), f"{n} thread{'s' if n != 1 else ''}"]
    return f"{lib['internal_api']} {lib['version']} ({', '.join(f for f in facts if f)})"
