"""How numbers read in reports, JSON and the command line: money and counts of things."""

from __future__ import annotations

from decimal import Decimal


def decimal_str(value: Decimal | None) -> str | None:
    """A Decimal as a plain (never scientific) string for JSON; None stays None.

    Example:
        >>> decimal_str(Decimal("1E-7"))
        '0.0000001'
    """
    return None if value is None else format(value, "f")


def usd(value: Decimal | None) -> str:
    """Dollars for people: four decimals under $100, cents with thousands separators above,
    and two significant digits below $0.0001, so a non-zero amount never reads $0.0000.

    Example:
        >>> usd(Decimal("0.01234")), usd(Decimal("1234.5")), usd(None)
        ('$0.0123', '$1,234.50', 'unknown')
        >>> usd(Decimal("0.0000123")), usd(Decimal("-0.00004")), usd(Decimal(0))
        ('$0.000012', '-$0.000040', '$0.0000')
    """
    if value is None:
        return "unknown"
    if value and abs(value) < Decimal("0.00005"):
        digits = 1 - abs(value).adjusted()  # two significant digits
        text = f"{abs(value):.{digits}f}"
        return f"-${text}" if value < 0 else f"${text}"
    if value < 0:
        return f"-{usd(-value)}"
    return f"${value:.4f}" if value < 100 else f"${value:,.2f}"


def plural(count: int, noun: str) -> str:
    """`count` and `noun`, with an "s" unless there is exactly one.

    Example:
        >>> plural(1, "call"), plural(1200, "call")
        ('1 call', '1,200 calls')
    """
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
