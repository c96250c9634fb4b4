"""Near-duplicate clusters in Beam with no group bigger than a setting: band buckets → star edges → components.

`BucketEdges`: `(band_key, doc_id)` → `(member, smallest id of its bucket)` for every other member.
`ConnectedComponents`: edges `(a, b)` → `(node, root)`, root = the smallest id of the node's component
(the rule of `filters.components.union_find_roots`, which it equals exactly).

Components are large-star / small-star (Kiveris, Seshadri, Mirrokni, Reddy, Vassilvitskii, "Connected
Components in MapReduce and Beyond", SoCC 2014: the alternating algorithm, as BigCode's
`near_deduplication/minhash_deduplication_spark.py` runs it on Spark), changed for bounded memory:

- **No neighbourhood is grouped.** A star step at node u needs `m(u)` = the smallest of u and some of its
  neighbours, then emits one edge per neighbour. `m(u)` is a combine (per-bundle partial dicts merged per
  key shard: a hand-lifted `CombinePerKey(min)`); the neighbours meet it in join groups keyed by
  `(u, salt(neighbour))`. The combine also collects the salts present, so `m(u)` is copied only to the
  groups that exist. BigCode's `large_star_reduce` groups all neighbours of the centre on one executor,
  and so would a `CoGroupByKey` on u (Beam's Python CoGBK builds one list per tag).
- **Shards sized from the data.** Records travel in batches keyed by a shard (CRC32 of the key mod P),
  P = ⌈records / group_records⌉ from a side input counted the round before, and a centre's members are
  salted over min(fanout, 64·P) join keys, so a shard group holds ~`group_records` records whatever the
  corpus size, a star of a million leaves included. One Beam element per record cost ~80 µs per edge
  and step on the local runner (measured); packed batches cost a few µs.
- **Finished components leave.** The small-star step marks an edge whose upper end is a leaf of degree
  one; the next large-star step sees, per centre, whether it has no smaller neighbour and only marked
  edges — its component is then a star around its smallest id, final — and sends those edges to the
  output. Later rounds carry only the components still changing (a few long chains, typically).
- **Rounds unrolled in the graph, with a convergence check.** Beam has no loops; successive pipelines
  would make near dedup several jobs (each paying Dataflow's start-up, and no longer one all-or-nothing
  build). Each round counts its changes; the next round reads the count as a side input and, once a
  round changed nothing (the graph is then a forest of stars centred on each component's smallest id,
  see `_join_group`), routes every edge past the remaining rounds, which run empty. If the last round
  still changed something the job fails with `NotConvergedError`, never a partial answer. A path of n
  nodes needs about log2(n) + 2 rounds (measured: 18 at 100,000 sorted ids, 21 at 1,000,000); the
  default 32 covers paths of ~10^9 nodes. Each unrolled round costs ~0.2 s of fixed graph overhead on the
  local runner even when empty (~6 s for 32): lower `max_rounds` for small inputs if that matters.

Per-worker memory bound of every step: one shard group, ≈ `group_records` join records (≤ ~4× that in
small entries in a stats group: candidate, count, mark and salt per record), plus hash imbalance; a centre with degree d above
fanout · group_records puts d / fanout records in one group. DoFn buffers hold ≤ `_FLUSH` records. On
Dataflow that is the worker's whole share. Beam's local FnApiRunner also keeps every PCollection that
crosses a stage in the runner process (`ListBuffer`, `GroupingBuffer` in `fn_api_runner/execution.py`),
so there the RUNNER grows with the edges (as packed bytes).
"""

from __future__ import annotations

import io
import pickle
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

DEFAULT_FANOUT = 4096
DEFAULT_GROUP_RECORDS = 200_000
DEFAULT_MAX_ROUNDS = 32
METRICS_NAMESPACE = "corral.components"

_FLUSH = 16_384  # records a DoFn buffers before it emits its batches
_DONE = "done"
_INFO = "info"
_LONE = "lone"
_STATS = "stats"
_MEMBER, _MIN = 0, 1  # the two kinds of batches a join group receives
_LONE_NODES = -1  # in place of a shard count: a batch of self-loop nodes


def _pack(obj: Any) -> bytes:
    """A batch as one bytes element: pickled in C without the memo (no shared objects to track).

    Batches travel as bytes so every runner moves them with its trivial bytes coder (the local runner's
    buffers then hold compact bytes, not Python objects) whatever element types Beam infers.
    """
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True
    pickler.dump(obj)
    return buf.getvalue()


