"""
The prediction service's ASGI app (FastAPI): `create_app` wires the endpoints to a
`MicroBatcher` that loads the predictor, warms it and makes every model call on one thread.

Bodies are read and answered as bytes rather than through FastAPI's pydantic models: the
answer must be byte for byte the line `allennlp predict` writes (the predictor's `dump_line`),
and bad input must get the predictor's own error object.

What the service trusts (docs/security.md): nothing of a request. Every request has a
deadline (`request_timeout_s`: 504 after it) and limits checked before the model sees it (body
bytes, texts per batch, characters per text: 413; tokens per request: 413 once tokenized, on the
inference thread); only `application/json` bodies are read (415); the `Host` header must be one
of `allowed_hosts` (400), which defeats DNS rebinding; with an `api_key`, every endpoint but
`/healthz` and `/readyz` needs `Authorization: Bearer KEY` (401). CORS headers are sent only
for `cors_origins`.
"""
import asyncio
import hmac
import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Sequence

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect

from ner_elmo.runtime.inputs import INPUT_KEYS, UnreadableLine, _json_type
from ner_elmo.service import try_page as try_page_module
from ner_elmo.service.batcher import (
    BatchFailed,
    DeadlineExceeded,
    MicroBatcher,
    NotReady,
    QueueFull,
    TooManyInputs,
    TooManyTokens,
)
from ner_elmo.service.metrics import ServiceMetrics

logger = logging.getLogger(__name__)

JSON_TYPE = "application/json"
#: The loopback names: the default `allowed_hosts`.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Endpoints open to any Host and without a key: probes reach them by the pod's address.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
#: Paths that need no API key (the Host check still applies): the page holds no data, and its
#: requests to /predict carry the key.
KEYLESS_PATHS = frozenset({"/"})


@dataclass
class ServiceConfig:
    """
    The service's settings (`allennlp ner-serve`'s options of the same names).

    # Parameters

    max_batch_size : `int`, optional (default = `32`)
        Most inputs per model call.
    max_wait_ms : `float`, optional (default = `10`)
        How long the inference thread waits for more requests once it has one.
    queue_size : `int`, optional (default = `None`: 8 x `max_batch_size`)
        Most inputs accepted and waiting; beyond it requests get 503 with Retry-After.
    max_body_bytes : `int`, optional (default = `2 MiB`)
        Larger request bodies get 413.
    threads : `int`, optional (default = `None`: torch's default)
        torch threads for the model.
    retry_after_s : `int`, optional (default = `1`)
        The Retry-After of a 503.
    warmup : `bool`, optional (default = `True`)
        Tag a short text alone and in a full batch before reporting ready.
    max_text_chars : `int`, optional (default = `100_000`)
        Characters per input text (or space-joined tokens); more: 413.
    max_request_tokens : `int`, optional (default = `20_000`)
        Tokens per request, all inputs together; more: 413 (counted as the predictor tokenizes).
    max_batch_texts : `int`, optional (default = `64`)
        Inputs per `/predict_batch` request; more: 413.
    request_timeout_s : `float`, optional (default = `30`)
        A request not answered this long after it arrived gets 504; the service goes on.
    body_timeout_s : `float`, optional (default = `10`)
        A body not received in full this long after the request arrived gets 408.
    allowed_hosts : `Sequence[str]`, optional (default = the loopback names)
        Host header values (without port) accepted; `"*"` accepts any, `"*.example.com"` any
        subdomain.
    cors_origins : `Sequence[str]`, optional (default = none)
        Origins allowed to call the service from a browser page; none: no CORS headers.
    api_key : `str`, optional (default = `None`)
        When set, every endpoint but `/healthz` and `/readyz` needs `Authorization: Bearer KEY`.
    """

    max_batch_size: int = 32
    max_wait_ms: float = 10.0
    queue_size: Optional[int] = None
    max_body_bytes: int = 2 * 2**20
    threads: Optional[int] = None
    retry_after_s: int = 1
    warmup: bool = True
    max_text_chars: int = 100_000
    max_request_tokens: int = 20_000
    max_batch_texts: int = 64
    request_timeout_s: float = 30.0
    body_timeout_s: float = 10.0
    allowed_hosts: Sequence[str] = LOOPBACK_HOSTS
    cors_origins: Sequence[str] = ()
    api_key: Optional[str] = field(default=None, repr=False)  # never in a log line

    @property
    def effective_queue_size(self) -> int:
        return self.queue_size if self.queue_size is not None else 8 * self.max_batch_size


