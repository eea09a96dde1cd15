"""Stage 5, answer: understand the question, retrieve, select verbatim sentences, word the answer."""
