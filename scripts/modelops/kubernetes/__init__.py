"""Kubernetes: the objects of each model and environment, and the tree a GitOps engine (Argo CD, Flux) syncs."""
