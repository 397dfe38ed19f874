"""
Micro-batching on one inference thread.

The model, the `ner` predictor's spaCy tokenizer and the ELMo character cache are not safe to
share between threads, so the service never shares them: one thread loads the predictor, warms
it and makes every call to it. Requests (from the event loop) wait in a bounded queue; the
thread takes the oldest, then keeps taking requests until the batch holds `max_batch_size`
inputs or `max_wait` has passed since the first arrived, parses each request (sentence
splitting and tokenization, on this thread too: spaCy holds the GIL, so never on the event
loop), refuses a request over `max_request_tokens`, and tags the rest in one `predict_parsed`
call. Each request gets its own outputs back through an asyncio future. A request whose deadline
passed while it waited is dropped unparsed (its handler has answered 504 already).
"""
import asyncio
import gc
import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, List, Optional, Tuple

from ner_elmo.service.metrics import ServiceMetrics

logger = logging.getLogger(__name__)

#: Tagged once at start-up before the service reports ready: the first calls pay for lazy
#: set-ups (the tokenizer, torch's kernels, the fast biLM's packed weights).
WARMUP_TEXT = (
    "Maria Lindqvist flew from Oslo to Nairobi on Tuesday. She met officials of the "
    "Kestrel Trading Company there, and returned to Europe a week later."
)


class QueueFull(Exception):
    """The queue cannot take the request now: answer 503 with Retry-After."""


class NotReady(Exception):
    """The model is still loading, failed to load, or the service is shutting down."""


class TooManyInputs(Exception):
    """A request has more inputs than the queue can ever hold."""


class BatchFailed(Exception):
    """The model raised on a request's inputs (alone, after its batch failed)."""


class TooManyTokens(Exception):
    """A request's inputs hold more tokens than `max_request_tokens`: answer 413."""


class DeadlineExceeded(Exception):
    """The request's deadline passed before the model reached it."""


class _Job:
    __slots__ = ("inputs", "future", "loop", "enqueued", "deadline")

    def __init__(
        self, inputs: List[Any], future: "asyncio.Future[List[Any]]", loop, deadline: Optional[float]
    ) -> None:
        self.inputs = inputs
        self.future = future
        self.loop = loop
        self.enqueued = time.monotonic()
        self.deadline = deadline  # time.monotonic() value, or None


