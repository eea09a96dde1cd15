"""Stage 6, retrieve: the question's candidates, dense and lexical scores fused once, per sentence."""
