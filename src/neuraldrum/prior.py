"""The class prior's numbers checked without torch (bundles and the torch-free ONNX engine both use it)."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np


def check_prior(mean: Any, chol: Any, n_classes: int, latent_dim: int) -> Optional[str]:
    """Why (mean, chol) is not a class prior for C = ``n_classes`` and D = ``latent_dim`` (None when it is):
    float32 (C, D) and (C, D, D), finite, each chol[c] lower-triangular with a positive diagonal."""
    C, D = n_classes, latent_dim
    for name, a, shape in (("prior.mean", mean, (C, D)), ("prior.chol", chol, (C, D, D))):
        if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.shape != shape:
            what = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
            return f"{name}: {what} where float32 {shape} is needed (C = classes, D = latent dim)"
        if not np.all(np.isfinite(a)):
            return f"{name}: holds NaN or infinite values"
    if np.any(np.triu(chol, k=1) != 0):
        return "prior.chol: not lower-triangular (a lower Cholesky factor has zeros above the diagonal)"
    diag = np.diagonal(chol, axis1=1, axis2=2)
    if not np.all(diag > 0):
        return "prior.chol: a diagonal value is not positive"
    return None
