"""Number formatting shared by every explanation line, so that the same value always reads the same."""


def fmt(value: float) -> str:
    """Whole numbers without decimals, others to two decimals: 3, 4.67, 0.1."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")
