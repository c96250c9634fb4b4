"""tokenizer_training: LLaMA's SentencePiece BPE trained on a mixture-weighted sample of the built corpus.

`sample` draws the sample from the corpus Parquet (through `manifests.corpus`), `bpe` trains SentencePiece
with the original LLaMA trainer settings, `hf` writes the Hugging Face files, `train` is `corral tokenizer`.
Never imports Beam: it runs wherever the corpus files can be read.
"""
