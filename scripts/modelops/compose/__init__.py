"""Docker Compose: one file per environment running its models on a plain Docker host, without a cluster."""
