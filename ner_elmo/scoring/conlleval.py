"""
Chunk scoring with exactly the numbers of the CoNLL-2000/2003 `conlleval` Perl script
(version 2004-01-26), written here from that script's documented and observable behaviour.
Pure python: no allennlp, no torch.

How conlleval reads tags
------------------------
A tag splits at its first hyphen into a chunk *prefix* and a chunk *type* (`B-PER` is prefix
`B`, type `PER`; `B-NP-SBJ` is `B`, `NP-SBJ`); a tag without a hyphen is all prefix with the
empty type, and the type `0` reads as the empty type too. Between two consecutive tokens,

* a chunk **ends** when the previous prefix is `[` or `]`; or the pair of prefixes is one of
  B→B, B→O, I→B, I→O, E→E, E→I, E→O; or the previous prefix is neither `O` nor `.` and the
  type changes;
* a chunk **starts** when the current prefix is `[` or `]`; or the pair is one of B→B, I→B,
  O→B, O→I, E→E, E→I, O→E; or the current prefix is neither `O` nor `.` and the type changes.

So IOB1 and IOB2 (BIO) are read correctly, and improper sequences are read leniently: an `I-`
after `O` or after another type opens a chunk. Prefixes conlleval does not know (`U`, `L`,
`S`, `M`) only start/end chunks through type changes, so BIOUL/BIOES tags must be mapped to BIO
first (`label_encoding="BIOUL"` does that token by token: U→B, L→I).

The two rules are `chunk_ends` and `chunk_starts` of `ner_elmo.data.tag_schemes`, the home of
every tag reading in the package (its `chunk_spans` decodes spans with them); the prefix maps
are its `prefix_map`.

A predicted chunk is correct when it starts where a gold chunk starts, with the same type, and
both end at the same token with no disagreement on the way. A sentence boundary (blank line, or
a line whose first field is `-X-`) is read as an `O O` token that is not counted; a
`-DOCSTART-` line is an ordinary token tagged `O O` and *is* counted in the token accuracy.

Usage::

    result = evaluate(gold_sentences, predicted_sentences)
    print(result.to_text())          # byte-identical to `perl conlleval.pl` on the same data
    result.overall.f1, result.by_type["PER"].precision    # percentages, as conlleval prints them

    python -m ner_elmo.scoring.conlleval [-l] [-r] [-d DELIM] [-o OTAG] [--json] < output.txt
"""
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from ner_elmo.data.tag_schemes import (
    chunk_ends,
    chunk_starts,
    prefix_map,
    rename_prefixes,
    scorer_names,
)

BOUNDARY = "-X-"
"""First field that marks a line as a sentence boundary, as in conlleval."""


class ConllevalFormatError(ValueError):
    """Input that conlleval refuses (it names the line, and the file when there is one)."""


def split_tag(tag: str) -> Tuple[str, str]:
    """conlleval's reading of a tag: (prefix, type), split at the first hyphen."""
    prefix, hyphen, chunk_type = tag.partition("-")
    # Perl tests the type for truth, and the string "0" is false there.
    if not hyphen or chunk_type == "0":
        chunk_type = ""
    return prefix, chunk_type


def to_conlleval_tags(tags: Sequence[str], label_encoding: Optional[str]) -> List[str]:
    """
    Maps tags of `label_encoding` to tags conlleval reads as intended, token by token
    (`U-PER` → `B-PER`, `L-PER` → `I-PER` for BIOUL). `None`, BIO/IOB2 and IOB1 are unchanged.
    """
    renaming = _prefix_map(label_encoding)
    if not renaming:
        return list(tags)
    return rename_prefixes(tags, renaming)


def _prefix_map(label_encoding: Optional[str]) -> Dict[str, str]:
    if label_encoding is None:
        return {}
    try:
        return prefix_map(label_encoding, "BIO")
    except ValueError:
        raise ValueError(
            f"unknown label_encoding {label_encoding!r}: expected one of {scorer_names()} or None"
        ) from None


