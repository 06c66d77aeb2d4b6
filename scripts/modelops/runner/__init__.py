"""The runner: a model server with MLflow-compatible scoring, Open Inference Protocol v2, A/B and shadow.

Importing it (or serving a model folder) never imports mlflow, docker, jinja2 or safety: the runner
images install only `runner/requirements.txt` plus the model's own requirements.
"""
