"""
Training the biLM as bilm-tf does (Adagrad 0.2 with accumulators starting at 1, gradient-norm
clipping at 10, windows of 20 tokens with the LSTM states carried from window to window,
dropout 0.1, the mean of the forward and backward losses), with what bilm-tf leaves to the user
done here: the corpus's token count, a progress line with tokens/s and the time left, a time or
token budget, held-out perplexity with the full softmax after every epoch (and every N tokens)
with early stopping, checkpoints that resume to the same weights after a kill, continued
pretraining from an existing ELMo, and the export of the standard ELMo files.

Data parallelism: launched by `torchrun`, each process computes an equal share of the batch's
rows (`DistributedDataParallel` averages the gradients, so the update is the one-process update
of the same global batch); all processes draw the same sampled-softmax negatives.

A run directory holds:

```
run.json             what the run trains (options, settings, corpus, held-out file)
corpus/, heldout/    the tokenized text (reused when the files and tokenizer are the same)
vocab.txt            the softmax vocabulary, most frequent first
checkpoint.pt        the latest state (written whole or not at all); `--recover` resumes it
best.pt              the weights with the best held-out perplexity so far
metrics.jsonl        one line per validation
losses.tsv           the sampled loss of every step: step, forward, backward
elmo/options.json, elmo/lm_weights.hdf5   the exported ELMo (best weights, else the last)
```

Every file is written whole or not at all (`ner_elmo.common.atomic_write`: a temporary beside
it, renamed into place; `elmo/` as one directory), so a full disk or a kill leaves the previous
version; temporaries a kill left behind are removed when the run trains again.
"""
import dataclasses
import datetime
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy
import torch
from torch import nn

from ner_elmo.common.atomic_write import atomic_torch_save, atomic_write_text, remove_partials
from ner_elmo.pretraining import corpus as corpus_lib
from ner_elmo.pretraining.corpus import BOS, EOS, UNK, CorpusError, SentenceTokenizer, TokenizedText
from ner_elmo.pretraining.export import OptionsError, check_exportable, export_elmo, load_elmo
from ner_elmo.pretraining.model import BiLm, DirectionState
from ner_elmo.pretraining.softmax import Softmax, draw_log_uniform, log_expected_counts
from ner_elmo.pretraining.streams import MarkedStream, StreamBatcher, Window

RUN_FORMAT = 1
CHECKPOINT_FORMAT = 1

Log = Callable[[str], None]


@dataclasses.dataclass
class TrainingSettings:
    """
    Every training setting (the command line's options; a preset fills in some).

    # Parameters

    batch_size : `int` rows (streams) of the global batch; a multiple of the process count.
    steps : `int` tokens per row and window (bilm-tf's unroll_steps).
    learning_rate, initial_accumulator : Adagrad's.
    clip_norm : `float` gradient-norm clipping (of all parameters together).
    dropout : `float` bilm-tf's dropout (1 - keep_prob).
    num_samples : `int` sampled-softmax negatives per step; the full softmax is used when the
        vocabulary is not larger.
    max_vocab_words, min_count : the softmax vocabulary: at most this many words, each seen at
        least `min_count` times (others predict `<UNK>`; every word is still read by the CNN).
    epochs : `int` at most this many passes over the corpus.
    max_tokens : `int` stop after training on this many tokens (per direction; counted as the
        targets: tokens plus one `</S>` per sentence).
    max_time : `float` stop after this many seconds of training (all resumed parts together).
    patience : `int` stop after this many validations without a better held-out perplexity.
    validate_every_tokens : `int` also validate every this many tokens (besides each epoch's end).
    heldout_batch_size, max_heldout_tokens : rows of the held-out windows; use only the first
        sentences of the held-out file, up to this many tokens.
    checkpoint_every : `float` seconds between checkpoints (also written at each epoch's end and
        when the run stops); `checkpoint_every_steps` writes one every N steps instead.
    log_every : `float` seconds between progress lines.
    seed : `int` weights, sentence order, dropout and negative samples all follow from it.
    tokenizer, max_sentence_tokens : see `corpus.SentenceTokenizer`.
    """

    batch_size: int = 128
    steps: int = 20
    learning_rate: float = 0.2
    initial_accumulator: float = 1.0
    clip_norm: float = 10.0
    dropout: float = 0.1
    num_samples: int = 8192
    max_vocab_words: Optional[int] = None
    min_count: int = 1
    epochs: int = 10
    max_tokens: Optional[int] = None
    max_time: Optional[float] = None
    patience: Optional[int] = 3
    validate_every_tokens: Optional[int] = None
    heldout_batch_size: int = 64
    max_heldout_tokens: Optional[int] = None
    checkpoint_every: float = 600.0
    checkpoint_every_steps: Optional[int] = None
    log_every: float = 10.0
    seed: int = 0
    tokenizer: str = "spacy"
    max_sentence_tokens: int = 200


