r"""Distances between vectors: ``pairwise_distance`` and ``cosine_similarity``.

Functional and class, with torch 2.13.0's formulas, broadcasting, eps handling and gradients.

Both differ from the textbook formulas in ways that show up in values and gradients, and both
are reproduced exactly:

* ``pairwise_distance`` adds ``eps`` to the *difference*: $\\lVert x_1 - x_2 + \\epsilon
  \\rVert_p$, so identical vectors are ``eps * D**(1/p)`` apart, not 0.
* ``cosine_similarity`` normalises each input by ``max(||x||, eps)`` and sums the product of the
  normalised vectors. torch clamps the norms in place under ``no_grad``, so the gradient flows
  through the clamp as if it were the identity (the norm's own gradient, ``x / ||x||``, is used
  even where ``||x|| < eps``).

The p-norm's gradient is torch's ``norm_backward``: 0 at a zero vector (not NaN), ``sign(x)`` for
``p == 1`` (0 at 0), the gradient split evenly between ties for ``p == inf``, nothing for
``p == 0``. It is implemented as a ``jax.custom_jvp``, so ``jit``/``grad``/``vmap`` all work.
"""

from __future__ import annotations

import functools
import math
import operator

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._torch_semantics import as_array, broadcast_arrays, check_real, clamp_min_no_grad, compute_dtype, static_number


def _sgn(x):
    """Torch's ``sign`` for reals: -1, 0 or 1, and 0 for NaN (``jnp.sign`` gives NaN)."""
    return (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)


def _norm_value(x, p: float, axis, keepdims: bool):
    ax = jnp.abs(x)
    if p == 0:
        return jnp.sum((x != 0).astype(x.dtype), axis=axis, keepdims=keepdims)
    if p == 1:
        return jnp.sum(ax, axis=axis, keepdims=keepdims)
    if p == 2:
        return jnp.sqrt(jnp.sum(x * x, axis=axis, keepdims=keepdims))
    if p == math.inf:
        return jnp.max(ax, axis=axis, keepdims=keepdims, initial=0.0)
    if p == -math.inf:
        return jnp.min(ax, axis=axis, keepdims=keepdims, initial=math.inf)
    return jnp.sum(ax**p, axis=axis, keepdims=keepdims) ** (1.0 / p)


def _norm_coefficient(x, norm, p: float, axis):
    """d||x||_p / dx as torch's ``norm_backward`` computes it (``norm`` has kept dims)."""
    zero = jnp.zeros((), x.dtype)
    if p == 0:
        return jnp.zeros_like(x)
    if p == 1:
        return _sgn(x)
    if p == 2:
        return jnp.where(norm == 0, zero, x / jnp.where(norm == 0, 1, norm))
    if math.isinf(p):
        ax = jnp.abs(x)
        mask = (ax == norm) | jnp.isnan(ax)
        count = jnp.sum(mask.astype(x.dtype), axis=axis, keepdims=True)
        return _sgn(x) * mask.astype(x.dtype) / count
    ax = jnp.abs(x)
    if p < 1:
        scaled = _sgn(x) * jnp.where(x == 0, zero, ax ** (p - 1))
        return scaled * norm ** (1 - p)
    scaled = _sgn(x) * ax ** (p - 1) if p < 2 else x * ax ** (p - 2)
    inv = jnp.where(norm == 0, zero, 1 / norm ** (p - 1))
    return scaled * inv


# Defined once for every (p, axis, keepdims): they are static arguments (nondiff_argnums, hashable
# Python values, never traced), where a custom_jvp and its rule built anew at each call would
# hide that the rule is the same function of them.
@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def _norm(x, p: float, axis: int, keepdims: bool):
    """``||x||_p`` along ``axis`` whose derivative is torch's ``norm_backward``.

    See the module docstring: a custom JVP for torch's gradient at zero vectors, ``p == 1`` kinks
    and ``p == inf`` ties, where autodiff of ``_norm_value`` gives NaN or another subgradient.
    """
    return _norm_value(x, p, axis, keepdims)


@_norm.defjvp
def _norm_jvp(p, axis, keepdims, primals, tangents):
    (x,), (t,) = primals, tangents
    out = _norm(x, p, axis, keepdims)
    kept = out if keepdims else jnp.expand_dims(out, axis)
    coef = _norm_coefficient(x, kept, p, axis)
    return out, jnp.sum(coef * t, axis=axis, keepdims=keepdims)


def vector_norm(x: jax.Array, p: float, axis: int, keepdims: bool = False) -> jax.Array:
    """``torch.linalg.vector_norm(x, p, dim=axis, keepdim=keepdims)`` with torch's gradient."""
    if x.ndim == 0:  # torch reduces a 0-d tensor over "dim -1 / 0" to itself
        return _norm(x.reshape(1), float(p), 0, bool(keepdims)).reshape(())
    return _norm(x, float(p), int(axis), bool(keepdims))


