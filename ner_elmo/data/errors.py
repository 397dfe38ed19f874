"""Errors for malformed data files (pure Python, no allennlp import)."""
from os import PathLike
from typing import Optional, Union


class DataFormatError(ValueError):
    """
    A data file that cannot be read as its format says: names the file and the 1-based line.

    `str(error)` is `"<path>, line <line>: <message>"` (`"<path>: <message>"` when no line
    applies). `path`, `line` and `message` stay available as attributes.
    """

    def __init__(self, path: Union[str, PathLike], line: Optional[int], message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self):
        # Exceptions are rebuilt from their constructor arguments when they are unpickled (a
        # data-loader worker sending its error to the main process).
        return (type(self), (self.path, self.line, self.message))
