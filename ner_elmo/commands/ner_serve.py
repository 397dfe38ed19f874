"""
The `ner-serve` subcommand: a resident NER model behind HTTP, with micro-batching.

    allennlp ner-serve MODEL [--host 127.0.0.1] [--port 8000] [--max-batch-size 32]
        [--max-wait-ms 10] [--queue-size N] [--max-body-bytes B] [--threads T]
        [--max-text-chars C] [--max-request-tokens T] [--max-batch-texts N] [--max-run-chars R]
        [--request-timeout S] [--body-timeout S] [--header-timeout S] [--keep-alive-timeout S]
        [--shutdown-timeout S] [--limit-concurrency N] [--allowed-hosts H ...]
        [--cors-origins O ...] [--api-key KEY] [--trust-archive]
        [--cuda-device D] [--weights-file W] [-o OVERRIDES] [--predictor-args JSON]

One process, one model copy (a bundle directory's tagger, `ner_elmo.runtime`, as the torch-only
`ner-elmo serve` serves it; or an archive's `ner` predictor, loaded as `allennlp predict
--predictor ner` loads it, with the ELMo activation cache off), on one inference thread; `/readyz` answers 200
once it is loaded and warmed. Endpoints: `POST /predict`, `POST /predict_batch`, `GET /healthz`,
`GET /readyz`, `GET /metrics` (see `ner_elmo.service.app`, and
docs/serving.md). SIGTERM or Ctrl-C stops accepting connections, answers every accepted request, then
exits, within `--shutdown-timeout`. The limits, timeouts, Host allow-list and API key are
described in `ner_elmo.service.app` and docs/security.md. Needs the `serve` extra
(FastAPI, uvicorn, prometheus-client).
"""
import argparse
import json
import logging

from allennlp.commands.subcommand import Subcommand
from allennlp.common.checks import ConfigurationError, check_for_gpu
from allennlp.common.util import SigTermReceived

from ner_elmo.common.safe_archive import add_trust_archive_argument
from ner_elmo.service.serving import (  # noqa: F401  (is_loopback, API_KEY_VARIABLE: this module's names before)
    API_KEY_VARIABLE,
    add_service_arguments,
    check_service_arguments,
    is_loopback,
    run_service,
)

logger = logging.getLogger(__name__)


@Subcommand.register("ner-serve")
class NerServe(Subcommand):
    """
    Serve a trained tagger over HTTP: micro-batched predictions, health, readiness and metrics.

    Registered as a `Subcommand` with name "ner-serve".
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = "Serve a trained NER model over HTTP, with micro-batching and metrics."
        subparser = parser.add_parser(self.name, description=description, help=description)
        subparser.add_argument(
            "archive_file", help="the model: a bundle directory, or an archive (model.tar.gz, path or URL)"
        )
        add_service_arguments(subparser)
        subparser.add_argument("--cuda-device", type=int, default=-1, help="GPU id (-1: CPU)")
        subparser.add_argument("--weights-file", help="weights to use instead of the archive's (archives only)")
        subparser.add_argument(
            "-o",
            "--overrides",
            default="",
            help="a JSON(net) structure overriding the archived config (after the service's "
            'own: {"model...cache": "none"} for ner_elmo embedders; archives only)',
        )
        subparser.add_argument(
            "--predictor-args",
            default="",
            help='JSON arguments of the ner predictor (or a bundle\'s tagger), e.g. \'{"max_sentence_tokens": 100}\'',
        )
        add_trust_archive_argument(subparser)
        subparser.set_defaults(func=_ner_serve)
        return subparser


def _ner_serve(args: argparse.Namespace) -> None:
    from ner_elmo.service.loading import command_model_loader

    try:
        check_service_arguments(args)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    check_for_gpu(args.cuda_device)
    predictor_args = json.loads(args.predictor_args) if args.predictor_args.strip() else {}
    predictor_args.setdefault("max_text_chars", args.max_text_chars)
    predictor_args.setdefault("max_run_chars", args.max_run_chars)
    load = command_model_loader(args, args.max_batch_size, predictor_args)
    try:
        run_service(args, load, stop_signals=(SigTermReceived, KeyboardInterrupt))
    except ImportError as error:
        raise ConfigurationError(f"ner-serve: {error}") from None
    except OSError as error:
        if "could not listen" in str(error):
            raise ConfigurationError(f"ner-serve could not listen on {args.host}:{args.port}") from None
        raise
