"""What a sound is made from, as data: the instrument's controls and a :class:`Voice`.

A voice names everything that decides a sound, so the same voice with the same model gives the same sound:

1. a **start** in the latent space: an explicit ``z`` (an encoded sample's), else a draw from the class prior
   with ``seed`` (t = ``temperature``, the model's own when None): N(mean_c, t²·Σ_c) when the model stores a
   class prior, N(0, t²·I) otherwise (see :meth:`neuraldrum.engine.Engine.sample_prior`), else the class centre;
2. the **controls** (the paper's XY pad, fine knob and range) move from the start;
3. a **variation**: ``amount`` · N(0, I) drawn with ``variation_seed`` is added;
4. the **sampler controls** (tune, decay, velocity, length) shape the finished waveform.

Voices and controls are frozen and hashable (the sound service caches by voice) and round-trip through JSON
(kits store them). Validation happens here, at the boundary, and every error names the field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Optional, Union

from .sampler import SamplerControls


def _number(name: str, v: Any, lo: float = -math.inf, hi: float = math.inf, lo_open: bool = False) -> float:
    """``v`` as a finite float within [lo, hi] (or (lo, hi] when ``lo_open``), or a ValueError naming ``name``."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "__float__"):
        raise ValueError(f"{name}={v!r} must be a number")
    try:
        f = float(v)
    except (OverflowError, TypeError, ValueError):
        f = math.nan
    if not math.isfinite(f) or f < lo or f > hi or (lo_open and f == lo):
        bracket = "(" if lo_open else "["
        raise ValueError(f"{name}={v!r:.40} must be a finite number in {bracket}{lo:g}, {hi:g}]")
    return f


def _seed(name: str, v: Any) -> Optional[int]:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) and not (hasattr(v, "__index__")):
        raise ValueError(f"{name}={v!r} must be an integer")
    v = int(v)
    if not 0 <= v < 2 ** 63:
        raise ValueError(f"{name}={v!r:.40} must be in [0, 2**63)")
    return v


@dataclass(frozen=True)
class Controls:
    """The instrument's controls. x, y, fine in [-1, 1]; range > 0 (the paper's 2, 5 or 10).

    With ``axes="pca"`` the offset from the starting point is range · (x·s1·P1 + y·s2·P2 + fine·s3·P3)/2
    where s_k is the spread of the class's latents along P_k, so range 2 reaches one standard deviation.
    With ``axes=(i, j)`` x and y move latent dimensions i and j by range · value / 2.
    """

    x: float = 0.0
    y: float = 0.0
    fine: float = 0.0
    range: float = 2.0
    axes: Union[str, tuple] = "pca"

    def validate(self) -> "Controls":
        for name in ("x", "y", "fine"):
            _number(f"control {name}", getattr(self, name), -1.0, 1.0)
        _number("control range", self.range, 0.0, 1e3, lo_open=True)
        if self.axes != "pca":
            ok = isinstance(self.axes, (tuple, list)) and len(self.axes) == 2 and all(
                isinstance(a, int) and not isinstance(a, bool) and a >= 0 for a in self.axes)
            if not ok:
                raise ValueError(f"control axes={self.axes!r}: use 'pca' or two latent dimensions (i, j)")
        return self

    def to_dict(self) -> dict:
        return {"x": self.x, "y": self.y, "fine": self.fine, "range": self.range,
                "axes": self.axes if self.axes == "pca" else list(self.axes)}

    @classmethod
    def from_dict(cls, d: dict, where: str = "controls") -> "Controls":
        d = _known(d, cls, where)
        if isinstance(d.get("axes"), list):
            d["axes"] = tuple(d["axes"])
        try:
            return cls(**d).validate()
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None


def _known(d: Any, cls: type, where: str) -> dict:
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected an object, got {type(d).__name__}")
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
    return dict(d)


