"""The LLaMA model: architecture and presets (`llama`), checkpoints (`io`), HF interop (`hf`), generation."""

from model.llama import PRESETS, KVCache, Llama, LlamaConfig, Preset

__all__ = ["PRESETS", "KVCache", "Llama", "LlamaConfig", "Preset"]
