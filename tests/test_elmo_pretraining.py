"""
The ELMo pretrainer (`ner_elmo.pretraining`) on tiny generated text: the loss falls, the
exported files have the reference layout and load in allennlp's `Elmo`, the stock
`elmo_token_embedder` and the `ner_elmo` embedder with the training-time module's outputs,
a killed run resumes to the same weights, bad input gets its exact message, continued
pretraining starts from the given ELMo, and two gloo processes follow one process's loss curve.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy
import pytest
import torch
from allennlp.modules.elmo import Elmo
from allennlp.modules.token_embedders import TokenEmbedder

from full_disk import hit_the_limit, snapshot, temporaries, write_on_a_full_disk
from ner_elmo.data.errors import DataFormatError
from ner_elmo.modules.elmo.char_ids import batch_to_char_ids
from ner_elmo.modules.elmo.hdf5_layout import expected_datasets, read_options, read_weights
from ner_elmo.pretraining import cli
from ner_elmo.pretraining.corpus import SentenceTokenizer
from ner_elmo.pretraining.export import OptionsError, export_elmo
from ner_elmo.pretraining.model import BiLm, LstmCellWithProjection, _step
from ner_elmo.pretraining.presets import PRESETS, preset
from ner_elmo.pretraining.softmax import Softmax, draw_log_uniform, log_expected_counts
from ner_elmo.pretraining.streams import MarkedStream, StreamBatcher
from ner_elmo.pretraining.trainer import Pretraining, TrainingSettings, load_run_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO_ROOT = Path(__file__).resolve().parents[1]

NAMES = ["Anna", "Boris", "Chen", "Dara", "Emeka", "Farah", "Goran", "Hana", "Ivo", "Jaya", "Kofi", "Lena"]
PLACES = ["Paris", "Lagos", "Oslo", "Lima", "Pune", "Quito", "Riga", "Sofia", "Turku", "Zürich"]
VERBS = ["sees", "meets", "calls", "helps", "visits", "thanks", "follows", "answers"]
THINGS = ["cat", "dog", "bird", "car", "book", "lamp", "boat", "drum"]


def generated_sentences(count: int, seed: int):
    """Sentences from a small grammar: predictable enough for a tiny biLM to learn in seconds,
    with about 200 distinct words (so the sampled softmax is used), numbers and non-ASCII."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        a, b = rng.sample(NAMES, 2)
        number = rng.randint(1, 120)
        if rng.random() < 0.5:
            lines.append(f"{a} {rng.choice(VERBS)} {b} in {rng.choice(PLACES)} on day {number}.")
        else:
            lines.append(f"The {rng.choice(THINGS)} of {a} costs {number} euros in {rng.choice(PLACES)}.")
    return lines


def tiny_settings(**changes) -> TrainingSettings:
    values = dict(preset("tiny")["training"], epochs=2, log_every=3600.0, checkpoint_every=3600.0,
                  heldout_batch_size=8)
    values.update(changes)
    return TrainingSettings(**values)


def quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    directory = tmp_path_factory.mktemp("texts")
    (directory / "train.txt").write_text("\n".join(generated_sentences(700, 0)) + "\n", encoding="utf-8")
    (directory / "heldout.txt").write_text("\n".join(generated_sentences(60, 1)) + "\n", encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def trained(texts, tmp_path_factory):
    """A tiny biLM trained 2 epochs with the default (spaCy) tokenizer, and its held-out
    perplexity before training."""
    run_dir = tmp_path_factory.mktemp("run")
    run = Pretraining.create(run_dir, [str(texts / "train.txt")], preset("tiny")["options"], tiny_settings(),
                             heldout=str(texts / "heldout.txt"), log=quiet)
    run.prepare()
    initial = run.evaluate(run.build_model())
    summary = run.train()
    return run_dir, summary, initial


def test_loss_falls(trained):
    run_dir, summary, initial = trained
    history = summary["history"]
    assert [record["at"] for record in history] == ["epoch", "epoch"]
    assert summary["vocab_size"] > 100 > PRESETS["tiny"]["training"]["num_samples"]  # sampled softmax
    perplexities = [initial["perplexity"]] + [record["perplexity"] for record in history]
    assert perplexities[0] > summary["vocab_size"] / 2  # untrained: about uniform
    assert perplexities[0] > perplexities[1] > perplexities[2]
    assert perplexities[2] < perplexities[0] / 2.5
    losses = numpy.loadtxt(run_dir / "losses.tsv")
    assert losses.shape == (summary["steps"], 3)
    assert losses[-10:, 1:].mean() < losses[:10, 1:].mean() - 1.0
    assert json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["perplexity"] == history[-1]["perplexity"]


def test_perplexity_and_export_commands(trained, texts, tmp_path, capsys):
    run_dir, summary, _ = trained
    cli.main(["perplexity", "--run-dir", str(run_dir), "--heldout", str(texts / "heldout.txt")])
    result = json.loads(capsys.readouterr().out)
    assert abs(result["perplexity"] - summary["history"][-1]["perplexity"]) < 1e-3  # the best weights'
    cli.main(["export", "--run-dir", str(run_dir), "--output-dir", str(tmp_path / "elmo"), "--weights", "last"])
    with h5py.File(tmp_path / "elmo" / "lm_weights.hdf5", "r") as ours, h5py.File(summary["weight_file"], "r") as best:
        assert sorted(ours) == sorted(best)
        for name in expected_datasets(read_options(summary["options_file"])):
            assert numpy.array_equal(ours[name][...], best[name][...]), name  # the last epoch was the best


def _layout(path):
    layout = {}
    with h5py.File(path, "r") as weights:
        weights.visititems(lambda name, item: layout.__setitem__(name, (item.shape, item.dtype))
                           if isinstance(item, h5py.Dataset) else None)
        attributes = dict(weights.attrs)
    return layout, attributes


def test_export_has_the_reference_layout(trained, shared_dir, tmp_path):
    run_dir, summary, _ = trained
    layout, attributes = _layout(summary["weight_file"])
    options = read_options(summary["options_file"])
    assert options == preset("tiny")["options"]
    assert {name: shape for name, (shape, _) in layout.items()} == expected_datasets(options)
    assert {dtype for _, dtype in layout.values()} == {numpy.dtype("float32")}
    assert attributes == {}
    # The reference architecture, exported: the same datasets, shapes and dtypes as the reference file.
    reference = shared_dir / "elmo" / "reference"
    model = BiLm(read_options(reference / "options.json"))
    model.reset_parameters(0)
    _, weights_path = export_elmo(model, tmp_path)
    assert _layout(weights_path) == _layout(reference / "lm_weights.hdf5")


def test_a_full_disk_leaves_the_run_as_it_was(trained, tmp_path):
    # The pretrainer's writers, each in a child that cannot write past 4 kB: the checkpoint, the
    # held-out metrics (text) and the export (elmo/ and summary.json) keep their previous files.
    run_dir = tmp_path / "run"
    shutil.copytree(trained[0], run_dir)
    (run_dir / "best.pt").unlink()  # the export then writes the weights changed below
    model, run = load_run_model(run_dir, "last")
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)  # other weights than those written
    progress = torch.load(run_dir / "checkpoint.pt", weights_only=True)["progress"]
    optimizer = torch.optim.Adagrad(model.parameters())
    state = model.bilm.zero_state(run.settings.batch_size, torch.device("cpu"))
    writes = {
        "checkpoint": lambda: run._save_checkpoint(model, optimizer, state, progress, None),
        "metrics": lambda: run._write_metrics(progress["history"] * 50),
        "export": lambda: run.export(model, "epochs", progress),
    }
    for name, write in writes.items():
        before = snapshot(run_dir)
        outcome = write_on_a_full_disk(write, limit=4096)
        assert hit_the_limit(outcome), (name, outcome)
        assert snapshot(run_dir) == before, name
        assert not temporaries(tmp_path), name
        write()  # with room, it is written
        assert snapshot(run_dir) != before, name
    assert not temporaries(tmp_path)


