"""Channel arithmetic shared by layers and blocks (the lowest level, so both can import it)."""

from __future__ import annotations


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` without losing more than 10%.

    The rounding of the TF MobileNet reference (``_make_divisible``), used by MobileNet v2/v3,
    every width multiplier built on them and :class:`~keras_cnn.layers.SqueezeExcite`.

    Example:
        >>> make_divisible(72 / 4), make_divisible(32 * 0.35), make_divisible(10, 8)
        (24, 16, 16)
    """
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


__all__ = ["make_divisible"]
