"""
The `ner-predict` subcommand: `allennlp predict` with the `ner` predictor, one output line per
input line (blank and broken lines included) and an output file that only appears when complete.

    allennlp ner-predict MODEL INPUT.jsonl [--output-file F] [--batch-size N]
        [--cuda-device D] [--silent] [--weights-file W] [-o OVERRIDES] [--predictor-args JSON]
        [--max-line-bytes B] [--trust-archive]

Line N of the output answers line N of the input: a prediction object (see
`ner_elmo.predictors.ner.NerPredictor`), or `{"error": "<why>", "line": N}` for a line
that cannot be tagged. A blank line is such a line (`"error": "blank line"`), so that line counts
always match (`allennlp predict` drops blank lines instead). Lines are split on "\\n" only, as
`wc -l` counts them, and each is decoded on its own: a line that is not UTF-8, longer than
`--max-line-bytes` (read in bounded pieces, never whole), nested deeper than the predictor's
`max_json_depth`, or not an object is an error line, not a crash.

MODEL is a bundle directory (`allennlp ner-export`; tagged by `ner_elmo.runtime`, as
`ner-elmo predict` does without allennlp) or an archive, loaded as the service loads it
(`ner_elmo.service.loading`): checked by `ner_elmo.common.safe_archive` (`--trust-archive` to
accept dotted types), activation cache off. The loop is `ner_elmo.runtime.lines`.

The input is read as a stream (`-` reads standard input; `.gz`/`.bz2`/`.lzma` inputs are
decompressed), `N` lines at a time, and the model sees at most `N` sentences per forward pass.
The output is written to a temporary file beside `--output-file` (`NAME.partial-…`) and renamed
onto it at the end, so an interrupted run never leaves a partial file under the expected name.
Without `--silent`, every output line is also printed to standard output.
"""
import argparse
import json

from allennlp.commands.subcommand import Subcommand
from allennlp.common.checks import ConfigurationError, check_for_gpu

from ner_elmo.common.safe_archive import add_trust_archive_argument
from ner_elmo.runtime.lines import MAX_LINE_BYTES, add_predict_arguments, bounded_lines, check_predict_arguments, run_predict

__all__ = ["NerPredict", "MAX_LINE_BYTES", "bounded_lines"]


@Subcommand.register("ner-predict")
class NerPredict(Subcommand):
    """
    Tag a JSON-lines file with a trained NER model: one output line per input line.

    Registered as a `Subcommand` with name "ner-predict".
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = __doc__.strip().split("\n\n")[0]
        subparser = parser.add_parser(
            self.name,
            description=description,
            help="Tag raw text with a trained NER model: entities with character offsets.",
        )
        subparser.add_argument("archive_file", help="the model: a bundle directory or an archive (model.tar.gz)")
        add_predict_arguments(subparser)
        subparser.add_argument("--cuda-device", type=int, default=-1, help="GPU id (-1: CPU)")
        subparser.add_argument("--weights-file", help="weights to use instead of the archive's (archives only)")
        subparser.add_argument(
            "-o", "--overrides", default="", help="a JSON(net) structure overriding the archived config (archives only)"
        )
        subparser.add_argument(
            "--predictor-args",
            default="",
            help='JSON arguments of the ner predictor (or a bundle\'s tagger), e.g. \'{"max_sentence_tokens": 100}\'',
        )
        add_trust_archive_argument(subparser)
        subparser.set_defaults(func=_ner_predict)
        return subparser


def _ner_predict(args: argparse.Namespace) -> None:
    from ner_elmo.service.loading import command_model_loader

    try:
        check_predict_arguments(args)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    check_for_gpu(args.cuda_device)
    predictor_args = json.loads(args.predictor_args) if args.predictor_args.strip() else {}
    tagger = command_model_loader(args, args.batch_size, predictor_args)()
    run_predict(tagger, args)