class _Refusal(Exception):
    """An answer other than the predictions: an HTTP status, an error kind and a message."""

    def __init__(self, status: int, kind: str, message: str, retry_after: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.retry_after = retry_after

    def response(self) -> Response:
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        if self.status in (408, 413):  # the rest of the body was not read: the connection cannot be reused
            headers["Connection"] = "close"
        if self.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return _json_response(self.status, {"error": str(self)}, headers)


def _json_response(status: int, value: Any, headers: Optional[dict] = None) -> Response:
    body = json.dumps(value, ensure_ascii=False).encode("utf-8") + b"\n"
    return Response(body, status_code=status, media_type=JSON_TYPE, headers=headers)


def create_app(
    load_predictor: Callable[[], Any],
    config: Optional[ServiceConfig] = None,
    metrics: Optional[ServiceMetrics] = None,
    on_load_failure: Optional[Callable[[BaseException], None]] = None,
) -> FastAPI:
    """
    The service's app. `load_predictor` builds the predictor (e.g. a `functools.partial` of
    `ner_elmo.service.loading.load_serving_predictor`); it runs on the inference thread, which
    the app's lifespan starts (so the server answers `/healthz` and a 503 `/readyz` while the
    model loads) and stops, after every accepted request is answered.
    """
    config = config or ServiceConfig()
    metrics = metrics or ServiceMetrics()
    batcher = MicroBatcher(
        load_predictor,
        metrics,
        max_batch_size=config.max_batch_size,
        max_wait=config.max_wait_ms / 1000.0,
        queue_size=config.effective_queue_size,
        threads=config.threads,
        warmup=config.warmup,
        on_load_failure=on_load_failure,
        max_request_tokens=config.max_request_tokens,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        try:
            yield
        finally:
            # uvicorn has answered every request by now; the thread ends when the queue is empty.
            await asyncio.get_running_loop().run_in_executor(None, batcher.close)

    app = FastAPI(
        title="ner-elmo prediction service",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.batcher = batcher
    app.state.metrics = metrics
    app.state.config = config
    # Added last: outermost, so that a browser's preflight is answered without a key.
    app.add_middleware(_Guard, allowed_hosts=tuple(config.allowed_hosts), api_key=config.api_key, metrics=metrics)
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    async def read_json(request: Request, deadline: float) -> Any:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != JSON_TYPE:
            raise _Refusal(
                415,
                "unsupported_media_type",
                f"expected Content-Type: {JSON_TYPE}, got {media_type or 'none'}",
            )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > config.max_body_bytes:
            raise _Refusal(
                413,
                "body_too_large",
                f"the request body has {int(declared)} bytes, more than the limit of "
                f"{config.max_body_bytes} (--max-body-bytes)",
            )
        chunks: List[bytes] = []

        async def receive() -> None:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > config.max_body_bytes:
                    raise _Refusal(
                        413,
                        "body_too_large",
                        f"the request body has more than the limit of {config.max_body_bytes} bytes "
                        "(--max-body-bytes)",
                    )
                chunks.append(chunk)

        try:
            await asyncio.wait_for(receive(), max(0.0, min(deadline, time.monotonic() + config.body_timeout_s) - time.monotonic()))
        except asyncio.TimeoutError:
            raise _Refusal(
                408, "body_timeout", f"the request body did not arrive within {config.body_timeout_s:g} s (--body-timeout)"
            ) from None
        body = b"".join(chunks)
        if not body.strip():
            raise _Refusal(400, "bad_json", "the request body is empty: expected JSON")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise _Refusal(400, "bad_json", f"not valid UTF-8: {error}") from None
        value = batcher.predictor.load_line(text.lstrip("\ufeff"))
        if isinstance(value, UnreadableLine):
            raise _Refusal(400, "bad_json", value["error"])
        return value

    def check_sizes(inputs: List[Any]) -> None:
        """Characters per text, before anything is queued (the other limits: see the batcher)."""
        for index, value in enumerate(inputs):
            if not isinstance(value, dict):
                continue  # the predictor answers it with an error object
            for key in INPUT_KEYS:
                item = value.get(key)
                if isinstance(item, str):
                    size, at_least = len(item), ""
                elif key == "tokens" and isinstance(item, list):
                    # Each token takes at least a character and a space: a long list is over at once.
                    size, at_least = 2 * len(item) - 1, "at least "
                    if size <= config.max_text_chars:
                        size, at_least = sum(len(token) + 1 for token in item if isinstance(token, str)) - 1, ""
                else:
                    continue
                if size > config.max_text_chars:
                    where = f"input {index}: " if len(inputs) > 1 else ""
                    raise _Refusal(
                        413,
                        "text_too_large",
                        f"{where}{key!r} has {at_least}{size} characters, more than the limit of "
                        f"{config.max_text_chars} (--max-text-chars)",
                    )

    async def tag(inputs: List[Any], deadline: float) -> List[Any]:
        check_sizes(inputs)
        try:
            future = batcher.submit(inputs, deadline)
        except QueueFull as error:
            raise _Refusal(503, "queue_full", str(error), config.retry_after_s) from None
        except TooManyInputs as error:
            raise _Refusal(413, "body_too_large", str(error)) from None
        except NotReady as error:
            raise _Refusal(503, "not_ready", str(error), config.retry_after_s) from None
        try:
            # shield: a timeout cancels the wait, not the batcher's future (cancelled below).
            return await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            future.cancel()  # the batcher drops it if the model has not reached it yet
            raise _Refusal(504, "timeout", timeout_message) from None
        except DeadlineExceeded:
            raise _Refusal(504, "timeout", timeout_message) from None
        except TooManyTokens as error:
            raise _Refusal(413, "too_many_tokens", str(error)) from None
        except BatchFailed as error:
            raise _Refusal(500, "internal", f"the model failed: {error}") from None
        except NotReady as error:
            raise _Refusal(503, "not_ready", str(error), config.retry_after_s) from None

    timeout_message = (
        f"no answer within the request's deadline of {config.request_timeout_s:g} s (--request-timeout)"
    )

    async def answer(endpoint: str, request: Request, handler) -> Response:
        started = time.perf_counter()
        deadline = time.monotonic() + config.request_timeout_s
        metrics.in_progress.inc()
        try:
            if not batcher.ready:
                # Checked before reading the body: a loading or stopping service reads nothing.
                raise _Refusal(
                    503, "not_ready", "the model is not loaded yet" if batcher.state == "loading"
                    else f"the service is not ready ({batcher.state})", config.retry_after_s,
                )
            response = await handler(await read_json(request, deadline), deadline)
        except _Refusal as refusal:
            metrics.errors.labels(refusal.kind).inc()
            response = refusal.response()
        except ClientDisconnect:
            response = Response(status_code=499)  # nobody reads it; counted as such
        except Exception as error:  # a bug here must not take the process down
            logger.exception("unexpected error answering %s", endpoint)
            metrics.errors.labels("internal").inc()
            response = _json_response(500, {"error": f"internal error: {type(error).__name__}: {error}"})
        finally:
            metrics.in_progress.dec()
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        metrics.request_latency.labels(endpoint).observe(time.perf_counter() - started)
        return response

    def prediction_body(output: Any) -> bytes:
        return batcher.predictor.dump_line(output).encode("utf-8")

    async def predict_one(value: Any, deadline: float) -> Response:
        [output] = await tag([value], deadline)
        if isinstance(output, dict) and "error" in output:
            metrics.errors.labels("bad_request").inc()
            return Response(prediction_body(output), status_code=422, media_type=JSON_TYPE)
        return Response(prediction_body(output), media_type=JSON_TYPE)

    async def predict_many(value: Any, deadline: float) -> Response:
        if not isinstance(value, list):
            raise _Refusal(422, "bad_request", f"expected a JSON array of inputs, got {_json_type(value)}")
        if len(value) > config.max_batch_texts:
            raise _Refusal(
                413,
                "too_many_texts",
                f"the request has {len(value)} inputs, more than the limit of {config.max_batch_texts} "
                "(--max-batch-texts)",
            )
        outputs = await tag(value, deadline) if value else []
        failed = sum(1 for output in outputs if isinstance(output, dict) and "error" in output)
        if failed:
            metrics.errors.labels("bad_request").inc(failed)
        lines = [prediction_body(output)[:-1] for output in outputs]  # without the "\n"
        return Response(b"[" + b",\n".join(lines) + b"]\n", media_type=JSON_TYPE)

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        """One input object: the prediction, or the predictor's error object with 422."""
        return await answer("predict", request, predict_one)

    @app.post("/predict_batch")
    async def predict_batch(request: Request) -> Response:
        """A list of input objects: the list of their predictions or error objects, in order."""
        return await answer("predict_batch", request, predict_many)

    @app.get("/")
    async def try_page() -> Response:
        """A page to try the model: a text box, a button, the entities highlighted."""
        headers = {
            "Content-Security-Policy": try_page_module.CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        return Response(try_page_module.PAGE, media_type="text/html; charset=utf-8", headers=headers)

    @app.get("/healthz")
    async def healthz() -> Response:
        """200 while the process and its inference thread live (loading included)."""
        if batcher.alive:
            return _json_response(200, {"status": "ok", "model": batcher.state})
        error = f"{type(batcher.load_error).__name__}: {batcher.load_error}" if batcher.load_error else None
        return _json_response(503, {"status": "failed", "model": batcher.state, "error": error})

    @app.get("/readyz")
    async def readyz() -> Response:
        """200 once the model is loaded and warmed, 503 before (and while shutting down)."""
        if batcher.ready:
            return _json_response(
                200,
                {
                    "status": "ready",
                    "max_batch_size": batcher.max_batch_size,
                    "max_wait_ms": config.max_wait_ms,
                    "queue_size": batcher.queue_size,
                    "load_seconds": round(batcher.load_seconds or 0.0, 3),
                },
            )
        return _json_response(503, {"status": batcher.state}, {"Retry-After": str(config.retry_after_s)})

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    return app


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Whether a Host header (with or without port; IPv6 in brackets) names an allowed host."""
    if host.startswith("["):
        name = host[1 : host.find("]")] if "]" in host else ""
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.lower().rstrip(".")
    if not name:
        return False
    for pattern in allowed:
        pattern = pattern.lower()
        if pattern == "*" or name == pattern.strip("[]"):
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


class _Guard:
    """
    ASGI middleware: the Host allow-list (400) and the API key (401), for every path except the
    probes. A pure ASGI class rather than an HTTP middleware: it adds no task per request.
    """

    def __init__(self, app, allowed_hosts: Sequence[str], api_key: Optional[str], metrics: ServiceMetrics) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.expected = None if not api_key else f"Bearer {api_key}".encode("utf-8")
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        refusal = None
        if not host_allowed(host, self.allowed_hosts):
            refusal = _Refusal(400, "bad_host", f"Host {host!r} is not allowed (--allowed-hosts)")
        elif self.expected is not None and scope["path"] not in KEYLESS_PATHS and not hmac.compare_digest(
            headers.get(b"authorization", b""), self.expected
        ):
            refusal = _Refusal(401, "unauthorized", "missing or wrong API key: send Authorization: Bearer KEY")
        if refusal is None:
            await self.app(scope, receive, send)
            return
        self.metrics.errors.labels(refusal.kind).inc()
        await refusal.response()(scope, receive, send)
