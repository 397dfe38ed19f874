"""
`allennlp ner-calibrate BUNDLE DEV [--test TEST]`: how well a bundle's entity scores are
calibrated (`ner_elmo.scoring.calibration`), and a temperature fitted on the dev data.

    allennlp ner-calibrate bundle/ $DATA/eng.testa --test $DATA/eng.testb \
        --plot reliability.png --fit-temperature --save-temperature

prints the expected calibration error over entities, precision and recall at score thresholds,
and with `--fit-temperature` the temperature that minimises the dev entities' negative
log-likelihood, with the ECE before and after on dev and test. `--save-temperature` stores it in
the bundle's config.json (the tags never change; only the scores do).
"""
import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

from allennlp.commands.subcommand import Subcommand

from ner_elmo.common.atomic_write import atomic_write_text
from ner_elmo.data.tag_schemes import to_spans
from ner_elmo.runtime.bundle import CONFIG_NAME
from ner_elmo.scoring import calibration

THRESHOLDS = (0.5, 0.8, 0.9, 0.95)


@Subcommand.register("ner-calibrate")
class NerCalibrate(Subcommand):
    """
    Measures the calibration of a bundle's entity scores on CoNLL files and fits a temperature.

    Registered as a `Subcommand` with name "ner-calibrate".
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = "Measure how well a bundle's entity scores are calibrated; fit a temperature on dev data."
        subparser = parser.add_parser(self.name, description=description, help=description)
        subparser.add_argument("bundle", type=str, help="a bundle directory (allennlp ner-export)")
        subparser.add_argument("dev_file", type=str, help="CoNLL file the temperature is fitted on")
        subparser.add_argument("--test", type=str, default=None, help="CoNLL file to report on (never fitted)")
        subparser.add_argument("--coding-scheme", type=str, default="auto", help="the files' tag scheme")
        subparser.add_argument("--bins", type=int, default=10, help="equal-width score bins of the ECE")
        subparser.add_argument("--plot", type=str, default=None, help="write the dev reliability diagram (PNG)")
        subparser.add_argument("--fit-temperature", action="store_true", help="fit a temperature on the dev file")
        subparser.add_argument("--save-temperature", action="store_true", help="store the fitted temperature in the bundle")
        subparser.add_argument("--output", type=str, default=None, help="write every number as JSON")
        subparser.set_defaults(func=_run)
        return subparser


def _run(args: argparse.Namespace) -> None:
    results = calibrate(
        args.bundle, args.dev_file, args.test, args.coding_scheme, args.bins, args.plot, args.fit_temperature, args.save_temperature
    )
    print(format_results(results))
    if args.output:
        atomic_write_text(args.output, json.dumps(results, indent=2))


class _Scored:
    """One file tagged once: the network's logits kept, so scores at any temperature are cheap."""

    def __init__(self, tagger, path: str, coding_scheme: str) -> None:
        from ner_elmo.data.dataset_readers.ner_conll import NerConllDatasetReader

        reader = NerConllDatasetReader(coding_scheme=coding_scheme, label_encoding=tagger.label_encoding)
        sentences, self.gold = [], []
        self.gold_count = 0  # every gold entity, one across a piece cut too (recall counts it)
        for instance in reader.read(path):
            spans = to_spans(instance["tags"].labels, tagger.label_encoding)
            self.gold_count += len(spans)
            # The file's tokens as the tagger reads pre-tokenized input (a sentence over
            # max_sentence_tokens in pieces; an entity across a cut can then not be found).
            first = 0
            for piece in tagger.parse({"tokens": [token.text for token in instance["tokens"].tokens]}).sentences:
                last = first + len(piece)
                sentences.append(piece)
                self.gold.append({(label, start - first, end - first) for label, start, end in spans if first <= start and end <= last})
                first = last
        self.path = path
        self.tagger = tagger
        self.batches = list(tagger.batches(sentences))

    def outcomes(self, temperature: float) -> Tuple[List[float], List[bool]]:
        scores, correct = [], []
        for indexes, logits, mask in self.batches:
            for index, (tags, sentence_scores) in zip(indexes, self.tagger.decode(logits, mask, temperature)):
                for label, start, end in to_spans(tags, self.tagger.label_encoding):
                    scores.append(self.tagger.scorer.probability(sentence_scores, label, start, end))
                    correct.append((label, start, end) in self.gold[index])
        return scores, correct

    def summary(self, temperature: float, bins: int) -> Dict[str, Any]:
        scores, correct = self.outcomes(temperature)
        ece, table = calibration.expected_calibration_error(scores, correct, bins)
        return {
            "file": Path(self.path).name,
            "temperature": temperature,
            "entities": len(scores),
            "gold_entities": self.gold_count,
            "ece": ece,
            "nll": calibration.negative_log_likelihood(scores, correct),
            "bins": table,
            "thresholds": calibration.precision_recall_at(scores, correct, self.gold_count, THRESHOLDS),
        }


def calibrate(bundle, dev_file, test_file=None, coding_scheme="auto", bins=10, plot=None, fit=False, save=False) -> Dict[str, Any]:
    """Every number `ner-calibrate` prints (see the module docstring), as a dict."""
    import ner_elmo

    tagger = ner_elmo.load(bundle, temperature=1.0)
    files = {"dev": _Scored(tagger, dev_file, coding_scheme)}
    if test_file:
        files["test"] = _Scored(tagger, test_file, coding_scheme)
    results: Dict[str, Any] = {"bundle": str(bundle), "before": {name: scored.summary(1.0, bins) for name, scored in files.items()}}
    if fit or save:
        temperature = calibration.fit_temperature(files["dev"].outcomes)
        results["temperature"] = temperature
        results["after"] = {name: scored.summary(temperature, bins) for name, scored in files.items()}
        if save:
            path = Path(bundle) / CONFIG_NAME
            config = json.loads(path.read_text(encoding="utf-8"))
            config["scores"] = {
                "temperature": temperature,
                "fitted_on": Path(dev_file).name,
                "dev_ece_before": results["before"]["dev"]["ece"],
                "dev_ece_after": results["after"]["dev"]["ece"],
            }
            atomic_write_text(path, json.dumps(config, indent=2))
            results["saved"] = str(path)
    if plot:
        series = [(f"{stage} (T={summary['temperature']:.2f}, ECE {summary['ece']:.3f})", summary["bins"])
                  for stage in ("before", "after") if stage in results for summary in [results[stage]["dev"]]]
        dev = results["before"]["dev"]
        calibration.reliability_diagram(series, f"{dev['file']}: {dev['entities']} entities", plot)
        results["plot"] = str(plot)
    return results


def format_results(results: Dict[str, Any]) -> str:
    lines = []
    for stage in ("before", "after"):
        for name, summary in results.get(stage, {}).items():
            lines.append(
                f"{name} ({summary['file']}), temperature {summary['temperature']:.3f}: {summary['entities']} entities "
                f"({summary['gold_entities']} gold), ECE {summary['ece']:.4f}, NLL {summary['nll']:.4f}"
            )
            for row in summary["thresholds"]:
                lines.append(
                    f"  score >= {row['threshold']:.2f}: {row['kept']} entities, precision {row['precision']:.2f}, recall {row['recall']:.2f}"
                )
    if "saved" in results:
        lines.append(f"temperature {results['temperature']:.3f} saved in {results['saved']}")
    return "\n".join(lines)
