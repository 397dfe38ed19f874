import json

import h5py
import numpy
import pytest
import torch
from allennlp.modules import elmo as allennlp_elmo

from full_disk import hit_the_limit, snapshot, temporaries, write_on_a_full_disk
from ner_elmo.modules.elmo.hdf5_layout import expected_datasets, read_options, read_weights
from ner_elmo.modules.elmo.weights_io import (
    main,
    random_elmo_weights,
    read_generator_record,
    write_random_elmo,
)


def _layout(weight_path):
    """{dataset name: (shape, dtype)} of an HDF5 file."""
    layout = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            layout[name] = (item.shape, item.dtype)

    with h5py.File(weight_path, "r") as weights:
        weights.visititems(visit)
    return layout


def _arrays(weight_path):
    arrays = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            arrays[name] = item[...]

    with h5py.File(weight_path, "r") as weights:
        weights.visititems(visit)
    return arrays


@pytest.fixture(scope="module")
def tiny_options(fixtures_dir):
    return read_options(fixtures_dir / "elmo" / "options.json")


def test_written_layout_matches_the_reference_elmo(shared_dir, tmp_path):
    reference = shared_dir / "elmo" / "reference"
    options = read_options(reference / "options.json")
    write_random_elmo(options, tmp_path / "options.json", tmp_path / "lm_weights.hdf5", seed=0)
    ours = _layout(tmp_path / "lm_weights.hdf5")
    theirs = _layout(reference / "lm_weights.hdf5")
    assert ours == theirs
    assert len(ours) == 33  # 1 + 2 * 5 filters + 4 * 2 highways + 2 + 12 LSTM
    assert ours["RNN_1/RNN/MultiRNNCell/Cell1/LSTMCell/W_0"] == ((32, 256), numpy.dtype("float32"))
    assert ours["char_embed"] == ((261, 4), numpy.dtype("float32"))


def test_allennlp_elmo_loads_our_reference_sized_file(shared_dir, tmp_path):
    options = read_options(shared_dir / "elmo" / "reference" / "options.json")
    write_random_elmo(options, tmp_path / "options.json", tmp_path / "lm_weights.hdf5", seed=5)
    elmo = allennlp_elmo.Elmo(
        str(tmp_path / "options.json"), str(tmp_path / "lm_weights.hdf5"), 1, dropout=0.0
    )
    # The loaded parameters are ours: the projection is W_proj transposed.
    with h5py.File(tmp_path / "lm_weights.hdf5", "r") as weights:
        w_proj = weights["CNN_proj/W_proj"][...]
    numpy.testing.assert_array_equal(
        elmo._elmo_lstm._token_embedder._projection.weight.detach().numpy(), w_proj.T
    )
    ids = allennlp_elmo.batch_to_ids([["Loads", "fine", "."], ["Yes"]])
    output = elmo(ids)
    assert output["elmo_representations"][0].shape == (2, 3, 32)
    assert output["mask"].tolist() == [[True, True, True], [True, False, False]]
    assert torch.isfinite(output["elmo_representations"][0]).all()


def test_fixture_is_regenerated_exactly_from_its_recorded_seed(fixtures_dir, tmp_path, tiny_options):
    fixture = fixtures_dir / "elmo" / "lm_weights.hdf5"
    record = read_generator_record(fixture)
    assert record["seed"] == 0
    write_random_elmo(
        tiny_options, tmp_path / "options.json", tmp_path / "lm_weights.hdf5", record["seed"], record["scale"]
    )
    committed = _arrays(fixture)
    regenerated = _arrays(tmp_path / "lm_weights.hdf5")
    assert sorted(committed) == sorted(regenerated) == sorted(expected_datasets(tiny_options))
    for name in committed:
        assert committed[name].dtype == numpy.float32
        numpy.testing.assert_array_equal(committed[name], regenerated[name], err_msg=name)
    assert (tmp_path / "options.json").read_text() == (fixtures_dir / "elmo" / "options.json").read_text()


def test_fixture_is_tiny_and_exercises_both_clips(fixtures_dir, tiny_options):
    assert (fixtures_dir / "elmo" / "lm_weights.hdf5").stat().st_size < 200_000
    assert tiny_options["lstm"]["cell_clip"] > 0
    assert tiny_options["lstm"]["proj_clip"] > 0


