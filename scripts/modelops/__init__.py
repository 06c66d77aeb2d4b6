"""modelops: a GitOps model platform on MLflow."""

__version__ = "0.1.0"
