"""Prometheus metrics of the generation service, in a registry of their own.

Each :class:`ServiceMetrics` owns a fresh :class:`~prometheus_client.CollectorRegistry` (not the global
default), so several services (tests, benchmarks) never collide. :func:`start_metrics_server` serves one
registry over HTTP for Prometheus to scrape.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

__all__ = ["ServiceMetrics", "start_metrics_server"]

log = logging.getLogger(__name__)

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, *, namespace: str = "chibify") -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.queue_length = Gauge(
            "generation_queue_length", "Jobs waiting for the worker", namespace=namespace, registry=r
        )
        self.running = Gauge(
            "generation_running_jobs",
            "Jobs in the batch the worker is running",
            namespace=namespace,
            registry=r,
        )
        self.submitted = Counter(
            "generation_jobs_submitted",
            "Jobs accepted by submit()",
            ["kind"],
            namespace=namespace,
            registry=r,
        )
        self.rejected = Counter(
            "generation_jobs_rejected",
            "submit() refused with QueueFull",
            ["scope"],
            namespace=namespace,
            registry=r,
        )
        self.finished = Counter(
            "generation_jobs_finished",
            "Jobs finished, by outcome",
            ["outcome"],
            namespace=namespace,
            registry=r,
        )
        self.failures = Counter(
            "generation_batch_failures",
            "Batches lost to a worker crash or a timeout",
            ["reason"],
            namespace=namespace,
            registry=r,
        )
        self.worker_restarts = Counter(
            "generation_worker_restarts", "Worker processes replaced", namespace=namespace, registry=r
        )
        self.wait_seconds = Histogram(
            "generation_wait_seconds",
            "Submit to start of run",
            namespace=namespace,
            registry=r,
            buckets=_SECONDS,
        )
        self.run_seconds = Histogram(
            "generation_batch_run_seconds",
            "Worker time per batch",
            namespace=namespace,
            registry=r,
            buckets=_SECONDS,
        )
        self.batch_size = Histogram(
            "generation_batch_size",
            "Jobs per batch",
            namespace=namespace,
            registry=r,
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32),
        )

    def value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The current value of one sample (e.g. ``chibify_generation_jobs_finished_total``); for tests."""
        return self.registry.get_sample_value(name, labels or {})

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


def start_metrics_server(port: int, metrics: ServiceMetrics, *, addr: str = "127.0.0.1") -> Any:
    """Serve ``metrics`` on ``http://addr:port/metrics`` from a daemon thread. Returns the server
    (call ``.shutdown()`` to stop it)."""
    server, _thread = start_http_server(port, addr=addr, registry=metrics.registry)
    log.info("metrics on http://%s:%d/metrics", addr, port)
    return server