_unpack = pickle.loads


def _crc(key: str | bytes) -> int:
    """Stable across processes (Python's `hash` of a str is salted per process)."""
    if type(key) is bytes:
        return zlib.crc32(key)
    try:
        return zlib.crc32(key.encode())
    except UnicodeEncodeError:  # lone surrogates (e.g. file names decoded with surrogateescape)
        return zlib.crc32(key.encode("utf-8", "surrogatepass"))


def _join_shard(centre_crc: int, salt: int, shards: int) -> int:
    return zlib.crc32(salt.to_bytes(4, "little"), centre_crc) % shards


def _salts(shards: int, fanout: int) -> int:
    """Salts per centre: none needed in one shard, else enough that a hot centre spreads evenly over P."""
    return 1 if shards == 1 else min(fanout, 64 * shards)


def _shards(records: int, group_records: int) -> int:
    return max(1, -(-records // group_records))


def _converged(info: list[tuple[int, int]]) -> bool:
    return not any(changes for changes, _ in info)


def _records(info: list[tuple[int, int]]) -> int:
    return sum(n for _, n in info)


def _keyed(kind: int, shards: int, buffers: dict[int, list[Any]], window: bool) -> Iterator[Any]:
    """`(shard, packed (kind, shards, records))` per non-empty buffer."""
    for shard, records in buffers.items():
        out = (shard, _pack((kind, shards, records)))
        yield GlobalWindows.windowed_value(out) if window else out


def _append(buffers: dict[int, list[Any]], shard: int, record: Any) -> None:
    buf = buffers.get(shard)
    if buf is None:
        buf = buffers[shard] = []
    buf.append(record)


class _ToBatchesFn(beam.DoFn):
    """Single records → packed `(0, records)` batches of ≤ `_FLUSH`, with their sizes on `info`.

    Edges become `(hi, lo, False)` (hi > lo; the flag is the small-star leaf mark); a self-loop only
    names a node and goes to `lone`. Bucket pairs stay `(key, doc)`.
    """

    def __init__(self, canonical: bool) -> None:
        self.canonical = canonical

    def start_bundle(self) -> None:
        self._buf: list[Any] = []
        self._lone: list[str] = []

    def process(self, element: Any) -> Iterator[Any]:
        try:
            a, b = element
        except (TypeError, ValueError):
            raise TypeError(f"element {element!r} is not a pair") from None
        if self.canonical:
            if type(a) is not str or type(b) is not str:
                raise TypeError(f"ConnectedComponents: edge {element!r}: ids must be str")
            if a == b:
                self._lone.append(a)
            else:
                self._buf.append((a, b, False) if a > b else (b, a, False))
        else:
            if type(b) is not str or type(a) not in (bytes, str):
                raise TypeError(f"BucketEdges: element {element!r}: must be (bytes or str key, str id)")
            self._buf.append((a, b))
        if len(self._buf) >= _FLUSH:
            yield from self._emit(False)

    def finish_bundle(self) -> Iterator[Any]:
        yield from self._emit(True)

    def _emit(self, window: bool) -> Iterator[Any]:
        wrap = GlobalWindows.windowed_value if window else (lambda v: v)
        if self._buf:
            yield wrap(_pack((0, self._buf)))
            yield beam.pvalue.TaggedOutput(_INFO, wrap((0, len(self._buf))))
            self._buf = []
        if self._lone:
            yield beam.pvalue.TaggedOutput(_LONE, wrap(_pack((_LONE_NODES, self._lone))))
            yield beam.pvalue.TaggedOutput(_INFO, wrap((0, len(self._lone))))
            self._lone = []


class _KeysFn(beam.DoFn):
    """Start of a step: each record gives stats for a centre and one member of the centre's join group.

    - `bucket` (key, doc): centre key ← candidate doc, count; member doc.
    - `large` (hi, lo, leaf): centre hi ← candidate lo; centre lo ← AND of leaf marks; member hi of lo.
    - `small` (hi, lo, _): centre hi ← candidate lo, count; centre lo ← "has a larger neighbour"; member lo
      of hi.

    Stats are pre-combined per bundle (what a lifted combine does) and go out keyed by `crc(centre) mod P`
    with the (centre, salt) pairs of the members buffered; members go out keyed by their join shard. P is
    carried by the batch or, at a round start, ⌈records / group_records⌉ from the side input; a graph that
    converged the round before goes to `done` whole.
    """

    def __init__(self, kind: str, fanout: int, group_records: int, round_no: int = 0) -> None:
        self.kind = kind
        self.fanout = fanout
        self.group_records = group_records
        self.round_no = round_no

    def setup(self) -> None:
        self._active = Metrics.distribution(METRICS_NAMESPACE, "active_round")
        self._edges = Metrics.distribution(METRICS_NAMESPACE, "round_input_records")

    def start_bundle(self) -> None:
        self._shards = 1
        self._worked = 0
        self._reset()

    def _reset(self) -> None:
        self._cand: dict[Any, Any] = {}  # centre → smallest candidate
        self._count: dict[Any, int] = {}  # bucket: members; small: smaller neighbours
        self._flag: dict[Any, bool] = {}  # large: lo → all its edges leaf-marked; small: lo → True
        self._present: set[tuple[Any, int]] = set()  # (centre, salt) of the members (several shards only)
        self._members: dict[int, list[Any]] = {}
        self._buffered = 0

    def process(self, batch: bytes, info: list[tuple[int, int]] | None = None) -> Iterator[Any]:
        if info is not None:
            if self.round_no > 1 and _converged(info):
                yield beam.pvalue.TaggedOutput(_DONE, batch)
                return
            shards, records = _shards(_records(info), self.group_records), _unpack(batch)[1]
        else:
            shards, records = _unpack(batch)
        if shards != self._shards and self._buffered:
            yield from self._flush(False)
        self._shards = shards
        self._worked += len(records)
        cand, count, flag, members = self._cand, self._count, self._flag, self._members
        one = shards == 1
        n_salts = _salts(shards, self.fanout)
        present = self._present
        salt = shard = 0
        if one:
            buf = members.get(0)
            if buf is None:
                buf = members[0] = []
        if self.kind == "large":
            for hi, lo, leaf in records:
                cur = cand.get(hi)
                if cur is None or lo < cur:
                    cand[hi] = lo
                if not leaf:
                    flag[lo] = False
                elif lo not in flag:
                    flag[lo] = True
                if not one:
                    salt = _crc(hi) % n_salts
                    present.add((lo, salt))
                    shard = _join_shard(_crc(lo), salt, shards)
                    buf = members.get(shard)
                    if buf is None:
                        buf = members[shard] = []
                buf.append((lo, salt, hi))
        else:  # bucket (key, doc), small (hi, lo, _): candidate and member b of centre a
            small = self.kind == "small"
            for rec in records:
                a, b = rec[0], rec[1]
                cur = cand.get(a)
                if cur is None or b < cur:
                    cand[a] = b
                count[a] = count.get(a, 0) + 1
                if small:
                    flag[b] = True
                if not one:
                    salt = _crc(b) % n_salts
                    present.add((a, salt))
                    shard = _join_shard(_crc(a), salt, shards)
                    buf = members.get(shard)
                    if buf is None:
                        buf = members[shard] = []
                buf.append((a, salt, b))
        self._buffered += len(records)
        if self._buffered >= _FLUSH:
            yield from self._flush(False)

    def finish_bundle(self) -> Iterator[Any]:
        if self._worked:
            self._active.update(self.round_no)
            self._edges.update(self._worked)
        yield from self._flush(True)

    def _flush(self, window: bool) -> Iterator[Any]:
        shards = self._shards
        yield from _keyed(_MEMBER, shards, self._members, window)
        parts: dict[int, tuple[list[Any], list[Any], list[Any], list[Any]]] = {}

        def part(centre: Any) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
            shard = 0 if shards == 1 else _crc(centre) % shards
            p = parts.get(shard)
            if p is None:
                p = parts[shard] = ([], [], [], [])
            return p

        if shards == 1:
            parts[0] = (list(self._cand.items()), list(self._count.items()), list(self._flag.items()), [])
        else:
            for centre, m in self._cand.items():
                part(centre)[0].append((centre, m))
            for centre, n in self._count.items():
                part(centre)[1].append((centre, n))
            for centre, f in self._flag.items():
                part(centre)[2].append((centre, f))
            for key in self._present:
                part(key[0])[3].append(key)
        for shard, lists in parts.items():
            out = (shard, _pack((shards, *lists)))
            yield beam.pvalue.TaggedOutput(_STATS, GlobalWindows.windowed_value(out) if window else out)
        self._reset()


class _MergeFn(beam.DoFn):
    """One stats shard: per centre the smallest candidate, counts and marks; one record per join group.

    The record `(centre, salt, m, mark)` goes to each `(centre, salt)` group present (salt 0 in one shard):
    - bucket: m = smallest id, for a bucket of ≥ 2 records;
    - large: m = smallest neighbour below the centre; or, for a centre with none whose edges all carry the
      leaf mark, m = None and mark = True: its component is a finished star;
    - small: m = smallest neighbour below the centre, mark = the centre has exactly one neighbour (a leaf).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def setup(self) -> None:
        self._sizes = Metrics.distribution(METRICS_NAMESPACE, "stats_group_records")

    def process(self, item: tuple[int, Iterable[bytes]]) -> Iterator[Any]:
        batches = [_unpack(b) for b in item[1]]
        shards = batches[0][0]  # every batch of a step carries the step's shard count
        best: dict[Any, Any] = {}
        count: dict[Any, int] = {}
        flag: dict[Any, bool] = {}
        present: set[tuple[Any, int]] = set()
        size = 0
        for _, cands, counts, flags, pres in batches:
            size += len(cands) + len(counts) + len(flags) + len(pres)
            for centre, m in cands:
                cur = best.get(centre)
                if cur is None or m < cur:
                    best[centre] = m
            for centre, n in counts:
                count[centre] = count.get(centre, 0) + n
            for centre, f in flags:
                flag[centre] = f and flag.get(centre, True)
            present.update(pres)
        self._sizes.update(size)
        kind = self.kind
        records: dict[Any, tuple[Any, bool]] = {}
        if kind == "bucket":
            for centre, m in best.items():
                if count.get(centre, 0) >= 2:
                    records[centre] = (m, False)
        elif kind == "large":
            records = {centre: (m, False) for centre, m in best.items()}
            for centre, f in flag.items():
                if f and centre not in best:
                    records[centre] = (None, True)
        else:
            for centre, m in best.items():
                records[centre] = (m, count.get(centre, 0) == 1 and centre not in flag)
        out: dict[int, list[Any]] = {}
        if shards == 1:
            out[0] = [(centre, 0, m, mark) for centre, (m, mark) in records.items()]
        else:
            for centre, salt in present:
                rec = records.get(centre)
                if rec is not None:
                    _append(out, _join_shard(_crc(centre), salt, shards), (centre, salt, *rec))
        yield from _keyed(_MIN, shards, out, False)


def _join_group(kind: str, values: list[tuple[int, int, list[Any]]]) -> tuple[list[Any], list[Any], int, int]:
    """One join shard: members meet their centre's record; returns (edges, finished, changes, members).

    - `bucket`: edge `(member, m)` for each member but m (no record: a bucket of one).
    - `large` at centre u, members = its larger neighbours: `(v, m(u))` each, m(u) = min(u, smaller
      neighbours); no record means m(u) = u; a finished-star record sends `(v, u)` to `finished`.
      Changes: edges with m(u) ≠ u.
    - `small` at centre u, members = its smaller neighbours: `(v, m(u))` for each v ≠ m(u) (a change), and
      `(u, m(u))`, leaf-marked when u has no other neighbour, from the member that is m(u).

    Convergence: if a large step changes nothing, every edge (hi, lo) has lo = m(lo): each lower end is a
    local minimum, so no upper end has a larger neighbour. If the small step after it changes nothing,
    every upper end has exactly one (smaller) neighbour. Together: each component is a star whose centre
    is below all its leaves, i.e. its smallest id. The leaf mark of an edge (u, m) is kept in the small
    step's output: u had no larger neighbour and one smaller one, so it appears in no other output edge.
    """
    mins: dict[tuple[Any, int], tuple[Any, bool]] = {}
    for tag, _, records in values:
        if tag == _MIN:
            for centre, salt, m, mark in records:
                mins[(centre, salt)] = (m, mark)
    seen: set[tuple[Any, Any]] = set()  # duplicated edges meet in the same group: dedup here
    edges: list[Any] = []
    finished: list[Any] = []
    changes = 0
    for tag, _, records in values:
        if tag != _MEMBER:
            continue
        for centre, salt, v in records:
            if (centre, v) in seen:
                continue
            seen.add((centre, v))
            rec = mins.get((centre, salt))
            if kind == "large":
                if rec is None:
                    edges.append((v, centre, False))
                elif rec[1]:
                    finished.append((v, centre, True))
                else:
                    edges.append((v, rec[0], False))
                    changes += 1
            elif rec is None:  # bucket of one
                continue
            elif v != rec[0]:
                edges.append((v, rec[0], False) if kind == "small" else (v, rec[0]))
                changes += 1
            elif kind == "small":
                edges.append((centre, v, rec[1]))
    return edges, finished, changes, len(seen)


class _JoinFn(beam.DoFn):
    """Runs `_join_group` per join shard; finished edges on `done`; per bundle `(changes, out)` on `info`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def setup(self) -> None:
        self._sizes = Metrics.distribution(METRICS_NAMESPACE, "join_group_records")

    def start_bundle(self) -> None:
        self._changes = 0
        self._out = 0

    def process(self, item: tuple[int, Iterable[bytes]]) -> Iterator[Any]:
        values = [_unpack(b) for b in item[1]]
        shards = values[0][1]  # every batch of a step carries the step's shard count
        edges, finished, changes, seen = _join_group(self.kind, values)
        self._sizes.update(seen)
        self._changes += changes
        if self.kind != "large":  # a round's size is its small step's output (≤ the large step's)
            self._out += len(edges)
        for i in range(0, len(edges), _FLUSH):
            yield _pack((shards, edges[i : i + _FLUSH]))
        for i in range(0, len(finished), _FLUSH):
            yield beam.pvalue.TaggedOutput(_DONE, _pack((shards, finished[i : i + _FLUSH])))

    def finish_bundle(self) -> Iterator[Any]:
        if self._out or self._changes:
            yield beam.pvalue.TaggedOutput(_INFO, GlobalWindows.windowed_value((self._changes, self._out)))


class _Step(beam.PTransform):
    """Packed record batches → `(edges, info, done)`: keys, stats merge, join. `side`: the round's info."""

    def __init__(self, kind: str, fanout: int, group_records: int, round_no: int = 0, side: Any = None):
        super().__init__()
        self.kind = kind
        self.fanout = fanout
        self.group_records = group_records
        self.round_no = round_no
        self.side = side

    def expand(self, batches: beam.PCollection) -> tuple[beam.PCollection, ...]:
        args = () if self.side is None else (beam.pvalue.AsList(self.side),)
        keys = batches | "Keys" >> beam.ParDo(
            _KeysFn(self.kind, self.fanout, self.group_records, self.round_no), *args
        ).with_outputs(_STATS, _DONE, main="members")
        mins = keys[_STATS] | "GroupStats" >> beam.GroupByKey() | "Merge" >> beam.ParDo(_MergeFn(self.kind))
        joined = (
            (keys.members, mins)
            | "Meet" >> beam.Flatten()
            | "GroupJoin" >> beam.GroupByKey()
            | "Join" >> beam.ParDo(_JoinFn(self.kind)).with_outputs(_INFO, _DONE, main="edges")
        )
        done = (keys[_DONE], joined[_DONE]) | "Done" >> beam.Flatten()
        return joined.edges, joined[_INFO], done


class BucketEdges(beam.PTransform):
    """`(band_key: bytes | str, doc_id: str)` → `(member: str, smallest id of the bucket: str)`, every other member.

    Same components as all pairs of a bucket (k − 1 edges, not k²/2). The smallest id of each bucket is
    a combine; members meet it in join groups keyed `(band_key, salt(member))`, so a bucket of a template
    page copied a million times is spread over the shards, never held whole. A member in several buckets
    with the same smallest id gets the edge once per bucket.
    """

    def __init__(self, fanout: int = DEFAULT_FANOUT, group_records: int = DEFAULT_GROUP_RECORDS) -> None:
        super().__init__()
        _check(fanout=fanout, group_records=group_records)
        self.fanout = fanout
        self.group_records = group_records

    def expand(self, pairs: beam.PCollection) -> beam.PCollection:
        batched = pairs | "Batch" >> beam.ParDo(_ToBatchesFn(canonical=False)).with_outputs(
            _INFO, _LONE, main="batches"
        )
        edges, _, _ = batched.batches | "Step" >> _Step(
            "bucket", self.fanout, self.group_records, 0, batched[_INFO]
        )
        return edges | "Edges" >> beam.FlatMap(lambda packed: _unpack(packed)[1])


class NotConvergedError(RuntimeError):
    """The unrolled rounds ran out before the graph became a forest of stars."""


class _RootsFn(beam.DoFn):
    """Finished edges `(leaf, root, _)` → `(leaf, root)` and `(root, root)` by node shard; fails if not converged."""

    def __init__(self, max_rounds: int, group_records: int) -> None:
        self.max_rounds = max_rounds
        self.group_records = group_records

    def start_bundle(self) -> None:
        self._out: dict[int, list[Any]] = {}
        self._size = 0
        self._roots: set[str] = set()
        self._shards = 1

    def process(
        self, batch: bytes, last: list[tuple[int, int]], initial: list[tuple[int, int]]
    ) -> Iterator[Any]:
        if not _converged(last):
            raise NotConvergedError(
                f"ConnectedComponents did not converge in max_rounds={self.max_rounds} rounds (the last "
                f"round still changed {sum(c for c, _ in last)} edges); raise max_rounds"
            )
        self._shards = shards = _shards(2 * _records(initial), self.group_records)
        out, roots = self._out, self._roots
        first, records = _unpack(batch)
        for rec in records:
            if first == _LONE_NODES:
                _append(out, 0 if shards == 1 else _crc(rec) % shards, (rec, rec))
                continue
            leaf, root = rec[0], rec[1]
            _append(out, 0 if shards == 1 else _crc(leaf) % shards, (leaf, root))
            if root not in roots:
                if len(roots) >= _FLUSH:
                    roots.clear()
                roots.add(root)
                _append(out, 0 if shards == 1 else _crc(root) % shards, (root, root))
        self._size += len(records)
        if self._size >= _FLUSH:
            yield from _keyed(0, shards, out, False)
            self._out, self._size = {}, 0

    def finish_bundle(self) -> Iterator[Any]:
        yield from _keyed(0, self._shards, self._out, True)


def _smallest_roots(item: tuple[int, Iterable[bytes]]) -> Iterator[tuple[str, str]]:
    best: dict[str, str] = {}
    for packed in item[1]:
        for node, root in _unpack(packed)[2]:
            cur = best.get(node)
            if cur is None or root < cur:
                best[node] = root
    yield from best.items()


class ConnectedComponents(beam.PTransform):
    """Edges `(a: str, b: str)` → `(node, root)` once per node of an edge; root = smallest id of its component.

    Alternating large-star / small-star, `max_rounds` rounds unrolled (finished components leave early;
    rounds after convergence receive nothing); every group ≈ `group_records` records. Raises
    `NotConvergedError` when `max_rounds` was too few. A self-loop `(a, a)` gives `(a, a)` if a has no
    other edge. Output order is unspecified. Metrics (namespace `corral.components`): `active_round`
    (max = rounds that had work), `round_input_records`, `join_group_records`, `stats_group_records`.
    """

    def __init__(
        self,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        fanout: int = DEFAULT_FANOUT,
        group_records: int = DEFAULT_GROUP_RECORDS,
    ) -> None:
        super().__init__()
        _check(max_rounds=max_rounds, fanout=fanout, group_records=group_records)
        self.max_rounds = max_rounds
        self.fanout = fanout
        self.group_records = group_records

    def expand(self, edges: beam.PCollection) -> beam.PCollection:
        batched = edges | "Batch" >> beam.ParDo(_ToBatchesFn(canonical=True)).with_outputs(
            _INFO, _LONE, main="batches"
        )
        state, info, done = batched.batches, batched[_INFO], []
        for r in range(1, self.max_rounds + 1):
            state, info, finished = state | f"Round{r:02d}" >> _Round(
                self.fanout, self.group_records, r, info
            )
            done.append(finished)
        return (
            (*done, state, batched[_LONE])
            | "Forest" >> beam.Flatten()
            | "Roots"
            >> beam.ParDo(
                _RootsFn(self.max_rounds, self.group_records),
                beam.pvalue.AsList(info),
                beam.pvalue.AsList(batched[_INFO]),
            )
            | "GroupNodes" >> beam.GroupByKey()
            | "SmallestRoot" >> beam.FlatMap(_smallest_roots)
        )


class _Round(beam.PTransform):
    """Large-star step, then small-star step: `(edges, info, done)`."""

    def __init__(self, fanout: int, group_records: int, round_no: int, previous_info: beam.PCollection):
        super().__init__()
        self.fanout = fanout
        self.group_records = group_records
        self.round_no = round_no
        self.previous_info = previous_info

    def expand(self, edges: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection, beam.PCollection]:
        large, large_info, done = edges | "Large" >> _Step(
            "large", self.fanout, self.group_records, self.round_no, self.previous_info
        )
        small, small_info, _ = large | "Small" >> _Step(
            "small", self.fanout, self.group_records, self.round_no
        )
        info = (large_info, small_info) | "Info" >> beam.Flatten()
        return small, info, done


def _check(**settings: int) -> None:
    for name, value in settings.items():
        if value < 1:
            raise ValueError(f"{name} must be ≥ 1, got {value}")
