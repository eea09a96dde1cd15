"""Stage 4, index: build the versioned index folder; dense (FAISS) and lexical (BM25) search in it."""
