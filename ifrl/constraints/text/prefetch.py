"""A software prefetch for the numba kernels (LLVM's ``llvm.prefetch``)."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LINE = 64  # bytes per cache line


@intrinsic
def prefetch_row(typingctx, arr, row, nbytes):
    """Ask the CPU to bring ``arr[row, :]`` of a C-ordered 2-D array into cache: one
    prefetch (for reading, all cache levels) per 64-byte line of the first ``nbytes``
    bytes of the row, ``nbytes`` a compile-time constant. A hint only: it never faults,
    and the values read afterwards are the same."""
    if not isinstance(nbytes, types.IntegerLiteral):
        return None
    n_lines = (nbytes.literal_value + LINE - 1) // LINE
    sig = types.void(arr, row, nbytes)

    def codegen(context, builder, signature, args):
        aryty, rowty, _ = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        r = context.cast(builder, args[1], rowty, types.intp)
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer2(context, builder, data=ary.data, shape=cgutils.unpack_tuple(builder, ary.shape),
                                        strides=cgutils.unpack_tuple(builder, ary.strides), layout=aryty.layout,
                                        inds=[r, zero], wraparound=False, boundscheck=False)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ir.PointerType(), i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        base = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        for i in range(n_lines):  # read (0), keep in all levels (3), data cache (1)
            line = builder.gep(base, [ir.Constant(ir.IntType(64), i * LINE)])
            builder.call(fn, [line, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen
