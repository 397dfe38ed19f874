"""
The `ner-serve` subcommand: a resident NER model behind HTTP, with micro-batching.

    allennlp ner-serve ARCHIVE [--host 127.0.0.1] [--port 8000] [--max-batch-size 32]
        [--max-wait-ms 10] [--queue-size N] [--max-body-bytes B] [--threads T]
        [--max-text-chars C] [--max-request-tokens T] [--max-batch-texts N] [--max-run-chars R]
        [--request-timeout S] [--body-timeout S] [--header-timeout S] [--keep-alive-timeout S]
        [--shutdown-timeout S] [--limit-concurrency N] [--allowed-hosts H ...]
        [--cors-origins O ...] [--api-key KEY] [--trust-archive]
        [--cuda-device D] [--weights-file W] [-o OVERRIDES] [--predictor-args JSON]

One process, one model copy (the `ner` predictor, loaded as `allennlp predict --predictor ner`
loads it, with the ELMo activation cache off), on one inference thread; `/readyz` answers 200
once it is loaded and warmed. Endpoints: `POST /predict`, `POST /predict_batch`, `GET /healthz`,
`GET /readyz`, `GET /metrics` (see `ner_elmo.service.app`, and the README's "Prediction
service"). SIGTERM or Ctrl-C stops accepting connections, answers every accepted request, then
exits, within `--shutdown-timeout`. The limits, timeouts, Host allow-list and API key are
described in `ner_elmo.service.app` and the README's "Security". Needs the `serve` extra
(FastAPI, uvicorn, prometheus-client).
"""
import argparse
import functools
import ipaddress
import json
import logging
import os

from allennlp.commands.subcommand import Subcommand
from allennlp.common.checks import ConfigurationError, check_for_gpu
from allennlp.common.util import SigTermReceived

from ner_elmo.common.safe_archive import add_trust_archive_argument

logger = logging.getLogger(__name__)

#: The environment variable that may hold the API key (so that it is not in `ps` output).
API_KEY_VARIABLE = "NER_ELMO_API_KEY"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
        limits = subparser.add_argument_group("limits and timeouts (413, 408, 504 beyond them)")
        limits.add_argument("--max-text-chars", type=int, default=100_000, help="characters per text")
        limits.add_argument(
            "--max-request-tokens", type=int, default=20_000, help="tokens per request, all texts together"
        )
        limits.add_argument("--max-batch-texts", type=int, default=64, help="texts per /predict_batch request")
        limits.add_argument(
            "--max-run-chars",
            type=int,
            default=50,
            help="longer runs without whitespace are cut into pieces of this many characters before tokenizing",
        )
        limits.add_argument(
            "--request-timeout", type=float, default=30.0, help="seconds from arrival to answer; later: 504"
        )
        limits.add_argument("--body-timeout", type=float, default=10.0, help="seconds to receive a body; later: 408")
        limits.add_argument(
            "--header-timeout", type=float, default=10.0, help="seconds a connection may take to send its request headers"
        )
        limits.add_argument(
            "--keep-alive-timeout", type=int, default=5, help="seconds an idle connection is kept after an answer"
        )
        limits.add_argument(
            "--shutdown-timeout",
            type=int,
            default=30,
            help="seconds SIGTERM waits for accepted requests before cancelling them",
        )
        limits.add_argument(
            "--limit-concurrency", type=int, default=128, help="open connections and requests; more get 503"
        )
        access = subparser.add_argument_group("access")
        access.add_argument(
            "--allowed-hosts",
            nargs="+",
            default=["localhost", "127.0.0.1", "::1"],
            help="accepted Host header names ('*': any; '*.example.com': subdomains)",
        )
        access.add_argument(
            "--cors-origins", nargs="+", default=[], help="origins whose pages may call the service (default: none)"
        )
        access.add_argument(
            "--api-key",
            default=None,
            help=f"require Authorization: Bearer KEY (except /healthz, /readyz); better: set {API_KEY_VARIABLE}",
        )
        add_trust_archive_argument(subparser)
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
        from ner_elmo.service.protocol import with_header_timeout
    except ImportError as error:
        raise ConfigurationError(
            f"ner-serve needs the serve extra ({error}): pip install 'ner-elmo[serve]'"
        ) from None
    for name in (
        "max_batch_size", "queue_size", "max_body_bytes", "threads", "max_text_chars", "max_request_tokens",
        "max_batch_texts", "max_run_chars", "request_timeout", "body_timeout", "header_timeout",
        "keep_alive_timeout", "shutdown_timeout", "limit_concurrency",
    ):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise ConfigurationError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if args.max_wait_ms < 0:
        raise ConfigurationError(f"--max-wait-ms must not be negative, got {args.max_wait_ms}")
    check_for_gpu(args.cuda_device)
    predictor_args = json.loads(args.predictor_args) if args.predictor_args.strip() else {}
    predictor_args.setdefault("max_text_chars", args.max_text_chars)
    predictor_args.setdefault("max_run_chars", args.max_run_chars)
    api_key = args.api_key or os.environ.get(API_KEY_VARIABLE) or None
    if not api_key and not is_loopback(args.host):
        logger.warning(
            "listening on %s without an API key: anyone who can reach this address can use the "
            "model. Set %s (or --api-key), or serve on 127.0.0.1 behind a proxy",
            args.host,
            API_KEY_VARIABLE,
        )

    config = ServiceConfig(
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        queue_size=args.queue_size,
        max_body_bytes=args.max_body_bytes,
        threads=args.threads,
        max_text_chars=args.max_text_chars,
        max_request_tokens=args.max_request_tokens,
        max_batch_texts=args.max_batch_texts,
        request_timeout_s=args.request_timeout,
        body_timeout_s=args.body_timeout,
        allowed_hosts=tuple(args.allowed_hosts),
        cors_origins=tuple(args.cors_origins),
        api_key=api_key,
    )
    load = functools.partial(
        load_serving_predictor,
        args.archive_file,
        cuda_device=args.cuda_device,
        weights_file=args.weights_file,
        overrides=args.overrides,
        predictor_args=predictor_args,
        batch_size=args.max_batch_size,
        trust_archive=args.trust_archive,
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
            http=with_header_timeout(args.header_timeout),
            limit_concurrency=args.limit_concurrency,
            timeout_keep_alive=args.keep_alive_timeout,
            timeout_graceful_shutdown=args.shutdown_timeout,
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