@dataclass
class ConllevalCounts:
    """
    The counts conlleval accumulates; every score derives from them, and counts from several
    workers or files add up (`+`).

    `found_correct[t]`, `found_guessed[t]` and `correct_chunks[t]` count gold chunks, predicted
    chunks and correctly predicted chunks of type `t`; a type is a key only when its count is
    non-zero, as in conlleval's tables.
    """

    tokens: int = 0
    correct_tags: int = 0
    non_o_tokens: int = 0
    non_o_correct_tags: int = 0
    found_correct: Dict[str, int] = field(default_factory=dict)
    found_guessed: Dict[str, int] = field(default_factory=dict)
    correct_chunks: Dict[str, int] = field(default_factory=dict)

    def __add__(self, other: "ConllevalCounts") -> "ConllevalCounts":
        def add(a: Dict[str, int], b: Dict[str, int]) -> Dict[str, int]:
            total = dict(a)
            for key, value in b.items():
                total[key] = total.get(key, 0) + value
            return {key: value for key, value in total.items() if value}

        return ConllevalCounts(
            self.tokens + other.tokens,
            self.correct_tags + other.correct_tags,
            self.non_o_tokens + other.non_o_tokens,
            self.non_o_correct_tags + other.non_o_correct_tags,
            add(self.found_correct, other.found_correct),
            add(self.found_guessed, other.found_guessed),
            add(self.correct_chunks, other.correct_chunks),
        )


@dataclass(frozen=True)
class ChunkScores:
    """
    Chunk scores of one type (or overall). `precision`, `recall` and `f1` are percentages
    computed as conlleval computes them (0.0 where undefined).

    # Parameters

    found_correct : `int`
        Gold chunks ("phrases" in conlleval's first line).
    found_guessed : `int`
        Predicted chunks ("found"; the last number of each per-type line).
    correct_chunks : `int`
        Predicted chunks identical to a gold chunk, type included ("correct").
    """

    found_correct: int
    found_guessed: int
    correct_chunks: int
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class OverallScores(ChunkScores):
    """
    Overall chunk scores plus token counts. `token_accuracy` is conlleval's "accuracy"
    (tokens whose gold and predicted tags are identical, in %). `non_o_token_accuracy` is the same
    over the tokens whose gold tag is not `O` (conlleval does not print it).
    """

    tokens: int = 0
    correct_tags: int = 0
    token_accuracy: float = 0.0
    non_o_tokens: int = 0
    non_o_correct_tags: int = 0
    non_o_token_accuracy: float = 0.0


def _chunk_scores(found_correct: int, found_guessed: int, correct: int) -> Tuple[float, float, float]:
    # The same operations in the same order as conlleval, so the doubles are identical.
    precision = 100 * correct / found_guessed if found_guessed > 0 else 0.0
    recall = 100 * correct / found_correct if found_correct > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def _sort_key(chunk_type: str) -> bytes:
    # Perl sorts the bytes of the strings.
    return chunk_type.encode("utf-8", "surrogateescape")


def _pad(text: str, width: int, left: bool = False) -> str:
    # printf pads by bytes in Perl: keep that for non-ASCII type names.
    padding = " " * max(0, width - len(_sort_key(text)))
    return text + padding if left else padding + text


