"""The `corral` command: a thin dispatch to each stage's own `main(argv) -> int`, imported only when that
command runs (so `corral train` never imports Beam and `corral build` never imports torch)."""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "read": ("corral.read:main", "print the documents one reader (with its recipe) makes of one file"),
    "download": ("corral.download:main", "download Common Crawl WET segments or Wikipedia dumps"),
    "lm": ("pipeline.lm:main", "train the per-language SentencePiece + KenLM models and bucket cut-offs"),
    "build": ("pipeline.build:main", "run the corpus build job (Apache Beam) on a manifest"),
    "tokenizer": ("tokenizer_training.train:main", "train LLaMA's SentencePiece BPE on a mixture sample"),
    "shards": ("pipeline.shards:main", "tokenized Arrow shards of the token mixture (`shards inspect DIR`)"),
    "train": ("trainer.train:main", "train a LLaMA model on the shards (also under torchrun)"),
    "generate": ("model.generate:main", "generate text from a model checkpoint"),
    "export-hf": ("model.hf:main", "export a checkpoint in Hugging Face LlamaForCausalLM layout"),
    "sample": (
        "corral.sample:main",
        "generate the demo's input data: all seven sources in their real formats",
    ),
    "report": ("corral.report:main", "one static HTML page with PNG figures of a run folder (`--run DIR`)"),
    "demo": ("corral.demo:main", "sample or --data DIR → corpus → tokenizer → model → HF export → report"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: corral COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`corral COMMAND --help` shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"corral: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module, _, func = COMMANDS[name][0].partition(":")
    return int(getattr(importlib.import_module(module), func)(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
