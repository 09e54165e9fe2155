"""Software prefetch for numba kernels: LLVM's `llvm.prefetch`, which numba does not expose.

numba-tiled's micro-kernel streams the next packed panel of B into L2 while it computes with the
current one (`read_l2`), and asks for its tile of C before its k loop (`write_l1`): without them
each new panel of B arrived from L3 or memory at the speed of a demand miss, and the micro-kernel
waited (1024-2048^3 float32 on the Intel Xeon, 1 thread: 79 % of the FMA ceiling without, 87-89 %
with; docs/matmul-bench.md). A prefetch is a hint: it never faults and changes no value, so an
address past the end of its array is harmless, though the callers stay inside theirs.

numba's on-disk cache of the kernels that call these is keyed on gemm.py alone: after editing this
module, regenerate gemm.py (`make regen`) or delete fndcli/kernels/__pycache__, or the cached
kernels keep the old code.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _prefetch(builder, pointer, write, locality):
    i8p = builder.bitcast(pointer, ir.IntType(8).as_pointer())
    i32 = ir.IntType(32)
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32]), "llvm.prefetch.p0"
    )
    # (address, 0 read / 1 write, locality 0-3: 3 keeps it in L1, 2 in L2 (prefetcht1), data cache: 1)
    builder.call(fn, [i8p, ir.Constant(i32, write), ir.Constant(i32, locality), ir.Constant(i32, 1)])


@intrinsic
def read_l2(typingctx, flat, index):
    """Prefetch flat[index] (a 1-d array) into L2 for reading (x86: prefetcht1)."""

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        _prefetch(builder, builder.gep(array.data, [args[1]]), 0, 2)
        return context.get_dummy_value()

    return types.void(flat, types.intp), codegen


@intrinsic
def write_l1(typingctx, matrix, i, j):
    """Prefetch matrix[i, j] (a 2-d array, any strides) into L1 for writing (x86: prefetchw)."""

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        array = context.make_array(aryty)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, aryty, array, [args[1], args[2]])
        _prefetch(builder, pointer, 1, 3)
        return context.get_dummy_value()

    return types.void(matrix, types.intp, types.intp), codegen
