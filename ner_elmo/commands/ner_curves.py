"""
The `ner-curves` subcommand: learning curves of a training run.

    allennlp ner-curves runs/conll_elmo --output curves.png
"""
import argparse
from pathlib import Path

from allennlp.commands.subcommand import Subcommand

from ner_elmo.reporting.learning_curves import plot_learning_curves, serialization_dir_curves


@Subcommand.register("ner-curves")
class NerCurves(Subcommand):
    """
    Plots training and validation loss and entity F1 per epoch from the `metrics_epoch_N.json`
    files of an AllenNLP serialization directory (a finished or a running training). When the
    `ner_epoch_report` callback's `epoch_report.jsonl` is there, epochs it does not list (no
    validation ran) get no validation points.

    Registered as a `Subcommand` with name "ner-curves".
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = "Plot loss and F1 per epoch of an AllenNLP serialization directory."
        subparser = parser.add_parser(self.name, description=description, help=description)
        subparser.add_argument("serialization_dir", type=str, help="the training's directory")
        subparser.add_argument(
            "--output",
            type=str,
            default=None,
            help="PNG to write (default: SERIALIZATION_DIR/learning_curves.png)",
        )
        subparser.add_argument(
            "--f1-metric",
            type=str,
            default=None,
            help='F1 metric name without "validation_" (default: f1-measure-overall, else '
            "conlleval-f1-overall)",
        )
        subparser.set_defaults(func=ner_curves_from_args)
        return subparser


def ner_curves_from_args(args: argparse.Namespace) -> Path:
    serialization_dir = Path(args.serialization_dir)
    curves = serialization_dir_curves(serialization_dir, f1_key=args.f1_metric)
    output = Path(args.output) if args.output else serialization_dir / "learning_curves.png"
    plot_learning_curves(curves, output, title=serialization_dir.name)
    last = len(curves.epochs) - 1
    print(
        f"{len(curves.epochs)} epochs plotted to {output}; last epoch {curves.epochs[last]}: "
        f"validation loss {_fmt(curves.validation_loss[last])}, "
        f"validation {curves.f1_key or 'F1'} {_fmt(curves.validation_f1[last])}"
    )
    return output


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"