@dataclass(frozen=True)
class ConllevalResult:
    """
    What conlleval reports: `overall` scores, per-type scores `by_type` (ordered as conlleval
    prints them) and the underlying `counts`.
    """

    overall: OverallScores
    by_type: Dict[str, ChunkScores]
    counts: ConllevalCounts

    @classmethod
    def from_counts(cls, counts: ConllevalCounts) -> "ConllevalResult":
        correct = sum(counts.correct_chunks.values())
        found_correct = sum(counts.found_correct.values())
        found_guessed = sum(counts.found_guessed.values())
        overall = OverallScores(
            found_correct,
            found_guessed,
            correct,
            *_chunk_scores(found_correct, found_guessed, correct),
            tokens=counts.tokens,
            correct_tags=counts.correct_tags,
            token_accuracy=100 * counts.correct_tags / counts.tokens if counts.tokens else 0.0,
            non_o_tokens=counts.non_o_tokens,
            non_o_correct_tags=counts.non_o_correct_tags,
            non_o_token_accuracy=(
                100 * counts.non_o_correct_tags / counts.non_o_tokens if counts.non_o_tokens else 0.0
            ),
        )
        by_type = {}
        for chunk_type in sorted(set(counts.found_correct) | set(counts.found_guessed), key=_sort_key):
            gold = counts.found_correct.get(chunk_type, 0)
            guessed = counts.found_guessed.get(chunk_type, 0)
            right = counts.correct_chunks.get(chunk_type, 0)
            by_type[chunk_type] = ChunkScores(gold, guessed, right, *_chunk_scores(gold, guessed, right))
        return cls(overall, by_type, counts)

    def _printed_types(self) -> List[str]:
        # conlleval de-duplicates its sorted type list by comparing with the previous entry,
        # but skips that comparison after a false-looking one: a typeless chunk type ("")
        # present among both gold and predicted chunks is printed twice.
        printed = []
        for chunk_type in self.by_type:
            printed.append(chunk_type)
            if chunk_type == "" and "" in self.counts.found_correct and "" in self.counts.found_guessed:
                printed.append(chunk_type)
        return printed

    def to_text(self) -> str:
        """The report exactly as `perl conlleval.pl` prints it."""
        o = self.overall
        lines = [
            f"processed {o.tokens} tokens with {o.found_correct} phrases; "
            f"found: {o.found_guessed} phrases; correct: {o.correct_chunks}.\n"
        ]
        if o.tokens > 0:
            lines.append(
                "accuracy: %6.2f%%; precision: %6.2f%%; recall: %6.2f%%; FB1: %6.2f\n"
                % (o.token_accuracy, o.precision, o.recall, o.f1)
            )
        for chunk_type in self._printed_types():
            s = self.by_type[chunk_type]
            lines.append(
                "%s: precision: %6.2f%%; recall: %6.2f%%; FB1: %6.2f  %d\n"
                % (_pad(chunk_type, 17), s.precision, s.recall, s.f1, s.found_guessed)
            )
        return "".join(lines)

    def to_latex(self) -> str:
        """The table `perl conlleval.pl -l` prints."""
        parts = ["        & Precision &  Recall  & F$_{\\beta=1} \\\\\\hline"]
        for chunk_type in self._printed_types():
            s = self.by_type[chunk_type]
            parts.append(
                "\n%s &  %6.2f\\%% & %6.2f\\%% & %6.2f \\\\"
                % (_pad(chunk_type, 7, left=True), s.precision, s.recall, s.f1)
            )
        o = self.overall
        parts.append("\\hline\n")
        parts.append("Overall &  %6.2f\\%% & %6.2f\\%% & %6.2f \\\\\\hline\n" % (o.precision, o.recall, o.f1))
        return "".join(parts)

    def to_dict(self) -> Dict[str, object]:
        """JSON-ready scores: `{"overall": {...}, "by_type": {type: {...}}}` (percentages)."""
        return {
            "overall": asdict(self.overall),
            "by_type": {chunk_type: asdict(scores) for chunk_type, scores in self.by_type.items()},
        }