SENTENCES = [
    ["Anna", "visits", "Boris", "in", "Zürich", "on", "day", "7", "."],
    ["The", "drum"],
    ["Kofi"],
    ["x" * 60, "naïve", "Ωmega", "unseenword", "Lima", "."],
]


@pytest.fixture(scope="module")
def exported(trained):
    """The exported files and the training-time module's layers for SENTENCES (dropout off,
    zero states)."""
    run_dir, summary, _ = trained
    run = Pretraining.recover(run_dir, log=quiet)
    run.prepare()
    model = run.build_model()
    model.load_state_dict(torch.load(run_dir / "best.pt", weights_only=True)["model"])
    model.eval()
    char_ids = batch_to_char_ids(SENTENCES)
    with torch.no_grad():
        layers, mask = model.bilm.layers_of(char_ids)
    return summary["options_file"], summary["weight_file"], char_ids, layers, mask


def _without_marks(layer, mask):
    """(batch, length + 2, dim) -> (batch, length, dim): the marks removed, padding zero."""
    lengths = mask.sum(dim=1) - 2
    out = layer.new_zeros(layer.shape[0], layer.shape[1] - 2, layer.shape[2])
    for row, length in enumerate(lengths.tolist()):
        out[row, :length] = layer[row, 1:length + 1]
    return out


def test_allennlp_elmo_loads_the_export_with_equal_outputs(exported):
    options_file, weight_file, char_ids, layers, mask = exported
    elmo = Elmo(options_file, weight_file, num_output_representations=1, dropout=0.0,
                scalar_mix_parameters=[0.0, 0.0, 0.0])
    with torch.no_grad():
        bilm = elmo._elmo_lstm(char_ids)
        assert torch.equal(bilm["mask"], mask)
        assert len(bilm["activations"]) == len(layers) == 3
        for theirs, ours in zip(bilm["activations"], layers):
            assert (theirs - ours).abs().max().item() <= 1e-5
        elmo._elmo_lstm._elmo_lstm.reset_states()
        mixed = elmo(char_ids)["elmo_representations"][0]
    ours_mixed = _without_marks(sum(layers) / 3, mask)
    assert (mixed - ours_mixed).abs().max().item() <= 1e-5
    assert layers[2].abs().max().item() > 0.1  # not a trivially zero comparison


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_stock_and_ner_elmo_embedders_load_the_export_with_equal_outputs(exported, layer):
    options_file, weight_file, char_ids, layers, mask = exported
    expected = _without_marks(layers[layer], mask)
    one_hot = [0.0 if k == layer else -1e4 for k in range(3)]
    stock = TokenEmbedder.by_name("elmo_token_embedder")(
        options_file=options_file, weight_file=weight_file, dropout=0.0, scalar_mix_parameters=one_hot
    ).eval()
    ner_names = ["word_emb", "lstm_outputs1", "lstm_outputs2"]
    embedders = [stock] + [
        TokenEmbedder.by_name("ner_elmo")(options_file=options_file, weight_file=weight_file, dropout=0.0,
                                          output_layer=ner_names[layer], implementation=implementation,
                                          cache="none").eval()
        for implementation in ("fast", "stock")
    ]
    with torch.no_grad():
        for embedder in embedders:
            assert (embedder(char_ids) - expected).abs().max().item() <= 1e-5


