"""Prometheus metrics (docs/metrics.md): what every call adds to the counters and histograms,
and how the workers of one instance share them.

- `instruments.CallMetrics`: the metrics themselves, fed once per call when its ledger row is
  complete, plus the in-flight gauges;
- `processes`: gunicorn's side, prometheus_client's multiprocess directory under `state_dir`
  (prepared by the master before any worker starts, dead workers' gauges dropped).

The `/metrics` route is the gateway's (`gateway/metrics_route.py`). Imports only the core
modules and the ledger's call record.
"""
