"""`corral shards inspect DIR`: the mixture summary, every checksum verified, a few rows decoded.

Checks, for each train and validation file: its sha256, its row and token counts (from the Arrow file
itself) against the manifest, and the sha256 of its lineage part. A few rows of the first train and
validation shard are decoded with the tokenizer the shards were made with (its sha256 is checked first,
so a different tokenizer cannot print plausible garbage). Exit status 1 when anything does not match.
No Beam: this reads the files directly.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pyarrow as pa

from filters.encode import BatchEncoder
from manifests import storage
from manifests.shards import ShardFile, ShardManifest, list_lengths, shard_tokenizer_sha256
from manifests.tokenizer import model_path


def summary(m: ShardManifest) -> str:
    """Target vs achieved share, epochs and sizes per source."""
    train = m.train_tokens
    val = sum(f.tokens for f in m.validation)
    lines = [
        f"tokenizer {m.tokenizer.sha256[:16]}… vocab {m.tokenizer.vocab_size:,} ({m.token_type}), "
        f"EOS appended: {m.eos_appended}, BOS: {m.bos_prepended}; seed {m.seed}",
        f"train: {train:,} tokens in {len(m.train)} files (total_tokens {m.total_tokens:,}); "
        f"validation: {val:,} tokens in {len(m.validation)} files",
        f"{'source':<16} {'target':>8} {'achieved':>9} {'diff pp':>8} {'epochs':>7} {'unique tok':>12} "
        f"{'docs':>8} {'val docs':>8} {'empty':>6}",
    ]
    for name, s in m.sources.items():
        lines.append(
            f"{name:<16} {s.weight:>8.2%} {s.achieved:>9.2%} {(s.achieved - s.weight) * 100:>+8.3f} "
            f"{s.epochs:>7.3f} {s.unique_tokens:>12,} {s.documents:>8,} {s.validation_documents:>8,} "
            f"{s.skipped_empty:>6,}"
        )
    lines += [f"note: {n}" for n in m.notes]
    return "\n".join(lines)


def _read_table(path: str) -> tuple[pa.Table, str | None]:
    data = pa.py_buffer(storage.read_bytes(path))
    reader = pa.ipc.open_file(data)
    return reader.read_all(), shard_tokenizer_sha256(reader)


def verify(folder: str, m: ShardManifest) -> list[str]:
    """Every mismatch between the files and the manifest, as messages (empty: all good)."""
    problems = []
    for f in [*m.train, *m.validation]:
        path = storage.join(folder, *f.file.split("/"))
        if not storage.exists(path):
            problems.append(f"{f.file}: missing")
            continue
        sha = storage.sha256_of(path)
        if sha != f.sha256:
            problems.append(f"{f.file}: sha256 {sha} but the manifest says {f.sha256}")
            continue
        table, stamped = _read_table(path)
        tokens = int(list_lengths(table.column("tokens")).sum())
        if table.num_rows != f.rows or tokens != f.tokens:
            problems.append(
                f"{f.file}: {table.num_rows} rows / {tokens} tokens, manifest {f.rows} / {f.tokens}"
            )
        if stamped is not None and stamped != m.tokenizer.sha256:
            problems.append(f"{f.file}: made with tokenizer {stamped}, manifest says {m.tokenizer.sha256}")
        if f.lineage:
            lpath = storage.join(folder, *f.lineage.split("/"))
            if not storage.exists(lpath):
                problems.append(f"{f.lineage}: missing")
            elif storage.sha256_of(lpath) != f.lineage_sha256:
                problems.append(f"{f.lineage}: sha256 differs from the manifest")
    return problems


def decode_rows(
    folder: str, m: ShardManifest, files: list[ShardFile], rows: int, tokenizer: str
) -> list[str]:
    model = model_path(tokenizer)
    sha = storage.sha256_of(model)
    if sha != m.tokenizer.sha256:
        return [f"not decoding: {model} has sha256 {sha}, the shards were made with {m.tokenizer.sha256}"]
    encoder = BatchEncoder(storage.local_copy(model))
    out = []
    for f in files[:1]:
        table, _ = _read_table(storage.join(folder, *f.file.split("/")))
        for i in range(min(rows, table.num_rows)):
            ids = np.asarray(table.column("tokens")[i].values)
            text = encoder.decode(ids)
            source = table.column("source")[i].as_py()
            shown = text[:160].replace("\n", "⏎")
            ends = "EOS" if len(ids) and int(ids[-1]) == m.tokenizer.eos_id else "no EOS"
            out.append(
                f"{f.file}[{i}] {source} {table.column('doc_id')[i].as_py()} ({len(ids)} tokens, {ends}): {shown}"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="corral shards inspect", description=__doc__.split("\n")[0])
    p.add_argument("dir", help="a shards folder (with manifest.json)")
    p.add_argument("--rows", type=int, default=3, help="rows to decode from the first train/validation file")
    p.add_argument("--tokenizer", help="tokenizer folder (default: the one recorded in the manifest)")
    args = p.parse_args(argv)
    try:
        m = ShardManifest.read_from(args.dir)
    except (FileNotFoundError, ValueError) as exc:
        print(f"corral shards inspect: {exc}", file=sys.stderr)
        return 2
    print(summary(m))
    problems = verify(args.dir, m)
    checked = len(m.train) + len(m.validation)
    if problems:
        print(f"checksums: {len(problems)} problems in {checked} files")
        for line in problems:
            print(f"  {line}")
    else:
        print(f"checksums: all {checked} shard files and their lineage parts match the manifest")
    tokenizer = args.tokenizer or m.tokenizer.path
    if args.rows > 0 and tokenizer and storage.exists(model_path(tokenizer)):
        for line in decode_rows(args.dir, m, m.train, args.rows, tokenizer) + decode_rows(
            args.dir, m, m.validation, min(args.rows, 1), tokenizer
        ):
            print(line)
    elif args.rows > 0:
        print(f"not decoding: no tokenizer at {tokenizer or '(none recorded)'}; pass --tokenizer DIR")
    return 1 if problems else 0
