"""
Where a training batch of the no-ELMo CoNLL tagger spends its time: cProfile of `--batches`
training steps (forward, backward, gradient clipping, Adam) of a config's model, with the
config's bucketed batches or with random batches of 64 (`--batching random`, the stock order).

    OMP_NUM_THREADS=1 python benchmarks/tagger_profile.py --conll ../shared/data/conll2003/eng.train \
        [--config training_config/conll2003_glove_char.jsonnet] [--sentences 1280] [--batching bucket]

`--phase validation` profiles the validation pass instead: the model in eval mode without
gradients, in the config's validation batches (256 sentences sorted by length).

Word embeddings are randomly initialised (GloVe's values do not change the time). Prints the
seconds of the forward and backward passes and cProfile's cumulative table.
"""
import cProfile
import os
import pstats
import time

from toolbox import REPO, benchmark_parser

os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402

import ner_elmo.plugin  # noqa: E402,F401  (registers the components)
from allennlp.common import Params  # noqa: E402
from allennlp.data import DatasetReader, Vocabulary  # noqa: E402
from allennlp.data.data_loaders import MultiProcessDataLoader  # noqa: E402
from allennlp.data.samplers import BucketBatchSampler  # noqa: E402
from allennlp.models import Model  # noqa: E402


def main(argv=None) -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--conll", required=True, help="eng.train")
    parser.add_argument("--config", default=str(REPO / "training_config" / "conll2003_glove_char.jsonnet"))
    parser.add_argument("--sentences", type=int, default=1280, help="first N training sentences")
    parser.add_argument("--batching", choices=["bucket", "random"], default="bucket")
    parser.add_argument("--phase", choices=["train", "validation"], default="train")
    parser.add_argument("--rows", type=int, default=35, help="rows of the cProfile table")
    args = parser.parse_args(argv)
    for name in ("NER_ELMO_CONLL_TRAIN", "NER_ELMO_CONLL_DEV", "NER_ELMO_CONLL_TEST"):
        os.environ.setdefault(name, args.conll)
    os.environ["NER_ELMO_GLOVE"] = ""
    params = Params.from_file(args.config)
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    instances = list(reader.read(args.conll))[: args.sentences]
    vocab = Vocabulary.from_instances(instances)
    model = Model.from_params(vocab=vocab, params=params.pop("model"))
    if args.phase == "validation":
        sampler = BucketBatchSampler(batch_size=256, shuffle=False)
        loader = MultiProcessDataLoader(reader, args.conll, batch_sampler=sampler)
    elif args.batching == "bucket":
        loader = MultiProcessDataLoader(reader, args.conll, batch_sampler=BucketBatchSampler(batch_size=64))
    else:
        loader = MultiProcessDataLoader(reader, args.conll, batch_size=64, shuffle=True)
    loader._instances = instances  # the instances read above, not the whole file
    loader.index_with(vocab)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    model.train(args.phase == "train")
    forward = backward = 0.0
    batches = 0
    profile = cProfile.Profile()
    profile.enable()
    for batch in loader:
        started = time.perf_counter()
        if args.phase == "validation":
            with torch.no_grad():
                model(**batch)
            forward += time.perf_counter() - started
            batches += 1
            continue
        loss = model(**batch)["loss"]
        middle = time.perf_counter()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        forward += middle - started
        backward += time.perf_counter() - middle
        batches += 1
    profile.disable()
    if args.phase == "validation":
        print(f"{batches} validation batches, {torch.get_num_threads()} threads: forward {forward:.1f} s")
    else:
        print(f"{batches} batches ({args.batching}), {torch.get_num_threads()} threads: forward {forward:.1f} s, "
              f"backward + step {backward:.1f} s")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.rows)


if __name__ == "__main__":
    main()
