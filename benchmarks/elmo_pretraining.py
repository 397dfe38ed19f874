"""
Training throughput of the ELMo pretrainer (`ner_elmo.pretraining`) for a preset or options
file, on the first lines of a real corpus, with a breakdown of where a step's time goes.

    python benchmarks/elmo_pretraining.py --corpus ../shared/corpus/news/reuters21578.txt \\
        [--lines 4000] [--preset cpu] [--options X.json] [--batch-size N] [--num-samples N] \\
        [--max-vocab-words N] [--threads 2] [--steps 30] [--warmup 5] [--device cpu]
        [--tokens-per-epoch N]

Prints tokens/s (targets per direction, as the trainer counts them) by wall time and by process
CPU time (steadier on a shared machine), the share of the step spent in the forward pass, the
backward pass and the optimizer, and, with --tokens-per-epoch, the time one epoch would take
at that rate.  Needs only torch, numpy and h5py (and spaCy unless --tokenizer whitespace).
"""
import argparse
import statistics
import time

import numpy
import torch

from ner_elmo.pretraining import corpus as corpus_lib
from ner_elmo.pretraining.corpus import UNK
from ner_elmo.pretraining.model import BiLm
from ner_elmo.pretraining.presets import preset
from ner_elmo.pretraining.softmax import Softmax, draw_log_uniform, log_expected_counts
from ner_elmo.pretraining.streams import StreamBatcher
from ner_elmo.pretraining.trainer import LanguageModel, TextData
from toolbox import benchmark_parser, each_thread_count


def main() -> None:
    parser = benchmark_parser(__doc__, threads=[2])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--lines", type=int, default=4000)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--options", help="an options.json instead of the preset's architecture")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--num-samples", type=int)
    parser.add_argument("--max-vocab-words", type=int)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tokenizer", default="spacy")
    parser.add_argument("--tokens-per-epoch", type=int)
    args = parser.parse_args()
    for run in each_thread_count(args):
        measure(run)


def measure(args: argparse.Namespace) -> None:
    """The corpus read, the model built and its steps timed with `args.threads` threads."""
    chosen = preset(args.preset)
    options, training = chosen["options"], chosen["training"]
    if args.options:
        from ner_elmo.modules.elmo.hdf5_layout import read_options
        from ner_elmo.pretraining.export import training_options

        options = training_options(read_options(args.options), args.options)
    batch_size = args.batch_size or training["batch_size"]
    num_samples = args.num_samples or training["num_samples"]
    max_words = args.max_vocab_words if args.max_vocab_words is not None else training["max_vocab_words"]

    tokenizer = corpus_lib.SentenceTokenizer(args.tokenizer)
    lines = []
    for number, line in corpus_lib.read_lines(args.corpus):
        if number > args.lines:
            break
        lines.append(line)
    sentences = [s for line in lines for s in tokenizer.sentences(line)]
    types, index = list(corpus_lib.SPECIAL_TYPES), {w: i for i, w in enumerate(corpus_lib.SPECIAL_TYPES)}
    tokens = [index.setdefault(w, len(index)) for s in sentences for w in s]
    types = list(index)
    text = corpus_lib.TokenizedText(
        types, numpy.array(tokens, dtype=numpy.int32), numpy.array([len(s) for s in sentences], dtype=numpy.int32),
        numpy.bincount(numpy.array(tokens), minlength=len(types)).astype(numpy.int64),
    )
    text = corpus_lib.sort_by_frequency(text)
    vocab_size = corpus_lib.vocabulary_size(text, max_words, 1)
    type_ids = numpy.arange(len(text.types))
    data = TextData(text, numpy.where(type_ids < vocab_size, type_ids, UNK))
    device = torch.device(args.device)
    bilm = BiLm(options, dropout=0.1)
    bilm.reset_parameters(0)
    softmax = Softmax(vocab_size, options["lstm"]["projection_dim"])
    softmax.reset_parameters(1)
    model = LanguageModel(bilm, softmax).to(device).train()
    optimizer = torch.optim.Adagrad(model.parameters(), lr=0.2, initial_accumulator_value=1.0)
    steps = 20
    batcher = StreamBatcher(data.stream, batch_size, steps, seed=0)
    batcher.start_epoch(0)
    state = bilm.zero_state(batch_size, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    timings = []
    for step in range(args.warmup + args.steps):
        window = batcher.next_window()
        if window is None:
            batcher.start_epoch(step)
            window = batcher.next_window()
        began_wall, began_cpu = time.perf_counter(), time.process_time()
        batch = data.tensors(window, device)
        sampled, tries = draw_log_uniform(vocab_size, num_samples, 0, step)
        as_tensor = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
        sample = (as_tensor(sampled), as_tensor(log_expected_counts(sampled, vocab_size, tries).astype(numpy.float32)),
                  *(as_tensor(log_expected_counts(batch[k].cpu().numpy(), vocab_size, tries).astype(numpy.float32))
                    for k in ("forward_targets", "backward_targets")))
        loss, _, _, state = model(batch["type_char_ids"], batch["forward_types"], batch["backward_types"],
                                  batch["forward_targets"], batch["backward_targets"], state, sample)
        sync()
        forward_done = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        sync()
        backward_done = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        sync()
        done_wall, done_cpu = time.perf_counter(), time.process_time()
        if step >= args.warmup:
            timings.append((done_wall - began_wall, done_cpu - began_cpu, forward_done - began_wall,
                            backward_done - forward_done, done_wall - backward_done,
                            int(batch["type_char_ids"].shape[0])))
    window_tokens = batch_size * steps
    wall = statistics.median(t[0] for t in timings)
    cpu = statistics.median(t[1] for t in timings)
    parameters = sum(p.numel() for p in bilm.parameters())
    print(f"architecture: {options}")
    print(f"biLM parameters {parameters:,}; softmax {vocab_size:,} x {options['lstm']['projection_dim']}; "
          f"batch {batch_size} x {steps}; {num_samples} samples; {args.threads} threads; device {device}")
    print(f"corpus: {text.num_tokens:,} tokens from {len(lines):,} lines of {args.corpus}")
    print(f"median step {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU; "
          f"forward {statistics.median(t[2] for t in timings) * 1000:.0f} ms, "
          f"backward {statistics.median(t[3] for t in timings) * 1000:.0f} ms, "
          f"optimizer {statistics.median(t[4] for t in timings) * 1000:.0f} ms; "
          f"{statistics.median(t[5] for t in timings):.0f} distinct tokens per window")
    print(f"throughput: {window_tokens / wall:,.0f} tokens/s (wall), "
          f"{window_tokens / cpu * args.threads:,.0f} tokens/s ({args.threads} x CPU time)")
    if args.tokens_per_epoch:
        seconds = args.tokens_per_epoch / (window_tokens / wall)
        print(f"one epoch of {args.tokens_per_epoch:,} tokens: {seconds / 60:.1f} min at this rate")


if __name__ == "__main__":
    main()