@dataclass(frozen=True)
class Voice:
    """One sound, as data (see the module docstring for how each field is used).

    Args:
        cls: class name.
        seed: prior draw used as the start when ``z`` is None (None and no ``z``: the class centre).
        temperature: prior spread for ``seed`` (None = the model's own).
        z: a start latent, (D,) as a tuple of floats.
        controls: XY pad / fine / range, moving from the start.
        amount: variation size (latent noise scale, ≥ 0), drawn with ``variation_seed``.
        variation_seed: seed of the variation noise (needed when ``amount`` > 0).
        sampler: tune, decay, velocity, length, applied to the waveform.
    """

    cls: str
    seed: Optional[int] = None
    temperature: Optional[float] = None
    z: Optional[tuple] = None
    controls: Optional[Controls] = None
    amount: float = 0.0
    variation_seed: Optional[int] = None
    sampler: SamplerControls = field(default_factory=SamplerControls)

    def validate(self) -> "Voice":
        if not isinstance(self.cls, str) or not self.cls:
            raise ValueError(f"voice class={self.cls!r} must be a class name")
        _seed("voice seed", self.seed)
        _seed("voice variation_seed", self.variation_seed)
        if self.temperature is not None:
            _number("voice temperature", self.temperature, 0.0, 10.0)
        if self.z is not None:
            if not isinstance(self.z, tuple) or not self.z:
                raise ValueError("voice z must be a non-empty tuple of numbers")
            for k, v in enumerate(self.z):
                _number(f"voice z[{k}]", v, -1e4, 1e4)
        if self.controls is not None:
            if not isinstance(self.controls, Controls):
                raise ValueError(f"voice controls must be Controls, not {type(self.controls).__name__}")
            self.controls.validate()
        if _number("voice amount", self.amount, 0.0, 100.0) > 0 and self.variation_seed is None:
            raise ValueError("voice amount > 0 needs a variation_seed (so the sound can be remade)")
        if not isinstance(self.sampler, SamplerControls):
            raise ValueError(f"voice sampler must be SamplerControls, not {type(self.sampler).__name__}")
        self.sampler.validate()
        return self

    def with_z(self, z) -> "Voice":
        """The same voice starting from latent ``z`` (any sequence of numbers)."""
        return replace(self, z=tuple(float(v) for v in z), seed=None, temperature=None)

    def to_dict(self) -> dict:
        """JSON-friendly; fields left at their defaults are omitted."""
        d: dict = {"class": self.cls}
        for name in ("seed", "temperature", "variation_seed"):
            if getattr(self, name) is not None:
                d[name] = getattr(self, name)
        if self.z is not None:
            d["z"] = [float(v) for v in self.z]
        if self.controls is not None:
            d["controls"] = self.controls.to_dict()
        if self.amount:
            d["amount"] = self.amount
        if self.sampler != SamplerControls():
            d["sampler"] = self.sampler.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "voice") -> "Voice":
        """Inverse of :meth:`to_dict`; errors name ``where`` and the field."""
        if not isinstance(d, dict):
            raise ValueError(f"{where}: expected an object, got {type(d).__name__}")
        d = dict(d)
        if "class" not in d:
            raise ValueError(f"{where}: missing field 'class'")
        d["cls"] = d.pop("class")
        d = _known(d, cls, where)
        if d.get("z") is not None:
            if not isinstance(d["z"], list):
                raise ValueError(f"{where}.z: expected a list of numbers")
            d["z"] = tuple(d["z"])
        if d.get("controls") is not None:
            d["controls"] = Controls.from_dict(d["controls"], f"{where}.controls")
        if "sampler" in d:
            try:
                d["sampler"] = SamplerControls.from_dict(d["sampler"])
            except (TypeError, ValueError, OverflowError) as e:
                raise ValueError(f"{where}.sampler: {e}") from None
        try:
            return cls(**d).validate()
        except (TypeError, ValueError, OverflowError) as e:
            raise ValueError(f"{where}: {e}") from None


def generate_voices(cls: str, n: int, seed: int, temperature: Optional[float] = None,
                    controls: Optional[Controls] = None, spread: float = 0.3,
                    sampler: Optional[SamplerControls] = None) -> list[Voice]:
    """The ``generate`` verb's ``n`` voices of a class: prior draws with seeds ``seed``, ``seed + 1``, …; or, with
    ``controls``, the controlled point first, then points around it (``spread`` · N(0, I), seeds ``seed + k``)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r}: ask for at least one sound")
    s = SamplerControls() if sampler is None else sampler
    if controls is None:
        return [Voice(cls, seed=seed + k, temperature=temperature, sampler=s).validate() for k in range(n)]
    return [Voice(cls, controls=controls, amount=spread if k else 0.0,
                  variation_seed=seed + k if k else None, sampler=s).validate() for k in range(n)]