class ConllevalAccumulator:
    """
    conlleval's running state: feed it tokens (gold and predicted tags) and sentence
    boundaries in order; `result()` gives the scores so far without disturbing the state.
    """

    def __init__(self) -> None:
        self.counts = ConllevalCounts()
        self._in_correct = False
        self._last_correct, self._last_correct_type = "O", ""
        self._last_guessed, self._last_guessed_type = "O", ""

    def add_token(self, gold_tag: str, predicted_tag: str) -> None:
        correct, correct_type = split_tag(gold_tag)
        guessed, guessed_type = split_tag(predicted_tag)
        self._step(correct, correct_type, guessed, guessed_type, is_boundary=False)

    def add_boundary(self) -> None:
        """A sentence break: an uncounted `O O` token."""
        self._step("O", "", "O", "", is_boundary=True)

    def add_sentence(self, gold_tags: Sequence[str], predicted_tags: Sequence[str]) -> None:
        """One sentence followed by a boundary (a blank line in conlleval's input)."""
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(
                f"gold and predicted sentences differ in length: {len(gold_tags)} != {len(predicted_tags)}"
            )
        for gold_tag, predicted_tag in zip(gold_tags, predicted_tags):
            self.add_token(gold_tag, predicted_tag)
        self.add_boundary()

    def _step(self, correct: str, correct_type: str, guessed: str, guessed_type: str, is_boundary: bool) -> None:
        counts = self.counts
        if self._in_correct:
            correct_ends = chunk_ends(self._last_correct, correct, self._last_correct_type, correct_type)
            guessed_ends = chunk_ends(self._last_guessed, guessed, self._last_guessed_type, guessed_type)
            if correct_ends and guessed_ends and self._last_guessed_type == self._last_correct_type:
                self._in_correct = False
                _increment(counts.correct_chunks, self._last_correct_type)
            elif correct_ends != guessed_ends or guessed_type != correct_type:
                self._in_correct = False

        correct_starts = chunk_starts(self._last_correct, correct, self._last_correct_type, correct_type)
        guessed_starts = chunk_starts(self._last_guessed, guessed, self._last_guessed_type, guessed_type)
        if correct_starts and guessed_starts and guessed_type == correct_type:
            self._in_correct = True
        if correct_starts:
            _increment(counts.found_correct, correct_type)
        if guessed_starts:
            _increment(counts.found_guessed, guessed_type)

        if not is_boundary:
            counts.tokens += 1
            tag_correct = correct == guessed and guessed_type == correct_type
            counts.correct_tags += tag_correct
            if correct != "O" or correct_type:
                counts.non_o_tokens += 1
                counts.non_o_correct_tags += tag_correct

        self._last_correct, self._last_correct_type = correct, correct_type
        self._last_guessed, self._last_guessed_type = guessed, guessed_type

    def final_counts(self) -> ConllevalCounts:
        """The counts as at the end of the input (a chunk still open and matching is correct)."""
        counts = self.counts
        if not self._in_correct:
            return ConllevalCounts(
                counts.tokens,
                counts.correct_tags,
                counts.non_o_tokens,
                counts.non_o_correct_tags,
                dict(counts.found_correct),
                dict(counts.found_guessed),
                dict(counts.correct_chunks),
            )
        return counts + ConllevalCounts(correct_chunks={self._last_correct_type: 1})

    def result(self) -> ConllevalResult:
        return ConllevalResult.from_counts(self.final_counts())


def _increment(table: Dict[str, int], key: str) -> None:
    table[key] = table.get(key, 0) + 1


def evaluate(
    gold: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
    label_encoding: Optional[str] = None,
) -> ConllevalResult:
    """
    conlleval's scores for sentences of gold and predicted tags: the same numbers as
    `perl conlleval.pl` on a file with one `token gold predicted` line per token and a blank
    line after each sentence.

    `label_encoding` maps the tags to BIO first (see `to_conlleval_tags`); leave it `None`
    for BIO/IOB2 and IOB1 tags, which conlleval reads as they are.
    """
    accumulator = ConllevalAccumulator()
    for gold_tags, predicted_tags in aligned_sentences(gold, predicted):
        accumulator.add_sentence(
            to_conlleval_tags(gold_tags, label_encoding), to_conlleval_tags(predicted_tags, label_encoding)
        )
    return accumulator.result()


