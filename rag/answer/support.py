"""How far the best evidence stands out: the measures an abstention can rest on (pure).

`margin_background`: best cosine minus the best cosine with generic unrelated text.
`z_corpus`: best cosine in standard deviations above the question's mean cosine with
the corpus's own sentences. A question the documents answer has a sentence that
stands out from the rest of the corpus; an unrelated one has nothing that does,
whatever words it shares with the corpus.
"""

from __future__ import annotations

import numpy as np


def support_measures(best: float, background: np.ndarray, corpus: np.ndarray) -> dict[str, float]:
    """`background` and `corpus`: the question's cosines with generic text and with a corpus sample."""
    measures = {"margin_background": best - float(background.max()) if len(background) else best}
    if len(corpus) >= 2:
        spread = float(corpus.std()) or 1e-6
        measures["z_corpus"] = (best - float(corpus.mean())) / spread
        measures["margin_corpus_q99"] = best - float(np.quantile(corpus, 0.99))
        measures["margin_corpus_mean"] = best - float(corpus.mean())
    else:
        measures.update(z_corpus=0.0, margin_corpus_q99=0.0, margin_corpus_mean=0.0)
    return measures
