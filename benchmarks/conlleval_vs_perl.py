"""
Compares `ner_elmo.scoring.conlleval` with the original `conlleval` Perl script, output for output.

    python benchmarks/conlleval_vs_perl.py PATH/TO/conlleval.pl PATH/TO/eng.testb [--seeds 3]

The gold tags (last column of the CoNLL file) are re-encoded in several schemes and the
predictions are perturbed in several ways (random tag flips, dropped B-, I- chunk starts, type
swaps, shifted chunk boundaries, prefixes conlleval does not know, ...) under several seeds.
For each combination the script writes conlleval input files and checks that:

* `file`: `evaluate_lines` on the whole file (`-DOCSTART-` lines included) prints exactly what
  `perl conlleval.pl` prints;
* `sentences`: `evaluate(gold, predicted, label_encoding)` on the sentences prints exactly what
  the script prints on a `token gold predicted` file of the same sentences (BIOUL and BIOES mapped
  to BIO token by token);
* a few runs with `-l`, `-r`, `-o` and `-d` (tab-separated input) do the same.

It prints one line per comparison that differs (with both outputs), a summary count and the
time each side took. The Perl script is not part of this project: pass the path of your copy.
"""
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ner_elmo.data.tag_schemes import convert, prefixes, to_spans
from ner_elmo.scoring.conlleval import evaluate, evaluate_lines, to_conlleval_tags
from toolbox import benchmark_parser, conll_blocks


def encode(tags: Sequence[str], scheme: str) -> List[str]:
    """IOB1 (or BIO) `tags` written in `scheme`: IOE2, which `tag_schemes` does not write, ends
    each chunk with `E-` and has `I-` elsewhere."""
    if scheme != "IOE2":
        return convert(tags, "IOB1", scheme)
    encoded = ["O"] * len(tags)
    for kind, start, end in to_spans(tags, "IOB1"):
        encoded[start:end] = [f"I-{kind}"] * (end - start - 1) + [f"E-{kind}"]
    return encoded


SCHEME_PREFIXES = {scheme: "".join(prefixes(scheme)) for scheme in ("BIO", "IOB1", "BIOUL", "BIOES")}
SCHEME_PREFIXES.update({"IOE2": "IE", "original": "BI"})
# Tags conlleval reads through its odd corners: bare prefixes, brackets, ".", the type "0",
# hyphenated types and the boundary marker as a tag.
ODD_TAGS = ["B", "I", "E", "O-PER", "[-NP", "]-NP", "[", "]", ".", ".-LOC", "B-0", "I-0", "S-PER",
            "U-ORG", "L-ORG", "E-MISC", "B-NP-SBJ", "I-NP-SBJ", "-X-", "B-", "-PER", "X"]


def perturbations(types: List[str], prefixes: str) -> Dict[str, Callable]:
    tag_set = ["O"] + [f"{p}-{t}" for p in prefixes for t in types]

    def flip(p):
        return lambda tags, rng: [rng.choice(tag_set) if rng.random() < p else t for t in tags]

    def prefix_to(new_prefix, p):
        def apply(tags, rng):
            out = list(tags)
            for i, tag in enumerate(tags):
                prefix, hyphen, kind = tag.partition("-")
                if hyphen and prefix in "BUS" and rng.random() < p:
                    out[i] = f"{new_prefix}-{kind}"
            return out
        return apply

    def type_swap(tags, rng):
        out, swap_to = list(tags), None
        for i, tag in enumerate(tags):
            prefix, hyphen, kind = tag.partition("-")
            if not hyphen:
                swap_to = None
                continue
            if prefix in "BUS" or i == 0 or swap_to is None:
                swap_to = rng.choice(types) if rng.random() < 0.2 else kind
            if rng.random() < 0.05:  # a type change inside a chunk
                swap_to = rng.choice(types)
            out[i] = f"{prefix}-{swap_to}"
        return out

    def shift(tags, rng):
        out = list(tags)
        for i in range(1, len(tags)):
            if tags[i] != tags[i - 1] and rng.random() < 0.2:
                out[i - 1 if rng.random() < 0.5 else i] = tags[i] if rng.random() < 0.5 else tags[i - 1]
        return out

    def odd(tags, rng):
        return [rng.choice(ODD_TAGS) if rng.random() < 0.1 else t for t in tags]

    def combo(tags, rng):
        return flip(0.05)(shift(type_swap(prefix_to("I", 0.3)(tags, rng), rng), rng), rng)

    return {
        "identical": lambda tags, rng: list(tags),
        "all_O": lambda tags, rng: ["O"] * len(tags),
        "flip5%": flip(0.05),
        "flip30%": flip(0.3),
        "drop_B": prefix_to("I", 0.5),
        "I_starts": prefix_to("I", 1.0),
        "type_swap": type_swap,
        "shift": shift,
        "odd_tags": odd,
        "odd_tags_both": odd,  # in the gold column as well
        "combo": combo,
    }