# Settings that may change when a run is resumed (the budget); the others must not.
RESUMABLE_CHANGES = ("epochs", "max_tokens", "max_time", "patience", "checkpoint_every",
                     "checkpoint_every_steps", "log_every", "validate_every_tokens")


class Distributed:
    """The process group of a `torchrun` launch (or a single process)."""

    def __init__(self, device: Optional[str] = None) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device is None:
            device = f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"
        elif device == "cuda":
            device = f"cuda:{self.local_rank}"
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.initialized_here = False
        if self.world_size > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            # Long timeout: rank 0 may tokenize a large corpus while the others wait.
            torch.distributed.init_process_group(backend, timeout=datetime.timedelta(hours=3))
            self.initialized_here = True

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def own_rows(self, rows: int, what: str) -> List[int]:
        if rows % self.world_size:
            raise ValueError(f"{what} ({rows}) must be a multiple of the number of processes ({self.world_size})")
        share = rows // self.world_size
        return list(range(self.rank * share, (self.rank + 1) * share))

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()

    def sum(self, values: Sequence[float]) -> List[float]:
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self._collective_device())
        if self.world_size > 1:
            torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def from_main(self, values: Sequence[float]) -> List[float]:
        """`values` as the main process has them."""
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self._collective_device())
        if self.world_size > 1:
            torch.distributed.broadcast(tensor, src=0)
        return tensor.tolist()

    def gather_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every process's rows of `tensor`, in rank order (so: all rows of the batch)."""
        if self.world_size == 1:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        torch.distributed.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    def _collective_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def close(self) -> None:
        if self.initialized_here:
            torch.distributed.destroy_process_group()


class LanguageModel(nn.Module):
    """The biLM and its softmax: one module, so that `DistributedDataParallel` wraps both."""

    def __init__(self, bilm: BiLm, softmax: Softmax) -> None:
        super().__init__()
        self.bilm = bilm
        self.softmax = softmax

    def forward(self, type_char_ids, forward_types, backward_types, forward_targets, backward_targets,
                state, sample: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]):
        top_forward, top_backward, new_state = self.bilm(type_char_ids, forward_types, backward_types, state)
        dim = top_forward.shape[-1]
        losses = []
        for top, targets, index in ((top_forward, forward_targets, 2), (top_backward, backward_targets, 3)):
            hidden, targets = top.reshape(-1, dim), targets.reshape(-1)
            if sample is None:
                losses.append(self.softmax.full_losses(hidden, targets).mean())
            else:
                sampled, log_q_sampled = sample[0], sample[1]
                losses.append(self.softmax.sampled_loss(hidden, targets, sampled, log_q_sampled, sample[index].reshape(-1)))
        return 0.5 * (losses[0] + losses[1]), losses[0].detach(), losses[1].detach(), new_state


