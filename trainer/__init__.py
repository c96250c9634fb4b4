"""trainer: the streaming LLaMA trainer."""
