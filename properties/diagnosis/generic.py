"""The generic input of a call, for the diagnosis's second call (properties.diagnosis).

A minimal failing input is often degenerate: a 1-row window makes p_h² = p_h·p_w, a square
kernel hides a swapped height and width, one channel hides a wrong channel axis. Before a
mistake is named, the target is called again on generic arguments of the same kind: every
tensor redrawn from a seeded standard normal (positive where it is a variance) and, for the
names whose mistakes hide in sizes, generic sizes — no unit sizes among the dimensions that
matter, kernel sides distinct, inputs non-square, channel counts distinct. The other
arguments (modes, flags, eps, momentum) are kept, as are the sizes of the functional
dialect's calls, whose mistakes depend on the exact arithmetic of size, stride and padding
(but a conv2d with 'same' padding gets odd kernel sides, which tell a 'same' padding split
wrongly from an output one short).

    generic_params(name, params, generator) -> params of the second call, by name
"""
from __future__ import annotations

import torch

F64 = torch.float64


def _draw(shape, like: torch.Tensor, generator: torch.Generator,
          positive: bool = False) -> torch.Tensor:
    fresh = torch.randn(tuple(shape), generator=generator, dtype=F64)
    return (fresh.abs() + 0.5 if positive else fresh).to(like.dtype)


def _sides(kh: int, kw: int) -> tuple[int, int]:
    """Window sides of at least 2, distinct."""
    kh, kw = max(kh, 2), max(kw, 2)
    return (kh, kw + 1) if kh == kw else (kh, kw)


def _input_sides(kh: int, kw: int) -> tuple[int, int]:
    """An input larger than the window by distinct margins, non-square."""
    h, w = kh + 3, kw + 4
    return (h, w + 1) if h == w else (h, w)


def _channels(*counts: int) -> list[int]:
    """At least 2 each, and distinct from each other."""
    found = []
    for count in counts:
        count = max(count, 2)
        while count in found:
            count += 1
        found.append(count)
    return found


def _correlation(p: dict, g: torch.Generator) -> dict:
    """corr2d (h, w)·(kh, kw); multi_in (ci, ...); multi_in_out (co, ci, ...); 1×1 keeps its
    1×1 window."""
    X, K = p["X"], p["K"]
    one_by_one = K.dim() == 4 and tuple(K.shape[-2:]) == (1, 1)
    kh, kw = (1, 1) if one_by_one else _sides(*K.shape[-2:])
    h, w = _input_sides(kh, kw) if not one_by_one else _input_sides(2, 3)
    if K.dim() == 2:
        return {**p, "X": _draw((h, w), X, g), "K": _draw((kh, kw), K, g)}
    if K.dim() == 3:
        (ci,) = _channels(K.shape[0])
        return {**p, "X": _draw((ci, h, w), X, g), "K": _draw((ci, kh, kw), K, g)}
    co, ci = _channels(K.shape[0], K.shape[1])
    return {**p, "X": _draw((ci, h, w), X, g), "K": _draw((co, ci, kh, kw), K, g)}


def _pool2d(p: dict, g: torch.Generator) -> dict:
    size = p["pool_size"]
    ph, pw = _sides(*((size, size) if isinstance(size, int) else size))
    return {**p, "X": _draw(_input_sides(ph, pw), p["X"], g), "pool_size": (ph, pw)}


def _batch_norm(p: dict, g: torch.Generator) -> dict:
    """N ≥ 4 and C ≥ 2 (distinct), 4-D inputs H × W non-square; every per-channel tensor
    redrawn in its own layout ((C,), (1, C) or (1, C, 1, 1))."""
    x_name = "input" if "input" in p else "X"
    X = p[x_name]
    n, c = _channels(max(X.shape[0], 4), X.shape[1])
    shape = (n, c) + ((3, 5) if X.dim() == 4 else tuple(X.shape[2:]))
    fresh = {x_name: _draw(shape, X, g)}
    for name, value in p.items():
        if name != x_name and isinstance(value, torch.Tensor) and value.dtype.is_floating_point:
            layout = _per_channel_layout(value, c)
            fresh[name] = _draw(layout, value, g, positive="var" in name)
    return {**p, **fresh}


def _per_channel_layout(value: torch.Tensor, channels: int) -> tuple[int, ...]:
    """A per-channel tensor's shape for `channels` channels: (C,) for a vector, else its
    axis 1 ((1, C), (1, C, 1, 1))."""
    shape = list(value.shape)
    shape[0 if value.dim() == 1 else 1] = channels
    return tuple(shape)


def _same_sizes(p: dict, g: torch.Generator) -> dict:
    """New values, the same sizes (the functional dialect's calls)."""
    return {k: _draw(v.shape, v, g, positive="var" in k)
            if isinstance(v, torch.Tensor) and v.dtype.is_floating_point else v
            for k, v in p.items()}


def _conv2d(p: dict, g: torch.Generator) -> dict:
    """New values, the same sizes; with 'same' padding, odd kernel sides (k + 1 for an even
    k), where a 'same' padding split wrongly cannot show but an output one short still does."""
    fresh = _same_sizes(p, g)
    if p.get("padding") == "same":
        weight = fresh["weight"]
        shape = (*weight.shape[:2], *(k + 1 - k % 2 for k in weight.shape[2:]))
        fresh["weight"] = _draw(shape, weight, g)
    return fresh


GENERIC = {"conv2d": _conv2d, "corr2d": _correlation, "corr2d_multi_in": _correlation,
           "corr2d_multi_in_out": _correlation, "corr2d_multi_in_out_1x1": _correlation,
           "pool2d": _pool2d, "batch_norm": _batch_norm}


def generic_params(name: str, params: dict, generator: torch.Generator) -> dict:
    """The second call's arguments by name (module docstring)."""
    return GENERIC.get(name, _same_sizes)(params, generator)
