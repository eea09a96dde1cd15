"""Stage 2, text: language, sentences, passages and clauses, as exact spans of the document."""
