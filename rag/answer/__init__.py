"""Stage 7, answer: select verbatim sentences or abstain, word the answer, calibrate the abstention."""
