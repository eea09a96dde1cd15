"""Stage 1, ingest: find documents, read their text whatever the format, mark the body spans."""
