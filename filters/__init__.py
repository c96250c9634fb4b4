"""Pure, Beam-free document logic: normalisation, hashing, language ID, perplexity, MinHash, quality rules.

Nothing in this package imports Beam or torch; `pipeline/` wraps these functions.
"""
