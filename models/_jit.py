"""``models.jit``: ``jax.jit`` with the compile options under which the layers run fastest."""

from __future__ import annotations

import jax

from . import _cpu

__all__ = ["jit"]


def jit(fun, **jit_kwargs):
    """``jax.jit(fun, **jit_kwargs)``, compiled the way the models train fastest.

    It returns JAX's own jitted function (``.lower``, ``.trace``, ``.eval_shape`` work).

    On CPU (the default backend when ``jit`` is called) it adds the compile option
    ``xla_cpu_experimental_ynn_fusion_type`` (``models._cpu.compiler_options``),
    merged under any ``compiler_options`` you pass: XLA then runs convolutions with its own multi-threaded
    kernels instead of YNNPACK's single-threaded ones (jaxlib 0.10.2), while dots and reductions stay on
    YNNPACK. The plain layers (``cpu_impl="xla"``, the default) are fastest under it. Where the installed
    jaxlib does not know the option (it is experimental; probed once), and on other backends, it is exactly
    ``jax.jit(fun, **jit_kwargs)``.

    Compile options belong to the program XLA compiles, so put ``models.jit`` outermost: where
    it adds options, JAX refuses to trace the function inside another ``jax.jit`` / ``nnx.jit``
    or under ``grad`` / ``vjp`` (``ValueError: `compiler_options` can only be passed to top-level
    `jax.jit```); ``vmap`` and ``jvp`` around it work. Differentiate inside the function instead
    (``models.jit(nnx.value_and_grad(loss_fn))``), and use ``jax.jit`` for functions that are
    also called from inside other traces.

    This is ``jax.jit``, not ``nnx.jit``: NNX modules can be passed (they are pytrees), but
    in-place updates inside ``fun`` are not written back; return the new state instead (for
    example with ``nnx.split`` / ``nnx.merge``).
    """
    if jax.default_backend() == "cpu" and (options := _cpu.compiler_options()):
        jit_kwargs["compiler_options"] = {**options, **(jit_kwargs.get("compiler_options") or {})}
    return jax.jit(fun, **jit_kwargs)
