"""
The service's Prometheus metrics, in a registry of their own (so that several apps can live in
one process, as in the tests, without clashing in prometheus-client's global registry).
"""
from typing import Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

# Request latencies from 1 ms to 30 s: a lone sentence takes milliseconds, a batch of long
# documents on an ELMo model seconds.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)
# Inputs per model call: powers of two up to 1,024 (a /predict_batch request is never split).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServiceMetrics:
    """
    What `GET /metrics` exposes (all names prefixed `ner_`):

    * `ner_request_latency_seconds{endpoint}`: histogram of the time from a request's arrival
      to its answer, every answer included (errors too);
    * `ner_requests_total{endpoint, status}`: answers by HTTP status;
    * `ner_errors_total{kind}`: `queue_full`, `not_ready`, `body_too_large`, `bad_json`,
      `bad_request` (an input the predictor rejects), `internal` (the model raised);
    * `ner_batch_size`: histogram of inputs per model call (the micro-batches);
    * `ner_batch_seconds`: histogram of the time of each model call;
    * `ner_queue_depth`: inputs accepted and waiting for the inference thread;
    * `ner_requests_in_progress`: requests received and not yet answered;
    * `ner_inputs_total`, `ner_tokens_total`: inputs and tokens tagged;
    * `ner_ready`: 1 once the model is loaded and warmed.
    """

    def __init__(self, registry: Optional[CollectorRegistry] = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        kwargs = {"registry": self.registry}
        self.request_latency = Histogram(
            "ner_request_latency_seconds",
            "Time from a request's arrival to its answer.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            **kwargs,
        )
        self.requests = Counter(
            "ner_requests", "Answered requests by endpoint and HTTP status.", ["endpoint", "status"], **kwargs
        )
        self.errors = Counter("ner_errors", "Errors by kind.", ["kind"], **kwargs)
        self.batch_size = Histogram(
            "ner_batch_size", "Inputs per model call (micro-batch).", buckets=BATCH_BUCKETS, **kwargs
        )
        self.batch_seconds = Histogram(
            "ner_batch_seconds", "Time of each model call.", buckets=LATENCY_BUCKETS, **kwargs
        )
        self.queue_depth = Gauge(
            "ner_queue_depth", "Inputs accepted and waiting for the inference thread.", **kwargs
        )
        self.in_progress = Gauge(
            "ner_requests_in_progress", "Requests received and not yet answered.", **kwargs
        )
        self.inputs = Counter("ner_inputs", "Inputs tagged (errors included).", **kwargs)
        self.tokens = Counter("ner_tokens", "Tokens tagged.", **kwargs)
        self.ready = Gauge("ner_ready", "1 once the model is loaded and warmed.", **kwargs)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)

    content_type = CONTENT_TYPE_LATEST
