"""Metric plugins, one per file; the interface lives in ``benchmark.metrics.base``."""

from .base import METRICS, Metric, MetricConfig, MetricContext, ScoredVideo

__all__ = ["METRICS", "Metric", "MetricConfig", "MetricContext", "ScoredVideo"]
