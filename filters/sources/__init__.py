"""Per-source readers and cleaners: one input file in, documents out, streaming with bounded memory."""
