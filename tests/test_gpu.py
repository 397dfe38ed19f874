"""
The GPU code paths against the CPU reference (`benchmarks/gpu_check.py`): run where CUDA is
available, skipped elsewhere. The script itself is checked on the CPU so that it is known to run
before it reaches a GPU machine.
"""
import importlib.util
import json
import sys

import pytest
import torch

from conftest import REPO_ROOT


def _benchmark_module(name: str):
    """benchmarks/NAME.py as the module NAME, as a script in that folder imports it."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_benchmark_module("toolbox")  # gpu_check imports it from its own folder
gpu_check = _benchmark_module("gpu_check")

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
SENTENCES = gpu_check.conll_like_sentences(24, seed=1)


@cuda
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_fast_bilm_on_cuda_matches_the_cpu(dtype):
    check = gpu_check.check_bilm("cuda", dtype, SENTENCES)
    assert check["ok"], check


@cuda
@pytest.mark.parametrize("check", [gpu_check.check_char_cache, gpu_check.check_activation_cache])
def test_caches_on_cuda(check):
    result = check("cuda", SENTENCES)
    assert result["ok"], result


@cuda
def test_batched_viterbi_on_cuda_matches_the_cpu():
    result = gpu_check.check_viterbi("cuda")
    assert result["ok"], result


def test_the_prepared_check_runs_and_reports_every_path(tmp_path, capsys):
    # On the CPU the device and the reference are the same machine: this checks the script runs
    # and writes its report, not the GPU.
    assert gpu_check.main(["--device", "cpu", "--quick", "--json", str(tmp_path / "report.json")]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert [check["check"] for check in report["checks"]] == [
        "biLM float32", "character cache", "activation cache", "batched Viterbi"]
    assert "| batched Viterbi |" in capsys.readouterr().out
