"""
matplotlib figures written straight to PNG files, without a display (the report commands and
the epoch-report callback run on servers).
"""
from pathlib import Path
from typing import Any, Union


def pyplot() -> Any:
    """`matplotlib.pyplot` on the file-only Agg backend (imported here: matplotlib is slow to load)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(figure: Any, output_path: Union[str, Path]) -> Path:
    """Lays `figure` out, writes it to `output_path` as a PNG at 100 dpi and closes it."""
    figure.tight_layout()
    output_path = Path(output_path)
    figure.savefig(output_path, dpi=100)
    pyplot().close(figure)
    return output_path
