"""Comparison tolerances, per dtype, justified here and nowhere else.

float32 has a 24-bit significand: machine epsilon 1.19e-7. Two correct
implementations differ by rounding order (numpy sums pairwise, PyTorch in
blocks; matmul kernels reorder accumulation), so an error of a few ulps per
accumulated term is expected. For inputs bounded by |x| <= 10 and reductions
over at most ~500 terms (what the strategies draw), 1e-5 relative and 1e-5
absolute covers that with room while still catching any real mistake (a wrong
formula is off by far more than 1e-5; an off-by-one index by O(1)).

float64 has a 53-bit significand (eps 2.2e-16); PyTorch's own defaults
(1e-7/1e-7) are loose enough for the same reasons.

Central-difference gradient checks run in float64 with step h = 1e-6: the
truncation error is O(h^2 f''') ~ 1e-12 and the rounding error
O(eps |f| / h) ~ 1e-9 for |f| ~ 10, so 1e-5 is a safe, still strict bound.

Integer and bool results must match exactly.
"""

from __future__ import annotations

import numpy as np

TOLERANCES: dict[str, tuple[float, float]] = {
    # dtype name: (rtol, atol)
    "float32": (1e-5, 1e-5),
    "float64": (1e-7, 1e-7),
}

GRADCHECK_STEP = 1e-6
GRADCHECK_TOLERANCE = (1e-5, 1e-5)  # (rtol, atol) for float64 central differences


def for_dtype(dtype, scale: float = 1.0) -> tuple[float, float]:
    """(rtol, atol) for comparing values of `dtype`; `scale` widens both for long accumulations."""
    name = np.dtype(dtype).name
    if name not in TOLERANCES:
        return 0.0, 0.0  # integers and booleans: exact
    rtol, atol = TOLERANCES[name]
    return rtol * scale, atol * scale
