"""Runner images: build contexts, wheelhouses, Docker builds, pushes and smoke tests."""
