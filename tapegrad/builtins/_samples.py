"""Sample inputs for the automatic gradient checks of the built-in ops."""

from __future__ import annotations

import numpy as np


def unary_samples(rng: np.random.Generator, low: float = -2.0, high: float = 2.0):
    u = rng.uniform
    return [((u(low, high, (3, 4)),), {}), ((u(low, high, ()),), {}),
            ((u(low, high, (5,)),), {})]


def away_from_zero(rng: np.random.Generator):
    """Values in [-2, -0.2] u [0.2, 2], for ops with a kink at 0."""
    def draw(shape):
        return rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    return [((draw((3, 4)),), {}), ((draw(()),), {}), ((draw((5,)),), {})]


def binary_samples(rng: np.random.Generator):
    u = rng.uniform
    return [
        ((u(-2, 2, (3, 4)), u(-2, 2, (3, 4))), {}),
        ((u(-2, 2, (3, 4)), u(-2, 2, (4,))), {}),
        ((u(-2, 2, (3, 1)), u(-2, 2, (1, 4))), {}),
        ((u(-2, 2, ()), u(-2, 2, (3,))), {}),
        ((u(-2, 2, (3, 4)), 1.5), {}),
        ((-0.5, u(-2, 2, (2, 3))), {}),
    ]
