"""
The prediction service's command line, shared by `allennlp ner-serve` (archives and bundles) and
the torch-only `ner-elmo serve` (bundles): the arguments, their checks, and the uvicorn server
around `ner_elmo.service.app`. Nothing here imports allennlp.
"""
import argparse
import ipaddress
import logging
import os
from typing import Any, Callable, Tuple, Type

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


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    """Every argument of the service except the model and how it is loaded."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument(
        "--max-batch-size", type=int, default=32, help="most inputs tagged in one model call"
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=10.0,
        help="how long a batch waits for more requests after its first",
    )
    parser.add_argument(
        "--queue-size",
        type=int,
        default=None,
        help="most inputs waiting; more get 503 with Retry-After (default: 8 x --max-batch-size)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=2 * 2**20,
        help="largest request body in bytes; larger ones get 413",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for the model: torch's, or onnxruntime's for an ONNX bundle (default: theirs)"
    )
    limits = parser.add_argument_group("limits and timeouts (413, 408, 504 beyond them)")
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
    access = parser.add_argument_group("access")
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
    parser.add_argument(
        "--access-log", action="store_true", help="log every request (costs throughput)"
    )
    parser.add_argument("--log-level", default="info", help="uvicorn's log level")


def check_service_arguments(args: argparse.Namespace) -> None:
    """Raises `ValueError` for an argument that cannot work."""
    for name in (
        "max_batch_size", "queue_size", "max_body_bytes", "threads", "max_text_chars", "max_request_tokens",
        "max_batch_texts", "max_run_chars", "request_timeout", "body_timeout", "header_timeout",
        "keep_alive_timeout", "shutdown_timeout", "limit_concurrency",
    ):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if args.max_wait_ms < 0:
        raise ValueError(f"--max-wait-ms must not be negative, got {args.max_wait_ms}")


def run_service(
    args: argparse.Namespace,
    load: Callable[[], Any],
    stop_signals: Tuple[Type[BaseException], ...] = (KeyboardInterrupt,),
) -> None:
    """
    Serves the model `load()` returns (the `ner` predictor, or a bundle's `Tagger`: anything with
    their JSON interface) until a signal; raises the model's load error, or `OSError` when the
    address cannot be listened on. `stop_signals`: what a signal raises once uvicorn has shut
    down (uvicorn re-raises it for the previous handler).
    """
    try:
        import uvicorn

        from ner_elmo.service.app import ServiceConfig, create_app
        from ner_elmo.service.protocol import with_header_timeout
    except ImportError as error:
        raise ImportError(f"the service needs the serve extra ({error}): pip install 'ner-elmo[serve]'") from None
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
    except stop_signals:
        # uvicorn shut down gracefully on the signal, then raised it again for the previous
        # handler: a clean stop, not an error.
        logger.info("the service stopped")
    batcher = app.state.batcher
    if batcher.load_error is not None:
        raise batcher.load_error
    if not server.started:
        raise OSError(f"the service could not listen on {args.host}:{args.port}")


def load_bundle(args: argparse.Namespace, device: str = "cpu") -> Any:
    """A bundle's `Tagger` with the service's input limits and batch size."""
    import ner_elmo

    return ner_elmo.load(
        args.model,
        device=device,
        batch_size=args.max_batch_size,
        max_text_chars=args.max_text_chars,
        max_run_chars=args.max_run_chars,
    )
