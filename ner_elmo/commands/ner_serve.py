"""
The `ner-serve` subcommand: a resident NER model behind HTTP, with micro-batching.

    allennlp ner-serve ARCHIVE [--host 127.0.0.1] [--port 8000] [--max-batch-size 32]
        [--max-wait-ms 10] [--queue-size N] [--max-body-bytes B] [--threads T]
        [--cuda-device D] [--weights-file W] [-o OVERRIDES] [--predictor-args JSON]

One process, one model copy (the `ner` predictor, loaded as `allennlp predict --predictor ner`
loads it, with the ELMo activation cache off), on one inference thread; `/readyz` answers 200
once it is loaded and warmed. Endpoints: `POST /predict`, `POST /predict_batch`, `GET /healthz`,
`GET /readyz`, `GET /metrics` (see `ner_elmo.service.app`, and the README's "Prediction
service"). SIGTERM or Ctrl-C stops accepting connections, answers every accepted request, then
exits. Needs the `serve` extra (FastAPI, uvicorn, prometheus-client).
"""
import argparse
import functools
import json
import logging

from allennlp.commands.subcommand import Subcommand
from allennlp.common.checks import ConfigurationError, check_for_gpu
from allennlp.common.util import SigTermReceived

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
        subparser.add_argument("archive_file", help="the archived model (model.tar.gz, path or URL)")
        subparser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        subparser.add_argument("--port", type=int, default=8000, help="port to listen on")
        subparser.add_argument(
            "--max-batch-size", type=int, default=32, help="most inputs tagged in one model call"
        )
        subparser.add_argument(
            "--max-wait-ms",
            type=float,
            default=10.0,
            help="how long a batch waits for more requests after its first",
        )
        subparser.add_argument(
            "--queue-size",
            type=int,
            default=None,
            help="most inputs waiting; more get 503 with Retry-After (default: 8 x --max-batch-size)",
        )
        subparser.add_argument(
            "--max-body-bytes",
            type=int,
            default=2 * 2**20,
            help="largest request body in bytes; larger ones get 413",
        )
        subparser.add_argument(
            "--threads", type=int, default=None, help="torch threads for the model (default: torch's)"
        )
        subparser.add_argument("--cuda-device", type=int, default=-1, help="GPU id (-1: CPU)")
        subparser.add_argument("--weights-file", help="weights to use instead of the archive's")
        subparser.add_argument(
            "-o",
            "--overrides",
            default="",
            help="a JSON(net) structure overriding the archived config (after the service's "
            'own: {"model...cache": "none"} for ner_elmo embedders)',
        )
        subparser.add_argument(
            "--predictor-args",
            default="",
            help='JSON arguments of the ner predictor, e.g. \'{"label_encoding": "BIOUL"}\'',
        )
        subparser.add_argument(
            "--access-log", action="store_true", help="log every request (costs throughput)"
        )
        subparser.add_argument("--log-level", default="info", help="uvicorn's log level")
        subparser.set_defaults(func=_ner_serve)
        return subparser


def _ner_serve(args: argparse.Namespace) -> None:
    try:
        import uvicorn

        from ner_elmo.service.app import ServiceConfig, create_app
        from ner_elmo.service.loading import load_serving_predictor
    except ImportError as error:
        raise ConfigurationError(
            f"ner-serve needs the serve extra ({error}): pip install 'ner-elmo[serve]'"
        ) from None
    for name in ("max_batch_size", "queue_size", "max_body_bytes", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigurationError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.max_wait_ms < 0:
        raise ConfigurationError(f"--max-wait-ms must not be negative, got {args.max_wait_ms}")
    check_for_gpu(args.cuda_device)
    predictor_args = json.loads(args.predictor_args) if args.predictor_args.strip() else {}

    config = ServiceConfig(
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        queue_size=args.queue_size,
        max_body_bytes=args.max_body_bytes,
        threads=args.threads,
    )
    load = functools.partial(
        load_serving_predictor,
        args.archive_file,
        cuda_device=args.cuda_device,
        weights_file=args.weights_file,
        overrides=args.overrides,
        predictor_args=predictor_args,
        batch_size=args.max_batch_size,
    )
    server: "uvicorn.Server"

    def stop(error: BaseException) -> None:  # the model cannot load: the process must not linger
        server.should_exit = True

    app = create_app(load, config, on_load_failure=stop)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=args.access_log,
            lifespan="on",
        )
    )
    try:
        server.run()
    except (SigTermReceived, KeyboardInterrupt):
        # uvicorn shut down gracefully on the signal, then raised it again for the previous
        # handler (allennlp's, which raises SigTermReceived): a clean stop, not an error.
        logger.info("ner-serve stopped")
    batcher = app.state.batcher
    if batcher.load_error is not None:
        raise batcher.load_error
    if not server.started:
        raise ConfigurationError(f"ner-serve could not listen on {args.host}:{args.port}")