def run_perl(perl: str, script: str, path: Path, options: Sequence[str] = ()) -> Tuple[str, float]:
    started = time.perf_counter()
    with path.open("rb") as stdin:
        done = subprocess.run([perl, script, *options], stdin=stdin, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"perl failed on {path}: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode("utf-8", "surrogateescape"), elapsed


class Comparison:
    def __init__(self, perl: str, script: str, workdir: Path) -> None:
        self.perl, self.script, self.workdir = perl, script, workdir
        self.compared = self.mismatched = 0
        self.perl_seconds = self.python_seconds = 0.0

    def check(self, name: str, lines: List[str], ours: Callable[[], str], options: Sequence[str] = ()) -> None:
        path = self.workdir / "input.txt"
        path.write_text("".join(lines), encoding="utf-8")
        expected, seconds = run_perl(self.perl, self.script, path, options)
        self.perl_seconds += seconds
        started = time.perf_counter()
        actual = ours()
        self.python_seconds += time.perf_counter() - started
        self.compared += 1
        if actual != expected:
            self.mismatched += 1
            print(f"MISMATCH {name} {' '.join(options)}\n--- perl\n{expected}--- ner_elmo\n{actual}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("conlleval_pl", help="path to the original conlleval Perl script")
    parser.add_argument("conll_file", help="a CoNLL file whose last column is the gold tag")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--perl", default="perl")
    args = parser.parse_args(argv)

    blocks = conll_blocks(args.conll_file, keep_docstart=True)  # split at blank lines only
    original = [[fields[-1] for fields in block] for block in blocks]
    types = sorted({tag.partition("-")[2] for tags in original for tag in tags if tag != "O"})
    is_docstart = [block[0][0] == "-DOCSTART-" for block in blocks]
    gold_by_scheme = {"original": original}
    for scheme in ("BIO", "IOB1", "BIOUL", "BIOES", "IOE2"):
        gold_by_scheme[scheme] = [encode(tags, scheme) for tags in original]
    print(f"{args.conll_file}: {len(blocks)} blocks ({sum(is_docstart)} -DOCSTART-), "
          f"{sum(map(len, original))} lines with tags, types {types}")

    with tempfile.TemporaryDirectory() as tmp:
        comparison = Comparison(args.perl, args.conlleval_pl, Path(tmp))
        for scheme, gold in gold_by_scheme.items():
            for perturbation, perturb in perturbations(types, SCHEME_PREFIXES[scheme]).items():
                for seed in range(args.seeds):
                    rng = random.Random(f"{scheme}/{perturbation}/{seed}")
                    predicted = [perturb(tags, rng) for tags in gold]
                    if perturbation == "odd_tags_both":
                        gold_used = [perturb(tags, rng) for tags in gold]
                    else:
                        gold_used = gold
                    name = f"{scheme}/{perturbation}/seed{seed}"
                    _compare_file(comparison, name, blocks, gold_used, predicted, seed)
                    _compare_sentences(comparison, name, blocks, is_docstart, gold_used, predicted, scheme)
        _compare_options(comparison, blocks, original, types)

    print(f"compared {comparison.compared} outputs: {comparison.compared - comparison.mismatched} identical, "
          f"{comparison.mismatched} different")
    print(f"time: perl {comparison.perl_seconds:.1f} s (process start included), "
          f"ner_elmo {comparison.python_seconds:.1f} s")
    return 1 if comparison.mismatched else 0


def _file_lines(blocks, gold, predicted, delimiter=" ") -> List[str]:
    lines = []
    for block, gold_tags, predicted_tags in zip(blocks, gold, predicted):
        for fields, gold_tag, predicted_tag in zip(block, gold_tags, predicted_tags):
            lines.append(delimiter.join(fields[:-1] + [gold_tag, predicted_tag]) + "\n")
        lines.append("\n")
    return lines


def _compare_file(comparison: Comparison, name, blocks, gold, predicted, seed) -> None:
    lines = _file_lines(blocks, gold, predicted)
    if seed == 1:
        lines = lines[:-1]  # no blank line at the end of the file
    comparison.check(f"file:{name}", lines, lambda: evaluate_lines(lines).to_text())


def _compare_sentences(comparison: Comparison, name, blocks, is_docstart, gold, predicted, scheme) -> None:
    keep = [i for i, docstart in enumerate(is_docstart) if not docstart]
    gold_sentences = [gold[i] for i in keep]
    predicted_sentences = [predicted[i] for i in keep]
    encoding = scheme if scheme in ("BIOUL", "BIOES") else None
    lines = []
    for gold_tags, predicted_tags in zip(gold_sentences, predicted_sentences):
        mapped = zip(to_conlleval_tags(gold_tags, encoding), to_conlleval_tags(predicted_tags, encoding))
        lines.extend(f"w {g} {p}\n" for g, p in mapped)
        lines.append("\n")
    comparison.check(
        f"sentences:{name}", lines, lambda: evaluate(gold_sentences, predicted_sentences, encoding).to_text()
    )


def _compare_options(comparison: Comparison, blocks, gold, types) -> None:
    rng = random.Random("options")
    flip = perturbations(types, "BI")["combo"]
    predicted = [flip(tags, rng) for tags in gold]
    lines = _file_lines(blocks, gold, predicted)
    comparison.check("file:latex", lines, lambda: evaluate_lines(lines).to_latex(), ["-l"])
    tabbed = _file_lines(blocks, gold, predicted, delimiter="\t")
    comparison.check("file:tab", tabbed, lambda: evaluate_lines(tabbed, delimiter="\t").to_text(), ["-d", "\t"])
    # -r: bare types, every token its own chunk; -o names the outside tag
    bare = [[tag.partition("-")[2] or "NONE" for tag in tags] for tags in gold]
    bare_predicted = [[rng.choice(types + ["NONE"]) if rng.random() < 0.2 else t for t in tags] for tags in bare]
    raw_lines = _file_lines(blocks, bare, bare_predicted)
    comparison.check("file:raw", raw_lines, lambda: evaluate_lines(raw_lines, raw=True, o_tag="NONE").to_text(),
                     ["-r", "-o", "NONE"])


if __name__ == "__main__":
    sys.exit(main())