def test_continued_pretraining_starts_from_the_given_elmo(texts, elmo_files, tmp_path):
    options_file, weight_file = elmo_files
    run = Pretraining.create(tmp_path / "run", [str(texts / "train.txt")], None, tiny_settings(max_tokens=3 * 160),
                             init_options=options_file, init_weights=weight_file, log=quiet)
    run.prepare()
    initial = dict(run.build_model().bilm.named_arrays())
    given = read_weights(weight_file, read_options(options_file))
    assert set(initial) == set(given)
    for name, values in given.items():
        assert torch.equal(initial[name].detach(), torch.from_numpy(values)), name
    summary = run.train()
    assert summary["steps"] == 3 and summary["vocab_size"] > 100  # a new softmax, for this corpus
    assert read_options(summary["options_file"]) == read_options(options_file)
    trained = read_weights(summary["weight_file"], read_options(options_file))
    moved = {name: float(numpy.abs(trained[name] - given[name]).max()) for name in given}
    # Adagrad (rate 0.2, accumulators from 1) moves a weight by less than 0.2 per step.
    assert 0 < max(moved.values()) < 3 * 0.2


def _final_weights(run_dir):
    return torch.load(Path(run_dir) / "checkpoint.pt", weights_only=True)["model"]


class Killed(Exception):
    pass


def test_resume_after_a_kill_gives_the_same_weights(texts, tmp_path):
    # 12 steps cross an epoch boundary (the 150-sentence corpus holds 8 windows of 8 x 20).
    (tmp_path / "small.txt").write_text("\n".join(generated_sentences(150, 2)) + "\n", encoding="utf-8")
    settings = tiny_settings(max_tokens=12 * 160, epochs=5, checkpoint_every_steps=3, tokenizer="whitespace")
    corpus = [str(tmp_path / "small.txt")]
    Pretraining.create(tmp_path / "whole", corpus, preset("tiny")["options"], settings, log=quiet).train()

    def kill_at_step_10(step):
        if step == 10:
            raise Killed()

    run = Pretraining.create(tmp_path / "killed", corpus, preset("tiny")["options"], settings, log=quiet,
                             on_step=kill_at_step_10)
    with pytest.raises(Killed):
        run.train()
    checkpoint = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert checkpoint["progress"]["step"] == 9 and checkpoint["batcher"]["epoch"] == 1  # mid-epoch 2
    Pretraining.recover(tmp_path / "killed", log=quiet).train()
    whole, resumed = _final_weights(tmp_path / "whole"), _final_weights(tmp_path / "killed")
    assert whole.keys() == resumed.keys()
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name
    assert (tmp_path / "whole" / "losses.tsv").read_text() == (tmp_path / "killed" / "losses.tsv").read_text()


