"""Learning the embedding model from open QA data: examples, the training loop, held-out figures.

`examples` reads SQuAD files into questions and their answering sentences, split by article;
`trainer` fine-tunes the model contrastively (LoRA, or every block as the reference);
`measure` ranks with plain cosines; `run` is `rag train`: it writes the adapter and its record.
torch, transformers and peft are imported only when training.
"""
