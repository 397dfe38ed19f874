"""
A full disk, simulated: `write_on_a_full_disk` runs a write in a child process that cannot
write any file past a given size (`RLIMIT_FSIZE`, with `SIGXFSZ` ignored, so that a write past
it fails as one on a full disk does: Python raises `OSError`, torch a `RuntimeError`).

The child is a fork of the test, not `python -c`: it has the test's objects (a trained model, a
trainer) and imports nothing, where a new interpreter importing any `ner_elmo` module imports
allennlp (about 25 s). A child that runs torch must come from a test with one torch thread
(`one_torch_thread`): a fork has no thread pool.
"""
import os
import resource
import select
import signal
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional


def fill_the_disk(limit: int) -> None:
    """From now on no file of this process grows past `limit` bytes. Only in a child."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def write_on_a_full_disk(write: Callable[[], object], limit: Optional[int], timeout: float = 120.0) -> str:
    """
    Runs `write()` in a forked child in which no file can grow past `limit` bytes (None: `write`
    calls `fill_the_disk` itself), and returns what it raised (`repr`), or "returned".
    """
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(reader)
            # Output to pytest's capture files would fail past the limit too.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            try:
                if limit is not None:
                    fill_the_disk(limit)
                write()
                outcome = "returned"
            except BaseException as error:  # reported to the parent
                outcome = repr(error)
            os.write(writer, outcome.encode("utf-8", "replace"))
        finally:
            os._exit(0)
    os.close(writer)
    chunks = []
    deadline = time.monotonic() + timeout
    with os.fdopen(reader, "rb", buffering=0) as stream:
        while True:
            if not select.select([stream], [], [], max(0.0, deadline - time.monotonic()))[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise AssertionError(f"the child was still writing after {timeout} s")
            chunk = stream.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"the child died: {status}"
    return b"".join(chunks).decode("utf-8")


def hit_the_limit(outcome: str) -> bool:
    """Whether `write_on_a_full_disk`'s child failed for want of room: Python's EFBIG, or the
    short write torch.save reports."""
    return "File too large" in outcome or "unexpected pos" in outcome


def snapshot(directory: Path) -> Dict[str, bytes]:
    """Every file under `directory`, by relative path, with its bytes."""
    return {
        str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()
    }


def temporaries(directory: Path) -> List[str]:
    """The atomic writers' temporaries (`*.partial*`) under `directory`."""
    return sorted(str(path) for path in directory.rglob("*.partial*"))
