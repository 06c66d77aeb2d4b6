"""Metric-gated canaries: the runners' metrics (from Prometheus or their /metrics), the verdict of a rollout
policy on them, and the queries an Argo Rollouts analysis makes with the same bounds."""
