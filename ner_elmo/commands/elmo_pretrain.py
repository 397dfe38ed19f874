"""
The `elmo-pretrain` subcommand: `python -m ner_elmo.pretraining` as an allennlp command (the
same arguments; see `ner_elmo.pretraining.cli`).

    allennlp elmo-pretrain train --corpus DIR --heldout FILE --preset cpu --output-dir RUN
    allennlp elmo-pretrain {prepare,perplexity,export} ...
"""
import argparse

from allennlp.commands.subcommand import Subcommand

from ner_elmo.pretraining import cli


@Subcommand.register("elmo-pretrain")
class ElmoPretrain(Subcommand):
    """
    Pretrain an ELMo biLM on plain text and export the standard options.json + weight file.

    Registered as a `Subcommand` with name "elmo-pretrain".
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        subparser = parser.add_parser(
            self.name,
            description="Pretrain an ELMo biLM on plain text (bilm-tf's architecture and training) and "
            "export options.json + lm_weights.hdf5 that allennlp's Elmo loads.",
            help="Pretrain your own ELMo on plain text.",
        )
        cli.add_arguments(subparser)
        subparser.set_defaults(func=cli.run)
        return subparser