class DimensionError(ValueError, IndexError):
    """The error for a ``dim`` outside the input's dimensions.

    A ``ValueError`` (the project's rule for bad arguments) that is also the ``IndexError`` torch
    raises.
    """


def _real_array(x, name: str, fn: str, allow_bool: bool = False):
    x = as_array(x, name, fn)
    check_real(x, name, fn, allow_bool)
    return x


def pairwise_distance(
    x1: ArrayLike, x2: ArrayLike, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> jax.Array:
    r"""p-norm distance along the last dimension, as ``torch.nn.functional.pairwise_distance``.

    $$
    d = \lVert x_1 - x_2 + \epsilon \rVert_p
    = \Big(\sum_j |x_{1,j} - x_{2,j} + \epsilon|^p\Big)^{1/p}
    $$

    ``eps`` is added to the difference, as torch does (identical vectors are
    $\epsilon D^{1/p}$ apart). ``p`` may be any real: ``0`` counts non-zero entries,
    ``inf`` / ``-inf`` take the largest / smallest magnitude, negative values give torch's
    $(\sum |d_j|^p)^{1/p}$.

    Args:
      x1: vectors along the last dimension; broadcasts with ``x2``. Integers are promoted to
        float.
      x2: as ``x1``.
      p: the norm's degree, any real.
      eps: added to the difference.
      keepdim: keep the last dimension, of size 1.

    Returns:
      The broadcast shape without its last dimension (kept as 1 with ``keepdim=True``); 0-d
      inputs give a 0-d distance.

    Raises:
      ValueError: shapes that do not broadcast.

    Gradients follow torch's ``norm_backward``: 0 at a zero difference (only reachable with
    ``eps=0``), ``sign`` for ``p=1``, ties share the gradient for ``p=inf``, none for ``p=0``.

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> x1 = jnp.array([[0.0, 0.0], [1.0, 1.0]])
      >>> x2 = jnp.array([[3.0, 4.0], [1.0, 1.0]])
      >>> F.pairwise_distance(x1, x2).round(4)
      Array([5., 0.], dtype=float32)
      >>> F.pairwise_distance(x1, x2, p=1, keepdim=True).round(4)
      Array([[7.],
             [0.]], dtype=float32)
    """
    fn = "pairwise_distance"
    x1 = _real_array(x1, "x1", fn)  # torch cannot subtract booleans
    x2 = _real_array(x2, "x2", fn)
    p = static_number(p, "p", fn)
    eps = static_number(eps, "eps", fn)
    a, b = broadcast_arrays(fn, x1=x1, x2=x2)
    work, out = compute_dtype(x1.dtype, x2.dtype)
    diff = a.astype(work) - b.astype(work) + jnp.asarray(eps, work)
    return vector_norm(diff, p, diff.ndim - 1, bool(keepdim)).astype(out)


def cosine_similarity(x1: ArrayLike, x2: ArrayLike, dim: int = 1, eps: float = 1e-8) -> jax.Array:
    r"""Cosine similarity along ``dim``, as ``torch.nn.functional.cosine_similarity`` (2.13).

    $$
    \mathrm{sim} = \sum_d \frac{x_{1,d}}{\max(\lVert x_1 \rVert_2, \epsilon)}
    \frac{x_{2,d}}{\max(\lVert x_2 \rVert_2, \epsilon)}
    $$

    torch 2.13 normalises each input first (so $|\mathrm{sim}| \le 1$ and no product of
    norms can overflow); a zero vector has similarity 0 with anything.

    Gradient: torch clamps the norms in place under ``no_grad``, so autograd differentiates the
    *unclamped* norm; this is reproduced (below ``eps`` the gradient is not that of a constant
    denominator). At an exactly zero vector the norm's gradient is 0, as in torch.

    Args:
      x1: vectors along ``dim``; broadcasts with ``x2``. At least one input must be floating
        point.
      x2: as ``x1``.
      dim: the axis of the vectors (negative allowed), of the broadcast shape.
      eps: the smallest norm, >= 0.

    Returns:
      The broadcast shape without ``dim``.

    Raises:
      TypeError: two integer inputs.
      ValueError: a negative ``eps``, shapes that do not broadcast, or a ``dim`` out of range
        (then also torch's ``IndexError``).

    Example:
      >>> import jax.numpy as jnp
      >>> import losses_jax as F
      >>> x1 = jnp.array([[1.0, 0.0], [1.0, 1.0]])
      >>> x2 = jnp.array([[1.0, 1.0], [-1.0, -1.0]])
      >>> F.cosine_similarity(x1, x2).round(4)
      Array([ 0.7071, -1.    ], dtype=float32)
      >>> F.cosine_similarity(x1, x2, dim=0).round(4)
      Array([ 0.    , -0.7071], dtype=float32)
    """
    fn = "cosine_similarity"
    x1 = _real_array(x1, "x1", fn, allow_bool=True)
    x2 = _real_array(x2, "x2", fn, allow_bool=True)
    if isinstance(dim, bool) or not isinstance(dim, int):
        try:
            dim = operator.index(dim)
        except TypeError as e:
            raise TypeError(f"{fn}: argument 'dim' must be int, not {type(dim).__name__}") from e
    eps = static_number(eps, "eps", fn)
    if eps < 0:
        raise ValueError(f"{fn}: 'eps' must be non-negative, got: {eps:g}")
    if not (jnp.issubdtype(x1.dtype, jnp.floating) or jnp.issubdtype(x2.dtype, jnp.floating)):
        raise TypeError(
            f"{fn}: expected the common dtype of 'x1' ({x1.dtype}) and 'x2' ({x2.dtype}) to be floating point"
        )
    a, b = broadcast_arrays(fn, x1=x1, x2=x2)
    ndim = max(a.ndim, 1)
    if not -ndim <= dim < ndim:
        raise DimensionError(
            f"{fn}: 'dim' out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})"
        )
    work, out = compute_dtype(x1.dtype, x2.dtype)
    a, b = a.astype(work), b.astype(work)
    squeeze = a.ndim == 0
    if squeeze:
        a, b = a.reshape(1), b.reshape(1)
    dim = dim % a.ndim
    n1 = clamp_min_no_grad(vector_norm(a, 2.0, dim, True), jnp.asarray(eps, work))
    n2 = clamp_min_no_grad(vector_norm(b, 2.0, dim, True), jnp.asarray(eps, work))
    res = jnp.sum((a / n1) * (b / n2), axis=dim)
    if squeeze:
        res = res.reshape(())
    return res.astype(out)


class PairwiseDistance:
    """``PairwiseDistance(p=2.0, eps=1e-6, keepdim=False)``; see [`pairwise_distance`][losses_jax.pairwise_distance].

    Not a loss (no reduction), as in torch; torch stores ``p`` as the attribute ``norm``.
    Shapes: ``(N, D)`` or ``(D)`` inputs (broadcastable), output ``(N)`` or ``()``
    (``(N, 1)`` / ``(1)`` with ``keepdim``).
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        self.norm = p
        self.eps = eps
        self.keepdim = keepdim

    def __call__(self, x1: ArrayLike, x2: ArrayLike) -> jax.Array:
        return self.forward(x1, x2)

    def forward(self, x1: ArrayLike, x2: ArrayLike) -> jax.Array:
        return pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)

    def __repr__(self):
        return f"PairwiseDistance(p={self.norm}, eps={self.eps}, keepdim={self.keepdim})"

    # Equal options -> equal objects, so a loss holding one as static pytree data does not
    # retrace under jit each time it is rebuilt.
    def _key(self):
        return (type(self), self.norm, self.eps, self.keepdim)

    def __eq__(self, other):
        return isinstance(other, PairwiseDistance) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())


class CosineSimilarity:
    """``CosineSimilarity(dim=1, eps=1e-8)``; see [`cosine_similarity`][losses_jax.cosine_similarity].

    Not a loss (no reduction), as in torch. Shapes: ``(*1, D, *2)`` inputs broadcastable
    together, output ``(*1, *2)``.
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        self.dim = dim
        self.eps = eps

    def __call__(self, x1: ArrayLike, x2: ArrayLike) -> jax.Array:
        return self.forward(x1, x2)

    def forward(self, x1: ArrayLike, x2: ArrayLike) -> jax.Array:
        return cosine_similarity(x1, x2, self.dim, self.eps)

    def __repr__(self):
        return f"CosineSimilarity(dim={self.dim}, eps={self.eps})"

    def _key(self):
        return (type(self), self.dim, self.eps)

    def __eq__(self, other):
        return isinstance(other, CosineSimilarity) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())


# Options only, no arrays: both pass through jit as static pytree data.
jax.tree_util.register_pytree_node(
    PairwiseDistance, lambda d: ((), (d.norm, d.eps, d.keepdim)), lambda aux, _: PairwiseDistance(*aux)
)
jax.tree_util.register_pytree_node(
    CosineSimilarity, lambda d: ((), (d.dim, d.eps)), lambda aux, _: CosineSimilarity(*aux)
)
