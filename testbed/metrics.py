"""The sidecar's Prometheus metrics as a test reads them."""

from __future__ import annotations

import http.client

from prometheus_client.parser import text_string_to_metric_families

from testbed.stack import request

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def metrics_line(listen: str) -> dict[str, str]:
    """``replace`` for make_stack: the [server] table gets ``metrics_listen``."""
    return {'public_url = "': f'metrics_listen = "{listen}"\npublic_url = "'}


def scrape(connection: http.client.HTTPConnection) -> Samples:
    reply = request(connection, "/metrics")
    assert reply.status == 200
    assert (reply.header("Content-Type") or "").startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(reply.body)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)