def aligned_sentences(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], first: int = 0
) -> Iterator[Tuple[Sequence[str], Sequence[str]]]:
    """
    The pairs `(gold[i], predicted[i])`, checked as they come: `ValueError` when the sentence
    counts differ, or at the first sentence whose tag counts differ, numbered from `first`
    (0-based by default).
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted sentences")
    for index, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted), start=first):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(
                f"sentence {index}: {len(gold_tags)} gold tags but {len(predicted_tags)} predicted tags"
            )
        yield gold_tags, predicted_tags


def evaluate_lines(
    lines: Iterable[str],
    delimiter: str = " ",
    raw: bool = False,
    o_tag: str = "O",
    source: str = "<input>",
) -> ConllevalResult:
    """
    conlleval on its own input format: per token a line of `delimiter`-separated fields whose
    last two are the gold and the predicted tag; blank lines (or a first field `-X-`) between
    sentences. `delimiter` is a regular expression, as conlleval's `-d`; one trailing newline
    is removed from each line (so a `\\r` of CRLF input stays part of the last tag, as in
    conlleval). `raw` and `o_tag` are conlleval's `-r` and `-o`: tags without prefixes, each
    token a chunk of its own, `o_tag` meaning outside.

    Raises `ConllevalFormatError` naming `source` and the line where conlleval would stop.
    """
    if delimiter == "":
        raise ValueError("the delimiter must not be empty")
    pattern = re.compile(delimiter)
    accumulator = ConllevalAccumulator()
    expected_fields: Optional[int] = None
    first_line = 0
    for number, line in enumerate(lines, start=1):
        if line.endswith("\n"):
            line = line[:-1]
        features = _perl_split(pattern, line)
        if expected_fields is None:
            if features:
                expected_fields, first_line = len(features), number
        elif features and len(features) != expected_fields:
            raise ConllevalFormatError(
                f"{source}, line {number}: unexpected number of features: {len(features)} "
                f"({expected_fields} on line {first_line})"
            )
        is_boundary = not features or features[0] == BOUNDARY
        if is_boundary:
            accumulator.add_boundary()
            continue
        if len(features) < 2:
            raise ConllevalFormatError(
                f"{source}, line {number}: unexpected number of features in line {line!r} "
                "(the last two fields must be the gold and the predicted tag)"
            )
        gold_tag, predicted_tag = features[-2], features[-1]
        if raw:
            gold_tag, predicted_tag = _raw_tag(gold_tag, o_tag), _raw_tag(predicted_tag, o_tag)
        accumulator.add_token(gold_tag, predicted_tag)
    return accumulator.result()


def evaluate_file(
    path: Union[str, Path], delimiter: str = " ", raw: bool = False, o_tag: str = "O"
) -> ConllevalResult:
    """`evaluate_lines` on a file, read byte for byte as conlleval reads it."""
    return evaluate_lines(_byte_lines(Path(path).read_bytes()), delimiter, raw, o_tag, source=str(path))


def _byte_lines(data: bytes) -> List[str]:
    # Split on "\n" only and keep every other byte (conlleval keeps "\r"); undecodable
    # bytes survive as surrogates so that they compare and print unchanged.
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line.decode("utf-8", "surrogateescape") for line in lines]


def _perl_split(pattern: "re.Pattern[str]", line: str) -> List[str]:
    # Perl's split drops trailing empty fields (and gives nothing for an empty line).
    fields = pattern.split(line)
    while fields and fields[-1] == "":
        fields.pop()
    return fields


def _raw_tag(tag: str, o_tag: str) -> str:
    if tag == o_tag:
        tag = "O"
    return tag if tag == "O" else "B-" + tag


_USAGE = "usage: python -m ner_elmo.scoring.conlleval [-l] [-r] [-d delimiter] [-o outside_tag] [--json] < file"


def main(argv: Optional[List[str]] = None) -> int:
    """
    The command line of conlleval: reads standard input, prints the report. Options as
    conlleval's: `-l` LaTeX table, `-r` raw tags, `-d` field delimiter (a regular expression,
    default one space), `-o` outside tag for `-r`; and `--json` for `to_dict()` as JSON.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    latex = raw = as_json = False
    delimiter, o_tag = " ", "O"
    while args and args[0].startswith("-"):
        option = args.pop(0)
        if option == "-l":
            latex = True
        elif option == "-r":
            raw = True
        elif option == "--json":
            as_json = True
        elif option in ("-d", "-o"):
            if not args:
                print(f"conlleval: {option} requires an argument\n{_USAGE}", file=sys.stderr)
                return 2
            if option == "-d":
                delimiter = args.pop(0)
            else:
                o_tag = args.pop(0)
        else:
            print(f"conlleval: unknown argument {option}\n{_USAGE}", file=sys.stderr)
            return 2
    if args:
        print(f"conlleval: unexpected command line argument {args[0]} (input comes on stdin)\n{_USAGE}",
              file=sys.stderr)
        return 2
    try:
        result = evaluate_lines(_byte_lines(sys.stdin.buffer.read()), delimiter, raw, o_tag, source="<stdin>")
    except (ConllevalFormatError, ValueError, re.error) as error:
        print(f"conlleval: {error}", file=sys.stderr)
        return 1
    if as_json:
        text = json.dumps(result.to_dict(), indent=2) + "\n"
    else:
        text = result.to_latex() if latex else result.to_text()
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
