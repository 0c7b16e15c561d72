"""neuraldrum: a real-time neural drum machine (conditional WAE + multi-head CNN inverter) on a CPU."""
__version__ = "0.1.0"

from .taxonomy import CLASSES

__all__ = ["CLASSES", "__version__"]