def _settle(future: "asyncio.Future", result: Any = None, error: Optional[BaseException] = None) -> None:
    if future.done():  # the handler was cancelled: nobody to answer
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class MicroBatcher:
    """
    One inference thread fed by a bounded queue of requests.

    # Parameters

    load_predictor : `Callable[[], Any]`
        Builds the predictor, on the inference thread. The predictor needs what the `ner`
        predictor has: `parse(input) -> parsed` (a parsed input has `token_count`; anything
        else is an error output), `predict_parsed(parsed) -> outputs` (one output per input, in
        order) and `predict_batch_json(inputs)` (for the warm-up).
    metrics : `ServiceMetrics`
    max_batch_size : `int`
        Most inputs per model call. A request with more inputs than this is tagged in a call
        of its own (requests are never split).
    max_wait : `float`
        Seconds a batch's first request may wait (from its arrival) for more requests.
    queue_size : `int`
        Most inputs waiting at once; a request that would exceed it is refused (`QueueFull`).
    threads : `int`, optional
        `torch.set_num_threads` for the model's work (default: torch's).
    warmup : `bool`, optional (default = `True`)
        Tag `WARMUP_TEXT` alone and in a full batch before reporting ready.
    on_load_failure : `Callable[[BaseException], None]`, optional
        Called (on the inference thread) when the predictor cannot be built.
    max_request_tokens : `int`, optional (default = `None`)
        A request whose inputs hold more tokens in all is refused (`TooManyTokens`) untagged.
    """

    def __init__(
        self,
        load_predictor: Callable[[], Any],
        metrics: ServiceMetrics,
        max_batch_size: int = 32,
        max_wait: float = 0.01,
        queue_size: int = 256,
        threads: Optional[int] = None,
        warmup: bool = True,
        on_load_failure: Optional[Callable[[BaseException], None]] = None,
        max_request_tokens: Optional[int] = None,
    ) -> None:
        if max_batch_size < 1 or queue_size < 1 or max_wait < 0:
            raise ValueError(
                "max_batch_size and queue_size must be positive and max_wait not negative, got "
                f"{max_batch_size}, {queue_size} and {max_wait}"
            )
        self._load_predictor = load_predictor
        self._metrics = metrics
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait
        self.queue_size = queue_size
        self._threads = threads
        self._warmup = warmup
        self._on_load_failure = on_load_failure
        self.max_request_tokens = max_request_tokens
        self._condition = threading.Condition()
        self._jobs: Deque[_Job] = deque()
        self._waiting_inputs = 0
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="ner-inference", daemon=True)
        self.predictor: Any = None
        self.state = "loading"  # loading -> ready -> stopped, or loading -> failed
        self.load_error: Optional[BaseException] = None
        self.load_seconds: Optional[float] = None
        self._ready = threading.Event()

    # ----------------------------------------------------------------------------------------
    # The event loop's side.

    def start(self) -> None:
        self._thread.start()

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def wait_ready(self, timeout: Optional[float] = None) -> bool:
        self._ready.wait(timeout)
        return self.ready

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() or self.state == "loading"

    def submit(self, inputs: List[Any], deadline: Optional[float] = None) -> "asyncio.Future[List[Any]]":
        """
        Queues `inputs` (from the running event loop); the future resolves to their outputs.
        Raises `NotReady`, `TooManyInputs` or `QueueFull` when the request is not accepted. A
        request still waiting at `deadline` (a `time.monotonic()` value) is dropped.
        """
        loop = asyncio.get_running_loop()
        if len(inputs) > self.queue_size:
            raise TooManyInputs(
                f"the request has {len(inputs)} inputs, more than the queue holds "
                f"({self.queue_size}, --queue-size): send at most {self.queue_size} per request"
            )
        future = loop.create_future()
        with self._condition:
            if self._closing:
                raise NotReady("the service is shutting down")
            if self.state != "ready":
                raise NotReady(
                    "the model is not loaded yet" if self.state == "loading" else "the model failed to load"
                )
            if self._waiting_inputs + len(inputs) > self.queue_size:
                raise QueueFull(
                    f"the queue is full ({self._waiting_inputs} of {self.queue_size} inputs waiting)"
                )
            self._jobs.append(_Job(inputs, future, loop, deadline))
            self._waiting_inputs += len(inputs)
            self._metrics.queue_depth.set(self._waiting_inputs)
            self._condition.notify()
        return future

    def close(self, timeout: Optional[float] = None) -> None:
        """Refuses new requests, lets the thread finish every accepted one, and joins it."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # ----------------------------------------------------------------------------------------
    # The inference thread's side.

    def _run(self) -> None:
        try:
            if not self._load():
                return
            while True:
                batch = self._next_batch()
                if batch is None:
                    break
                self._tag(batch)
        except BaseException as error:  # never leave an accepted request unanswered
            logger.exception("the inference thread failed")
            self._fail_waiting(NotReady(f"the inference thread failed: {error!r}"))
            raise
        finally:
            if self.state == "ready":
                self.state = "stopped"
                self._metrics.ready.set(0)
            self._ready.set()

    def _load(self) -> bool:
        started = time.perf_counter()
        try:
            self.predictor = self._load_predictor()
            if self._threads:
                if hasattr(self.predictor, "set_threads"):  # an ONNX bundle: onnxruntime's threads
                    self.predictor.set_threads(self._threads)
                else:
                    import torch

                    torch.set_num_threads(self._threads)
            if self._warmup:
                self.predictor.predict_batch_json([{"text": WARMUP_TEXT}])
                self.predictor.predict_batch_json([{"text": WARMUP_TEXT}] * self.max_batch_size)
        except BaseException as error:
            logger.exception("the predictor could not be loaded")
            self.load_error = error
            self.state = "failed"
            self._ready.set()
            if self._on_load_failure is not None:
                self._on_load_failure(error)
            return False
        # The process now holds about a million long-lived objects (allennlp, torch, the model):
        # a full garbage collection over them takes 0.3 s with the GIL held, which stalls the
        # event loop (/healthz). Frozen, collections see only the objects requests create.
        gc.collect()
        gc.freeze()
        self.load_seconds = time.perf_counter() - started
        with self._condition:
            self.state = "ready"
        self._metrics.ready.set(1)
        self._ready.set()
        logger.info("model loaded and warmed in %.1f s: ready", self.load_seconds)
        return True

    def _next_batch(self) -> Optional[List[_Job]]:
        """The next batch of requests, or `None` once closing with nothing left."""
        with self._condition:
            while not self._jobs and not self._closing:
                self._condition.wait()
            if not self._jobs:
                return None
            batch = [self._jobs.popleft()]
            size = len(batch[0].inputs)
            # From the first request's arrival: one that queued behind a busy model has waited.
            deadline = batch[0].enqueued + self.max_wait
            while size < self.max_batch_size:
                if self._jobs:
                    if size + len(self._jobs[0].inputs) > self.max_batch_size:
                        break
                    batch.append(self._jobs.popleft())
                    size += len(batch[-1].inputs)
                    continue
                remaining = deadline - time.monotonic()
                if self._closing or remaining <= 0:  # when closing, don't wait for more
                    break
                self._condition.wait(remaining)
            self._waiting_inputs -= size
            self._metrics.queue_depth.set(self._waiting_inputs)
        return batch

    def _parse(self, batch: List[_Job]) -> List[Tuple[_Job, List[Any]]]:
        """Each live job with its parsed inputs; a job past its deadline or its token limit is answered."""
        parsed_jobs = []
        for job in batch:
            if job.deadline is not None and time.monotonic() > job.deadline:
                self._answer(job, error=DeadlineExceeded("the deadline passed while the request waited"))
                continue
            parsed, tokens = [], 0
            for value in job.inputs:
                parsed.append(self.predictor.parse(value))
                tokens += getattr(parsed[-1], "token_count", 0)
                if self.max_request_tokens is not None and tokens > self.max_request_tokens:
                    break  # no need to tokenize the rest
            if self.max_request_tokens is not None and tokens > self.max_request_tokens:
                self._answer(job, error=TooManyTokens(
                    f"the request has more than {self.max_request_tokens} tokens (at least {tokens}), "
                    "the limit per request (--max-request-tokens): send less text per request"
                ))
                continue
            parsed_jobs.append((job, parsed))
        return parsed_jobs

    def _tag(self, batch: List[_Job], parsed_jobs: Optional[List[Tuple[_Job, List[Any]]]] = None) -> None:
        if parsed_jobs is None:
            parsed_jobs = self._parse(batch)
        if not parsed_jobs:
            return
        batch = [job for job, _ in parsed_jobs]
        inputs = [value for _, parsed in parsed_jobs for value in parsed]
        try:
            outputs = self._call_model(inputs)
        except Exception as error:
            if len(batch) == 1:
                logger.exception("the model failed on a request")
                self._answer(batch[0], error=BatchFailed(f"{type(error).__name__}: {error}"))
                return
            # Tag each request alone, so that one poisonous input fails its own request only.
            for job, parsed in parsed_jobs:
                self._tag([job], [(job, parsed)])
            return
        begin = 0
        for job in batch:
            end = begin + len(job.inputs)
            self._answer(job, outputs[begin:end])
            begin = end

    def _call_model(self, inputs: List[Any]) -> List[Any]:
        started = time.perf_counter()
        outputs = self.predictor.predict_parsed(inputs)
        if len(outputs) != len(inputs):
            raise RuntimeError(f"the predictor returned {len(outputs)} outputs for {len(inputs)} inputs")
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        self._metrics.batch_size.observe(len(inputs))
        self._metrics.inputs.inc(len(inputs))
        self._metrics.tokens.inc(
            sum(len(output.get("tokens", ())) for output in outputs if isinstance(output, dict))
        )
        return outputs

    @staticmethod
    def _answer(job: _Job, outputs: Any = None, error: Optional[BaseException] = None) -> None:
        try:
            job.loop.call_soon_threadsafe(_settle, job.future, outputs, error)
        except RuntimeError:  # the event loop is closed: the request's connection is gone
            pass

    def _fail_waiting(self, error: BaseException) -> None:
        with self._condition:
            jobs = list(self._jobs)
            self._jobs.clear()
            self._waiting_inputs = 0
            self._metrics.queue_depth.set(0)
        for job in jobs:
            self._answer(job, error=error)