class TextData:
    """A tokenized text ready for windows: the marked stream, each type's softmax target and
    character ids."""

    def __init__(self, text: TokenizedText, target_ids: numpy.ndarray) -> None:
        self.text = text
        self.stream = MarkedStream.build(text.tokens, text.lengths, BOS, EOS)
        self.target_ids = target_ids.astype(numpy.int64)
        self.char_ids = corpus_lib.char_id_table(text.types)

    def tensors(self, window: Window, device: torch.device) -> Dict[str, torch.Tensor]:
        tokens = self.stream.tokens
        forward_types = tokens[window.forward_inputs]
        backward_types = tokens[window.backward_inputs]
        unique, inverse = numpy.unique(numpy.concatenate([forward_types, backward_types]), return_inverse=True)
        inverse = inverse.reshape(2, *forward_types.shape)
        as_tensor = lambda array: torch.from_numpy(numpy.ascontiguousarray(array)).to(device)  # noqa: E731
        return {
            "type_char_ids": as_tensor(self.char_ids[unique].astype(numpy.int64)),
            "forward_types": as_tensor(inverse[0]),
            "backward_types": as_tensor(inverse[1]),
            "forward_targets": as_tensor(self.target_ids[tokens[window.forward_targets]]),
            "backward_targets": as_tensor(self.target_ids[tokens[window.backward_targets]]),
            "mask": as_tensor(window.mask),
        }


def _first_tokens(text: TokenizedText, max_tokens: Optional[int]) -> TokenizedText:
    if max_tokens is None or text.num_tokens <= max_tokens:
        return text
    sentences = max(1, int(numpy.searchsorted(numpy.cumsum(text.lengths), max_tokens, side="right")))
    kept = int(text.lengths[:sentences].sum())
    return TokenizedText(text.types, text.tokens[:kept], text.lengths[:sentences], text.counts)


