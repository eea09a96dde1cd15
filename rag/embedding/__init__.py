"""Stage 3, embedding: texts → unit vectors, offline (the model comes from a pip package)."""
