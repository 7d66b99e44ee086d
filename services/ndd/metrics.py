"""Prometheus metrics of the NDD service (one registry per app, so tests can build many apps): its own
counters here, beside the shared request/queue metrics (`services.common.metrics.ServiceMetrics`) in
the same registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.items_indexed = Counter("ndd_items_indexed", "Items indexed", ["media_type"], registry=self.registry)
        self.item_errors = Counter("ndd_item_errors", "Items that failed to index", ["media_type"],
                                   registry=self.registry)
        self.searches = Counter("ndd_searches", "Searches answered", ["media_type", "descriptor"],
                                registry=self.registry)
        self.search_seconds = Histogram("ndd_search_seconds", "Search latency", ["media_type"],
                                        registry=self.registry)
        self.jobs_waiting = Gauge("ndd_jobs_waiting", "Indexing jobs waiting in the queue", registry=self.registry)