def _format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def default_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Pretraining:
    """
    One run directory: set it up (`create`) or reopen it (`recover`), then `train()`.
    """

    def __init__(self, run_dir: Path, spec: Dict[str, Any], settings: TrainingSettings,
                 distributed: Distributed, log: Log = default_log,
                 on_step: Optional[Callable[[int], None]] = None) -> None:
        self.run_dir = Path(run_dir)
        self.spec = spec
        self.settings = settings
        self.dist = distributed
        self._log = log
        self.on_step = on_step

    # ----- setting up -------------------------------------------------------------------------

    @classmethod
    def create(cls, run_dir, corpus: Sequence[str], options: Optional[Dict[str, Any]],
               settings: TrainingSettings, heldout: Optional[str] = None,
               init_options: Optional[str] = None, init_weights: Optional[str] = None,
               distributed: Optional[Distributed] = None, log: Log = default_log,
               on_step: Optional[Callable[[int], None]] = None) -> "Pretraining":
        """A new run in `run_dir` (which must not hold a checkpoint)."""
        run_dir = Path(run_dir)
        if (run_dir / "checkpoint.pt").exists():
            raise FileExistsError(
                f"{run_dir} already holds a run (checkpoint.pt): pass --recover to resume it, "
                "or choose another --output-dir"
            )
        if (init_options is None) != (init_weights is None):
            raise ValueError("continued pretraining needs both --init-options and --init-weights")
        if init_options is not None:
            if options is not None:
                raise ValueError("the architecture of continued pretraining is the initial ELMo's: "
                                 "give --init-options/--init-weights or --options/--preset, not both")
            options = load_elmo(init_options, init_weights).options
        if options is None:
            raise ValueError("no architecture: give --preset, --options or --init-options/--init-weights")
        check_exportable(options, source="the options")
        spec = {
            "format": RUN_FORMAT,
            "options": options,
            "settings": dataclasses.asdict(settings),
            "corpus": [str(Path(path).resolve()) for path in corpus],
            "heldout": str(Path(heldout).resolve()) if heldout else None,
            "init": {"options": str(Path(init_options).resolve()), "weights": str(Path(init_weights).resolve())}
            if init_options else None,
        }
        distributed = distributed or Distributed()
        if distributed.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run_dir / "run.json", json.dumps(spec, indent=1) + "\n")
        return cls(run_dir, spec, settings, distributed, log, on_step)

    @classmethod
    def recover(cls, run_dir, changes: Optional[Dict[str, Any]] = None,
                distributed: Optional[Distributed] = None, log: Log = default_log,
                on_step: Optional[Callable[[int], None]] = None) -> "Pretraining":
        """Reopen `run_dir`; `changes` may set the settings of `RESUMABLE_CHANGES` anew."""
        run_dir = Path(run_dir)
        if not (run_dir / "run.json").exists():
            raise FileNotFoundError(f"{run_dir} holds no run to recover (no run.json)")
        spec = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        settings = TrainingSettings(**spec["settings"])
        for key, value in (changes or {}).items():
            if key not in RESUMABLE_CHANGES:
                raise ValueError(f"--{key.replace('_', '-')} cannot change when a run is recovered")
            setattr(settings, key, value)
        spec["settings"] = dataclasses.asdict(settings)
        distributed = distributed or Distributed()
        return cls(run_dir, spec, settings, distributed, log, on_step)

    def log(self, message: str) -> None:
        if self.dist.is_main:
            self._log(message)

    def _tokenizer(self) -> SentenceTokenizer:
        return SentenceTokenizer(self.settings.tokenizer, self.settings.max_sentence_tokens)

    def prepare(self, reuse: Optional[bool] = None) -> None:
        """
        Tokenize the corpus and held-out file (or read them back), build the vocabulary.  With
        `reuse` (by default: when the run has a checkpoint, whose softmax is sized by that
        vocabulary) the tokenized text already in the run directory is used as it is, without
        the source files.
        """
        settings = self.settings
        if reuse is None:
            reuse = (self.run_dir / "checkpoint.pt").exists()
        if self.dist.is_main:
            for name, paths, frequency_sorted in (("corpus", self.spec["corpus"], True),
                                                  ("heldout", [self.spec["heldout"]], False)):
                if name == "heldout" and not self.spec["heldout"]:
                    continue
                if not (reuse and (self.run_dir / name / "manifest.json").exists()):
                    corpus_lib.prepared_text(paths, self._tokenizer(), self.run_dir / name,
                                             frequency_sorted=frequency_sorted, log=self.log)
        self.dist.barrier()
        train_text, _ = corpus_lib.load_tokenized(self.run_dir / "corpus")
        self.vocab_size = corpus_lib.vocabulary_size(train_text, settings.max_vocab_words, settings.min_count)
        types = numpy.arange(len(train_text.types))
        self.train_data = TextData(train_text, numpy.where(types < self.vocab_size, types, UNK))
        self.vocabulary = train_text.types[: self.vocab_size]
        positions = self.train_data.stream.num_inputs
        window_size = settings.batch_size * settings.steps
        if not self._one_window_fits():
            files = corpus_lib.corpus_files(self.spec["corpus"])
            where = files[0] if len(files) == 1 else f"{files[0]} (and the {len(files) - 1} other files)"
            raise CorpusError(
                where, None,
                f"too small for one window: {train_text.num_tokens:,} tokens in "
                f"{train_text.num_sentences:,} sentences give {positions:,} inputs per direction, "
                f"and a window needs {settings.batch_size} rows of {settings.steps} "
                f"({window_size:,}); use more text, or a smaller --batch-size or --steps",
            )
        if self.dist.is_main:
            atomic_write_text(self.run_dir / "vocab.txt", "\n".join(self.vocabulary) + "\n")
        self.heldout: Optional[TextData] = None
        if self.spec["heldout"]:
            text, _ = corpus_lib.load_tokenized(self.run_dir / "heldout")
            self.heldout = self._heldout_data(_first_tokens(text, settings.max_heldout_tokens), self.spec["heldout"])
        self.log(
            f"corpus: {train_text.num_tokens:,} tokens in {train_text.num_sentences:,} sentences, "
            f"{len(train_text.types) - 3:,} distinct words; softmax vocabulary {self.vocab_size:,} "
            f"(with <S>, </S>, <UNK>); an epoch is {positions:,} tokens per direction, about "
            f"{self.train_batcher_size():,} windows of {settings.batch_size} x {settings.steps}"
        )
        if self.heldout is not None:
            self.log(
                f"held-out: {self.heldout.text.num_tokens:,} tokens in {self.heldout.text.num_sentences:,} "
                f"sentences, {100 * self.heldout.unk_rate:.2f}% of them <UNK>"
            )

    def _heldout_data(self, text: TokenizedText, source) -> TextData:
        """`text` with the training vocabulary's targets; `CorpusError` if it shares none."""
        index = {word: i for i, word in enumerate(self.vocabulary)}
        targets = numpy.array([index.get(word, UNK) for word in text.types], dtype=numpy.int64)
        targets[BOS], targets[EOS] = BOS, EOS
        known = int(numpy.count_nonzero(targets[text.tokens] != UNK))
        if known == 0:
            examples = list(dict.fromkeys(text.types[t] for t in text.tokens[:100].tolist()))
            shown = ", ".join(map(repr, examples[:5])) + (", ..." if len(examples) > 5 else "")
            raise CorpusError(
                source, None,
                f"shares no vocabulary with the corpus: none of its {text.num_tokens:,} tokens "
                f"({shown}) is among the {self.vocab_size - 3:,} words of "
                "the softmax vocabulary, so its perplexity would only measure <UNK>; check its "
                "language and tokenization",
            )
        data = TextData(text, targets)
        data.unk_rate = 1.0 - known / text.num_tokens
        return data

    def text_data_for(self, path) -> TextData:
        """Any text file, tokenized like the corpus, ready for `evaluate`."""
        text = corpus_lib.tokenize_files([Path(path)], self._tokenizer())
        if text.num_tokens == 0:
            raise CorpusError(path, None, "no tokens (the file is empty or blank)")
        return self._heldout_data(text, path)

    def train_batcher_size(self) -> int:
        return max(1, self.train_data.stream.num_inputs // (self.settings.batch_size * self.settings.steps))

    def _one_window_fits(self) -> bool:
        batcher = StreamBatcher(self.train_data.stream, self.settings.batch_size, self.settings.steps, seed=None, own_rows=[])
        batcher.start_epoch(0)
        return batcher.next_window() is not None

    # ----- the model --------------------------------------------------------------------------

    def build_model(self, initialize: bool = True) -> LanguageModel:
        """The language model, initialised (from the initial ELMo of continued pretraining, or
        seeded); `initialize=False` skips reading the initial ELMo (weights loaded next)."""
        options = self.spec["options"]
        if self.spec["init"] and initialize:
            bilm = load_elmo(self.spec["init"]["options"], self.spec["init"]["weights"], self.settings.dropout)
        else:
            bilm = BiLm(options, dropout=self.settings.dropout)
            bilm.reset_parameters(self.settings.seed)
        softmax = Softmax(self.vocab_size, int(options["lstm"]["projection_dim"]))
        softmax.reset_parameters(self.settings.seed + 1)
        return LanguageModel(bilm, softmax).to(self.dist.device)

    def _sample(self, step: int, targets: Sequence[torch.Tensor]):
        if self.settings.num_samples >= self.vocab_size - 1:
            return None
        sampled, tries = draw_log_uniform(self.vocab_size, self.settings.num_samples, self.settings.seed, step)
        device = self.dist.device
        as_tensor = lambda array: torch.from_numpy(array).to(device)  # noqa: E731
        return (
            as_tensor(sampled),
            as_tensor(log_expected_counts(sampled, self.vocab_size, tries).astype(numpy.float32)),
            *(as_tensor(log_expected_counts(t.cpu().numpy(), self.vocab_size, tries).astype(numpy.float32))
              for t in targets),
        )

    # ----- evaluation -------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, model: LanguageModel, data: Optional[TextData] = None) -> Dict[str, float]:
        """Held-out perplexity with the full softmax: forward, backward and the mean (exp of the
        mean of the two directions' losses, as bilm-tf reports it)."""
        data = data or self.heldout
        was_training = model.training
        model.eval()
        rows = self.settings.heldout_batch_size
        batcher = StreamBatcher(data.stream, rows, self.settings.steps, seed=None,
                                own_rows=self.dist.own_rows(rows, "--heldout-batch-size"))
        batcher.start_epoch(0)
        state = model.bilm.zero_state(len(batcher.own_rows), self.dist.device)
        totals = [0.0, 0.0, 0.0]
        while True:
            window = batcher.next_window(pad=True)
            if window is None:
                break
            batch = data.tensors(window, self.dist.device)
            top_forward, top_backward, state = model.bilm(
                batch["type_char_ids"], batch["forward_types"], batch["backward_types"], state
            )
            mask = batch["mask"]
            for index, (top, targets) in enumerate(
                ((top_forward, batch["forward_targets"]), (top_backward, batch["backward_targets"]))
            ):
                totals[index] += float(model.softmax.full_losses(top[mask], targets[mask]).double().sum())
            totals[2] += float(mask.sum())
        model.train(was_training)
        forward_loss, backward_loss, count = self.dist.sum(totals)
        return {
            "forward_perplexity": math.exp(forward_loss / count),
            "backward_perplexity": math.exp(backward_loss / count),
            "perplexity": math.exp(0.5 * (forward_loss + backward_loss) / count),
            "heldout_tokens": int(count),
            "heldout_unk_rate": round(getattr(data, "unk_rate", float("nan")), 4),
        }

    # ----- training ---------------------------------------------------------------------------

    def _save_checkpoint(self, model: LanguageModel, optimizer, state: List[DirectionState],
                         progress: Dict[str, Any], batcher_state: Optional[Dict[str, Any]]) -> None:
        gathered = [[(self.dist.gather_rows(h).cpu(), self.dist.gather_rows(c).cpu()) for h, c in direction]
                    for direction in state]
        if self.dist.is_main:
            atomic_torch_save({
                "format": CHECKPOINT_FORMAT,
                "model": {name: tensor.cpu() for name, tensor in model.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "lstm_state": gathered,
                "batcher": batcher_state,
                "progress": progress,
            }, self.run_dir / "checkpoint.pt")

    def _open_losses(self, steps: int):
        """`losses.tsv` (step, forward and backward sampled loss of the global batch) kept to the
        `steps` of the checkpoint being resumed, open for appending (main process only)."""
        if not self.dist.is_main:
            return None
        path = self.run_dir / "losses.tsv"
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[:steps] if path.exists() else []
        atomic_write_text(path, "".join(lines))
        return open(path, "a", encoding="utf-8", buffering=1)

    def _write_metrics(self, history: List[Dict[str, Any]]) -> None:
        if self.dist.is_main:
            atomic_write_text(self.run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))

    def train(self) -> Dict[str, Any]:
        """Train until the epochs, the budget or the patience run out; export; return a summary."""
        settings = self.settings
        if self.dist.is_main:
            # Every file is written under a temporary name first; a run killed while it wrote
            # one left it behind. (Not in `recover`: `export` and `perplexity` may read a run
            # that is training.)
            remove_partials(self.run_dir)
        self.prepare()
        device = self.dist.device
        model = self.build_model()
        optimizer = torch.optim.Adagrad(model.parameters(), lr=settings.learning_rate,
                                        initial_accumulator_value=settings.initial_accumulator)
        own_rows = self.dist.own_rows(settings.batch_size, "--batch-size")
        batcher = StreamBatcher(self.train_data.stream, settings.batch_size, settings.steps, seed=settings.seed,
                                own_rows=own_rows)
        progress: Dict[str, Any] = {
            "epoch": 0, "step": 0, "tokens": 0, "elapsed": 0.0, "best": None, "bad_validations": 0,
            "history": [], "last_validation_tokens": 0,
        }
        state = model.bilm.zero_state(len(own_rows), device)
        batcher_state = None
        checkpoint_path = self.run_dir / "checkpoint.pt"
        if checkpoint_path.exists():
            checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            progress = checkpoint["progress"]
            batcher_state = checkpoint["batcher"]
            rows = slice(own_rows[0], own_rows[-1] + 1)
            state = [[(h[rows].to(device), c[rows].to(device)) for h, c in direction]
                     for direction in checkpoint["lstm_state"]]
            self.log(f"resuming {checkpoint_path}: epoch {progress['epoch'] + 1}, step {progress['step']:,}, "
                     f"{progress['tokens']:,} tokens trained")
        model.train()
        trained = model
        if self.dist.world_size > 1:
            trained = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False
            )
        window_tokens = settings.batch_size * settings.steps
        epoch_tokens = self.train_data.stream.num_inputs
        planned = settings.epochs * epoch_tokens
        if settings.max_tokens is not None:
            planned = min(planned, settings.max_tokens)
        start_time = time.monotonic()
        start_elapsed = progress["elapsed"]
        last_log = last_checkpoint = time.monotonic()
        rate_since = (time.monotonic(), progress["tokens"])
        recent: List[Tuple[float, float]] = []

        def elapsed() -> float:
            return start_elapsed + time.monotonic() - start_time

        def validate(reason: str) -> bool:
            """Validate, record, keep the best weights; True when patience runs out."""
            if self.heldout is None:
                return False
            began = time.monotonic()
            result = self.evaluate(model)
            train_loss = [sum(r) / 2 for r in recent]
            record = {"at": reason, "epochs": round(progress["tokens"] / epoch_tokens, 4),
                      "tokens": progress["tokens"], "elapsed": round(elapsed(), 1),
                      "train_sampled_loss": round(float(numpy.mean(train_loss)), 4) if train_loss else None,
                      **{k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()},
                      "seconds": round(time.monotonic() - began, 1)}
            progress["history"].append(record)
            progress["last_validation_tokens"] = progress["tokens"]
            self._write_metrics(progress["history"])
            improved = progress["best"] is None or result["perplexity"] < progress["best"]
            self.log(
                f"validation after {progress['tokens']:,} tokens ({reason}): perplexity forward "
                f"{result['forward_perplexity']:.2f}, backward {result['backward_perplexity']:.2f}, "
                f"mean {result['perplexity']:.2f} on {result['heldout_tokens']:,} held-out tokens "
                f"({record['seconds']:.0f} s){' (best so far)' if improved else ''}"
            )
            if improved:
                progress["best"] = result["perplexity"]
                progress["bad_validations"] = 0
                if self.dist.is_main:
                    atomic_torch_save({"model": {k: v.cpu() for k, v in model.state_dict().items()},
                                        "validation": record}, self.run_dir / "best.pt")
            else:
                progress["bad_validations"] += 1
            return out_of_patience()

        def out_of_patience() -> bool:
            return settings.patience is not None and progress["bad_validations"] >= settings.patience

        def save() -> None:
            progress["elapsed"] = elapsed()
            self._save_checkpoint(model, optimizer, state, progress,
                                  None if batcher_done else batcher.state_dict())

        stop: Optional[str] = "patience" if out_of_patience() else None
        (out_of_time,) = self.dist.from_main([settings.max_time is not None and elapsed() >= settings.max_time])
        batcher_done = False
        losses_file = self._open_losses(progress["step"])
        while stop is None and progress["epoch"] < settings.epochs:
            if batcher_state is not None:
                batcher.load_state_dict(batcher_state)
                batcher_state = None
            else:
                batcher.start_epoch(progress["epoch"])
                state = model.bilm.zero_state(len(own_rows), device)
            batcher_done = False
            while True:
                # The budget is checked before each step.
                if settings.max_tokens is not None and progress["tokens"] >= settings.max_tokens:
                    stop = "max_tokens"
                elif out_of_time:
                    stop = "max_time"
                if stop is not None:
                    break
                window = batcher.next_window()
                if window is None:
                    batcher_done = True
                    break
                step = progress["step"]
                torch.manual_seed(int(numpy.random.SeedSequence([settings.seed, step, self.dist.rank]).generate_state(1)[0]))
                batch = self.train_data.tensors(window, device)
                sample = self._sample(step, (batch["forward_targets"], batch["backward_targets"]))
                loss, forward_loss, backward_loss, state = trained(
                    batch["type_char_ids"], batch["forward_types"], batch["backward_types"],
                    batch["forward_targets"], batch["backward_targets"], state, sample,
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip_norm)
                optimizer.step()
                progress["step"] = step + 1
                progress["tokens"] += window_tokens
                now = time.monotonic()
                # One collective per step: the losses of the whole batch (each process has the mean
                # of its rows), and the main process's clock deciding for all, so that every
                # process stops and saves at the same step.
                main = self.dist.is_main
                forward_sum, backward_sum, out_of_time, time_to_save = self.dist.sum([
                    float(forward_loss), float(backward_loss),
                    main and settings.max_time is not None and elapsed() >= settings.max_time,
                    main and now - last_checkpoint >= settings.checkpoint_every,
                ])
                forward_loss, backward_loss = forward_sum / self.dist.world_size, backward_sum / self.dist.world_size
                recent.append((forward_loss, backward_loss))
                del recent[:-100]
                if main:
                    losses_file.write(f"{progress['step']}\t{forward_loss:.6f}\t{backward_loss:.6f}\n")
                if self.on_step is not None:
                    self.on_step(progress["step"])
                if now - last_log >= settings.log_every and main:
                    rate = (progress["tokens"] - rate_since[1]) / max(now - rate_since[0], 1e-9)
                    left = (planned - progress["tokens"]) / max(rate, 1e-9)
                    if settings.max_time is not None:
                        left = min(left, settings.max_time - elapsed())
                    in_epoch = (progress["tokens"] - progress["epoch"] * epoch_tokens) / epoch_tokens
                    self.log(
                        f"epoch {progress['epoch'] + 1}/{settings.epochs} {100 * min(in_epoch, 1):5.1f}% | "
                        f"{progress['tokens']:,} tokens | {rate:,.0f} tokens/s | sampled loss "
                        f"fwd {numpy.mean([r[0] for r in recent]):.3f} bwd {numpy.mean([r[1] for r in recent]):.3f} | "
                        f"elapsed {_format_duration(elapsed())} | left {_format_duration(left)}"
                    )
                    last_log = now
                if (settings.validate_every_tokens
                        and progress["tokens"] - progress["last_validation_tokens"] >= settings.validate_every_tokens):
                    if validate("interval"):
                        stop = "patience"
                        break
                if settings.checkpoint_every_steps is not None:
                    checkpoint_due = progress["step"] % settings.checkpoint_every_steps == 0
                else:
                    checkpoint_due = time_to_save > 0
                if checkpoint_due:
                    save()
                    last_checkpoint = time.monotonic()
            if batcher_done:
                progress["epoch"] += 1
                if validate("epoch"):
                    stop = "patience"
            elif progress["tokens"] != progress["last_validation_tokens"]:
                validate(stop)
            save()
            last_checkpoint = time.monotonic()
        if losses_file is not None:
            losses_file.close()
        stop = stop or "epochs"
        summary = self.export(model, stop, progress)
        return summary

    def export(self, model: LanguageModel, stop: str, progress: Dict[str, Any]) -> Dict[str, Any]:
        """Write `elmo/` from the best weights (else the last) and `summary.json`."""
        best_path = self.run_dir / "best.pt"
        source = "last"
        if best_path.exists():
            model.load_state_dict(torch.load(best_path, map_location="cpu", weights_only=True)["model"])
            source = "best"
        summary = {
            "stopped_by": stop, "epochs": progress["epoch"], "steps": progress["step"],
            "tokens": progress["tokens"], "elapsed": round(progress["elapsed"], 1),
            "exported_weights": source, "best_perplexity": progress["best"],
            "vocab_size": self.vocab_size, "history": progress["history"],
        }
        if self.dist.is_main:
            options_path, weights_path = export_elmo(model.bilm, self.run_dir / "elmo")
            summary["options_file"], summary["weight_file"] = str(options_path), str(weights_path)
            atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
            self.log(f"stopped ({stop}) after {progress['tokens']:,} tokens in {_format_duration(progress['elapsed'])}; "
                     f"wrote {options_path} and {weights_path} ({source} weights)")
        self.dist.barrier()
        return summary


def load_run_model(run_dir, which: str = "best", device: str = "cpu") -> Tuple[LanguageModel, Pretraining]:
    """The language model of a run directory (`which`: "best" or "last"), on `device`, with its
    prepared data (for `perplexity` and `export`)."""
    run = Pretraining.recover(run_dir, distributed=Distributed(device))
    run.prepare(reuse=True)
    model = run.build_model(initialize=False)
    path = Path(run_dir) / ("best.pt" if which == "best" else "checkpoint.pt")
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: the run has no {which} weights yet")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model"])
    model.eval()
    return model, run
