"""The MLflow registry as a projection of git: desired and actual state, the plan, the adapter, the lock."""