def test_seed_decides_the_weights(tiny_options):
    first = dict(random_elmo_weights(tiny_options, seed=1))
    again = dict(random_elmo_weights(tiny_options, seed=1))
    other = dict(random_elmo_weights(tiny_options, seed=2))
    for name in first:
        numpy.testing.assert_array_equal(first[name], again[name])
    assert not numpy.array_equal(first["CNN_proj/W_proj"], other["CNN_proj/W_proj"])


def test_scale_multiplies_every_weight(tiny_options):
    unit = dict(random_elmo_weights(tiny_options, seed=3, scale=1.0))
    double = dict(random_elmo_weights(tiny_options, seed=3, scale=2.0))
    for name in unit:
        numpy.testing.assert_allclose(double[name], 2.0 * unit[name], rtol=1e-6)


def test_command_line_writes_both_files(fixtures_dir, tmp_path, capsys):
    main(
        [
            "--options",
            str(fixtures_dir / "elmo" / "options.json"),
            "--out-dir",
            str(tmp_path / "out"),
            "--seed",
            "7",
        ]
    )
    assert "seed 7" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "options.json").read_text())["lstm"]["dim"] == 32
    assert read_generator_record(tmp_path / "out" / "lm_weights.hdf5")["seed"] == 7
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and not temporaries(tmp_path)


def test_read_weights_names_the_file_and_the_missing_dataset(tmp_path, tiny_options):
    path = tmp_path / "broken.hdf5"
    write_random_elmo(tiny_options, tmp_path / "options.json", path, seed=0)
    with h5py.File(path, "a") as weights:
        del weights["CNN_high_0/W_carry"]
    with pytest.raises(ValueError, match=r"broken\.hdf5: missing dataset 'CNN_high_0/W_carry'"):
        read_weights(path, tiny_options)


def test_read_weights_names_a_wrongly_shaped_dataset(tmp_path, tiny_options):
    path = tmp_path / "other.hdf5"
    bigger = json.loads(json.dumps(tiny_options))
    bigger["lstm"]["dim"] = 64
    write_random_elmo(bigger, tmp_path / "options.json", path, seed=0)
    with pytest.raises(ValueError, match=r"other\.hdf5: dataset 'RNN_0/RNN/MultiRNNCell/Cell0/LSTMCell/W_0' has shape \(32, 256\), the options say \(32, 128\)"):
        read_weights(path, tiny_options)


def test_read_options_names_the_missing_key(tmp_path):
    path = tmp_path / "options.json"
    path.write_text(json.dumps({"char_cnn": {}, "lstm": {}}))
    with pytest.raises(ValueError, match=r"options\.json: missing key char_cnn\.embedding"):
        read_options(path)


def test_read_options_rejects_a_bilm_without_skip_connections(fixtures_dir, tmp_path):
    options = json.loads((fixtures_dir / "elmo" / "options.json").read_text())
    options["lstm"]["use_skip_connections"] = False
    path = tmp_path / "options.json"
    path.write_text(json.dumps(options))
    with pytest.raises(ValueError, match="use_skip_connections"):
        read_options(path)


@pytest.mark.parametrize("own_directory", [True, False], ids=["directory swapped", "files beside others"])
def test_a_full_disk_leaves_the_old_pair_and_no_temporary(fixtures_dir, tmp_path, tiny_options, own_directory):
    # The old pair has another architecture: new options beside old weights would not load.
    out = tmp_path / "elmo"
    bigger = json.loads(json.dumps(tiny_options))
    bigger["lstm"]["dim"] = 64
    write_random_elmo(bigger, out / "options.json", out / "lm_weights.hdf5", seed=1)
    if own_directory:
        # The command line writes its --out-dir with write_elmo_directory.
        argv = ["--options", str(fixtures_dir / "elmo" / "options.json"), "--out-dir", str(out), "--seed", "2"]
        write = lambda: main(argv)  # noqa: E731
    else:
        (out / "README").write_text("not ours to delete")
        paths = out / "options.json", out / "lm_weights.hdf5"
        write = lambda: write_random_elmo(tiny_options, *paths, seed=2)  # noqa: E731
    before = snapshot(out)
    # Room for the new options.json (about 400 bytes), not for the weights.
    assert hit_the_limit(write_on_a_full_disk(write, limit=4096))
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["elmo"] and not temporaries(tmp_path)
    write()
    assert read_options(out / "options.json") == tiny_options
    assert read_generator_record(out / "lm_weights.hdf5")["seed"] == 2
    assert (out / "README").exists() != own_directory
    assert not temporaries(tmp_path)