def _module_command(*args):
    return [sys.executable, "-m", "ner_elmo.pretraining", *args]


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_same_weights(texts, tmp_path):
    common = ["--corpus", str(texts / "train.txt"), "--preset", "tiny", "--tokenizer", "whitespace",
              "--max-tokens", str(60 * 160), "--threads", "1", "--log-every", "1h"]
    killed_dir = tmp_path / "killed"
    process = subprocess.Popen(_module_command("train", *common, "--output-dir", str(killed_dir),
                                               "--checkpoint-every", "0"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    step = 0
    while step < 5 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
        try:
            step = torch.load(killed_dir / "checkpoint.pt", weights_only=True)["progress"]["step"]
        except (FileNotFoundError, RuntimeError, EOFError):
            pass
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate()
    assert process.returncode == -signal.SIGKILL, stderr.decode()
    assert 5 <= torch.load(killed_dir / "checkpoint.pt", weights_only=True)["progress"]["step"] < 60
    # The same thread count: another one changes the float round-off of the matrix products.
    recovered = subprocess.run(_module_command("train", "--recover", "--output-dir", str(killed_dir), "--threads", "1"),
                               capture_output=True, text=True)
    assert recovered.returncode == 0, recovered.stderr
    assert "resuming" in recovered.stderr
    settings = tiny_settings(max_tokens=60 * 160, tokenizer="whitespace")
    Pretraining.create(tmp_path / "whole", [str(texts / "train.txt")], preset("tiny")["options"], settings,
                       log=quiet).train()
    whole, resumed = _final_weights(tmp_path / "whole"), _final_weights(killed_dir)
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name
    assert not temporaries(killed_dir)  # a kill while writing leaves one; the recovered run removes it


@pytest.mark.slow
def test_the_module_entry_point_never_imports_allennlp(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *_module_command("train", "--corpus", str(tmp_path / "empty.txt"),
                                                               "--preset", "tiny", "--output-dir", str(tmp_path / "run"))[1:]],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert f"error: CorpusError: {tmp_path / 'empty.txt'}: no tokens (the file is empty)" in result.stderr
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert {"torch", "h5py", "ner_elmo.pretraining.trainer"} <= imported
    assert not {name for name in imported if name.split(".")[0] in ("allennlp", "allennlp_models")}


# ----- bad input --------------------------------------------------------------------------------


def _train(tmp_path, corpus, heldout=None, options=None, **changes):
    return Pretraining.create(tmp_path / "run", [str(p) for p in corpus], options or preset("tiny")["options"],
                              tiny_settings(**changes), heldout=str(heldout) if heldout else None, log=quiet).train()


def test_empty_corpus(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(DataFormatError) as error:
        _train(tmp_path, [tmp_path / "empty.txt"])
    assert str(error.value) == (f"{tmp_path / 'empty.txt'}: no tokens (the file is empty): expected UTF-8 text, "
                                "one sentence or document per line")


def test_binary_and_undecodable_files(tmp_path):
    (tmp_path / "good.txt").write_text("A fine line .\n", encoding="utf-8")
    (tmp_path / "binary.bin").write_bytes(b"text first\nPK\x03\x04\x00\x00 zip\n")
    (tmp_path / "latin1.txt").write_bytes("fine\nfine\ncaf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(DataFormatError) as error:
        _train(tmp_path, [tmp_path / "good.txt", tmp_path / "binary.bin"])
    assert str(error.value) == (f"{tmp_path / 'binary.bin'}, line 2: binary data (a NUL byte, byte 5 of the line): "
                                "expected UTF-8 text, one sentence or document per line")
    with pytest.raises(DataFormatError) as error:
        _train(tmp_path, [tmp_path / "latin1.txt"])
    assert str(error.value) == (f"{tmp_path / 'latin1.txt'}, line 3: cannot decode byte 0xe9 (byte 4 of the line) "
                                "as utf-8: convert the file to UTF-8 first (e.g. iconv -f latin1 -t utf-8)")


def test_corpus_too_small_for_one_window(tmp_path):
    (tmp_path / "small.txt").write_text("One short sentence .\nAnd another one .\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as error:
        _train(tmp_path, [tmp_path / "small.txt"])
    assert str(error.value) == (
        f"{tmp_path / 'small.txt'}: too small for one window: 8 tokens in 2 sentences give 10 inputs per "
        "direction, and a window needs 8 rows of 20 (160); use more text, or a smaller --batch-size or --steps"
    )


def test_heldout_sharing_no_vocabulary(texts, tmp_path):
    (tmp_path / "other.txt").write_text("Что это такое\nНичего\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as error:
        _train(tmp_path, [texts / "train.txt"], heldout=tmp_path / "other.txt", max_tokens=160)
    assert str(error.value) == (
        f"{tmp_path / 'other.txt'}: shares no vocabulary with the corpus: none of its 4 tokens ('Что', 'это', "
        "'такое', 'Ничего') is among the 166 words of the softmax vocabulary, so its perplexity "
        "would only measure <UNK>; check its language and tokenization"
    )


def test_options_the_exporter_cannot_write(texts, tmp_path, capsys):
    options = preset("tiny")["options"]
    options["char_cnn"]["max_characters_per_token"] = 40
    (tmp_path / "options.json").write_text(json.dumps(options), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--corpus", str(texts / "train.txt"), "--options", str(tmp_path / "options.json"),
                  "--output-dir", str(tmp_path / "run")])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == (
        f"error: OptionsError: {tmp_path / 'options.json'}: cannot export: char_cnn.max_characters_per_token "
        "is 40; allennlp's Elmo reads every token as 50 character ids, so it must be 50\n"
    )
    assert not (tmp_path / "run").exists()  # stopped before anything was written
    options = preset("tiny")["options"]
    options["lstm"].pop("proj_clip")
    with pytest.raises(OptionsError) as error:
        _train(tmp_path, [texts / "train.txt"], options=options)
    assert str(error.value) == ("the options: cannot export: missing key lstm.proj_clip (allennlp's Elmo reads it; "
                                "null means no clipping)")


# ----- parts ------------------------------------------------------------------------------------


def test_hand_written_lstm_backward_equals_autograd():
    torch.manual_seed(0)
    for clips in ((None, None), (0.3, 0.2)):
        cell = LstmCellWithProjection(6, 5, 4, *clips).double()
        cell.reset_parameters(torch.Generator().manual_seed(0))
        with torch.no_grad():
            cell.B.normal_()
        inputs = torch.randn(3, 7, 6, dtype=torch.double, requires_grad=True)
        state = (0.1 * torch.randn(3, 4, dtype=torch.double), torch.randn(3, 5, dtype=torch.double))
        outputs, (h, c) = cell(inputs, state)
        weights = torch.randn_like(outputs)
        (outputs * weights).sum().backward()
        ours = [inputs.grad.clone()] + [p.grad.clone() for p in cell.parameters()]
        inputs.grad = None
        cell.zero_grad()
        projected = torch.addmm(cell.B + cell._forget_one(), inputs.reshape(21, 6), cell.W_0[:6]).view(3, 7, 20)
        h2, c2 = state
        steps = []
        for t in range(7):
            h2, c2 = _step(projected[:, t], h2, c2, cell.W_0[6:], cell.W_P_0, cell.cell_clip, cell.proj_clip)
            steps.append(h2)
        (torch.stack(steps, 1) * weights).sum().backward()
        autograd = [inputs.grad.clone()] + [p.grad.clone() for p in cell.parameters()]
        assert torch.allclose(outputs, torch.stack(steps, 1), atol=1e-14) and torch.allclose(h, h2) and torch.allclose(c, c2)
        for a, b in zip(ours, autograd):
            assert torch.allclose(a, b, atol=1e-12)
        if clips[1] is not None:
            assert (outputs.abs() == 0.2).any()  # the clipping was exercised


def test_trimmed_character_cnn_equals_the_full_width():
    model = BiLm(preset("tiny")["options"])
    model.reset_parameters(3)
    ids = batch_to_char_ids([["a", "bb", "x" * 30, "ü"], ["y" * 60, "z"]]).view(-1, 50)
    ids = ids[(ids > 0).any(dim=1)]
    with torch.no_grad():
        assert torch.allclose(model.char_encoder(ids, trim=True), model.char_encoder(ids, trim=False), atol=1e-6)
        short = ids[:2]
        assert torch.allclose(model.char_encoder(short, trim=True), model.char_encoder(short, trim=False), atol=1e-6)


def test_windows_cover_every_sentence_in_both_directions():
    lengths = numpy.array([3, 1, 7, 2, 30, 4], dtype=numpy.int32)
    tokens = numpy.arange(10, 10 + int(lengths.sum()), dtype=numpy.int32)
    stream = MarkedStream.build(tokens, lengths, bos=0, eos=1)
    batcher = StreamBatcher(stream, rows=3, steps=4, seed=None)
    batcher.start_epoch(0)
    pairs = {"forward": [], "backward": []}
    while (window := batcher.next_window(pad=True)) is not None:
        m = window.mask
        pairs["forward"] += list(zip(stream.tokens[window.forward_inputs[m]], stream.tokens[window.forward_targets[m]]))
        pairs["backward"] += list(zip(stream.tokens[window.backward_inputs[m]], stream.tokens[window.backward_targets[m]]))
    expected = {"forward": [], "backward": []}
    start = 0
    for length in lengths:
        sentence = [0] + tokens[start:start + length].tolist() + [1]
        start += length
        expected["forward"] += list(zip(sentence[:-1], sentence[1:]))
        reverse = sentence[::-1]
        expected["backward"] += list(zip(reverse[:-1], reverse[1:]))
    for direction in pairs:
        assert sorted((int(a), int(b)) for a, b in pairs[direction]) == sorted(expected[direction])


def test_sampled_softmax_draws_and_loss():
    sampled, tries = draw_log_uniform(1000, 50, seed=4, step=9)
    again, _ = draw_log_uniform(1000, 50, seed=4, step=9)
    assert numpy.array_equal(sampled, again) and len(set(sampled.tolist())) == 50 and tries >= 50
    assert sampled.min() >= 0 and sampled.max() < 1000
    assert not numpy.array_equal(sampled, draw_log_uniform(1000, 50, seed=4, step=10)[0])
    softmax = Softmax(1000, 8)
    softmax.reset_parameters(0)
    hidden = torch.randn(4, 8)
    targets = torch.tensor([int(sampled[0]), 999, 5, int(sampled[3])])  # two accidental hits
    log_q = torch.from_numpy(log_expected_counts(sampled, 1000, tries)).float()
    log_q_targets = torch.from_numpy(log_expected_counts(targets.numpy(), 1000, tries)).float()
    loss = softmax.sampled_loss(hidden, targets, torch.from_numpy(sampled), log_q, log_q_targets)
    expected = []
    for row in range(4):
        logit = lambda k, q: float(hidden[row] @ softmax.weight[k] + softmax.bias[k]) - q  # noqa: E731
        true = logit(targets[row], float(log_q_targets[row]))
        negatives = [logit(k, float(q)) for k, q in zip(sampled, log_q) if k != targets[row]]
        expected.append(numpy.logaddexp.reduce([true] + negatives) - true)
    assert abs(float(loss) - numpy.mean(expected)) < 1e-5


def test_whitespace_and_spacy_tokenizers():
    spacy = SentenceTokenizer("spacy")
    assert list(spacy.sentences("Anglo-Dutch talks end. Smith's U.S. trip starts on 1996-08-22.")) == [
        ["Anglo-Dutch", "talks", "end", "."], ["Smith", "'s", "U.S.", "trip", "starts", "on", "1996-08-22", "."]
    ]
    assert list(SentenceTokenizer("whitespace").sentences(" a  b c ")) == [["a", "b", "c"]]


# ----- data parallelism -------------------------------------------------------------------------


@pytest.mark.slow
def test_two_gloo_processes_follow_the_one_process_loss_curve(texts, tmp_path):
    """torchrun with 2 CPU processes (gloo), each computing 4 of the 8 rows, against one process
    with the same global batch (dropout off, so both compute the same function): per-step
    losses within 1e-4, final weights within 1e-4."""
    steps = 12
    settings = tiny_settings(max_tokens=steps * 160, dropout=0.0, tokenizer="whitespace")
    Pretraining.create(tmp_path / "one", [str(texts / "train.txt")], preset("tiny")["options"], settings,
                       log=quiet).train()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "ner_elmo.pretraining", "train", "--corpus", str(texts / "train.txt"), "--preset", "tiny",
         "--tokenizer", "whitespace", "--dropout", "0", "--max-tokens", str(steps * 160), "--epochs", "2",
         "--device", "cpu", "--threads", "1", "--output-dir", str(tmp_path / "two")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    one = numpy.loadtxt(tmp_path / "one" / "losses.tsv")
    two = numpy.loadtxt(tmp_path / "two" / "losses.tsv")
    assert one.shape == two.shape == (steps, 3)
    assert numpy.abs(one - two).max() < 1e-4
    assert one[-1, 1] < one[0, 1]
    weights_one, weights_two = _final_weights(tmp_path / "one"), _final_weights(tmp_path / "two")
    for name in weights_one:
        assert (weights_one[name] - weights_two[name]).abs().max().item() < 1e-4, name
