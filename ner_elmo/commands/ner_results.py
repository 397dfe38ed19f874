"""
`allennlp ner-results`: the trials of a results log (`allennlp ner-accuracy`'s rows) grouped by
identity, with means and standard deviations over seeds; `--markdown` writes the results page
(docs/results.md), `--rows` prints one line per trial. The log, its rows and the grouping are
described and computed in `ner_elmo.commands.ner_accuracy`.

    allennlp ner-results [--results results/accuracy.jsonl] [--markdown docs/results.md] [--rows]
"""
import argparse

from allennlp.commands.subcommand import Subcommand

from ner_elmo.commands.ner_accuracy import ner_results_from_args


@Subcommand.register("ner-results")
class NerResults(Subcommand):
    """
    Groups the rows of a results log by identity and summarises each group (n, mean ± sample
    standard deviation of dev and test F1, per-type test F1, epochs, wall time, flags); writes the
    results page with `--markdown`.

    Registered as a `Subcommand` with name "ner-results".
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = "Summarise a results log (allennlp ner-accuracy's rows) by identity; write the results page."
        subparser = parser.add_parser(self.name, description=description, help=description)
        subparser.add_argument("--results", type=str, default="results/accuracy.jsonl", help="the results log")
        subparser.add_argument("--markdown", type=str, default=None, metavar="OUT",
                               help="write the results page (e.g. docs/results.md) instead of printing the summary")
        subparser.add_argument("--rows", action="store_true", help="print one line per row instead of the groups")
        subparser.set_defaults(func=ner_results_from_args)
        return subparser
