"""The manifest (models/<name>/model.yaml): its schema, safe reading, and what `validate` checks of it."""
