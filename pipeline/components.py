"""Near-duplicate clusters in Beam with no group bigger than a setting: band buckets → star edges → components.

`BucketEdges`: `(band_key, doc_id)` → `(member, smallest id of its bucket)` for every other member.
`ConnectedComponents`: edges `(a, b)` → `(node, root)`, root = the smallest id of the node's component
(the rule of `filters.components.union_find_roots`, which it equals exactly).

Components are large-star / small-star (Kiveris, Seshadri, Mirrokni, Reddy, Vassilvitskii, "Connected
Components in MapReduce and Beyond", SoCC 2014: the alternating algorithm, as BigCode's
`near_deduplication/minhash_deduplication_spark.py` runs it on Spark), changed for bounded memory:

- **No neighbourhood is grouped.** A star step at node u needs `m(u)` = the smallest of u and some of its
  neighbours, then emits one edge per neighbour. `m(u)` is a combine (per-bundle partial dicts, merged per
  key shard, like a lifted `CombinePerKey(min)`); the neighbours meet it in join groups keyed by
  `(u, salt(neighbour))` (`salt` = CRC32 mod `fanout`). The combine also collects the salts present, so
  `m(u)` is copied only to the groups that exist (≤ min(degree, fanout) copies). BigCode's
  `large_star_reduce` groups all neighbours of the centre on one executor, and so would a `CoGroupByKey`
  on u (Beam's Python CoGBK builds one list per tag).
- **Shards sized from the data.** Records travel in batches keyed by a shard (hash of the key mod P), with
  P = ⌈records / group_records⌉ read from a side input counted the round before, so a shard group holds
  about `group_records` records whatever the corpus size. One Beam element per record costs ~80 µs per
  edge per step on the local runner (measured); batches cost a few µs.
- **Rounds unrolled in the graph, with a convergence check.** Beam has no loops; successive pipelines
  would make near dedup several jobs (each paying Dataflow's start-up, and no longer one all-or-nothing
  build). Each round counts its changes; the next round reads them as a side input and, once a round
  changed nothing (the graph is then a forest of stars centred on each component's smallest id, see
  `_join_group`), routes every edge past the remaining rounds, which then run empty. If the last round
  still changed something the job fails with `NotConvergedError`: never a partial answer. A path of n
  nodes needs about log2(n) + 2 rounds (measured: 18 at 100,000 sorted ids, 21 at 1,000,000).

Per-worker memory bound of every step: one shard group, ≈ `group_records` records (ids + a few ints; plus
the hash imbalance of P shards), or degree(u) / `fanout` ids when a single centre u is hotter than that;
a DoFn's buffers hold ≤ `_FLUSH` records. On Dataflow that is the worker's whole share. Beam's local
FnApiRunner also keeps every PCollection that crosses a stage in the runner process (`ListBuffer`,
`GroupingBuffer` in `fn_api_runner/execution.py`), so there the RUNNER grows with the edges.
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
    """Salts per centre: none needed in one shard; else enough that a hot centre spreads over all P shards."""
    return 1 if shards == 1 else min(fanout, 8 * shards)


def _shards(records: int, group_records: int) -> int:
    return max(1, -(-records // group_records))


def _converged(info: list[tuple[int, int]]) -> bool:
    return not any(changes for changes, _ in info)


def _records(info: list[tuple[int, int]]) -> int:
    return sum(n for _, n in info)


class _Emitter:
    """Per-shard record buffers of one DoFn, emitted as `(shard, packed (tag, shards, records))`."""

    def __init__(self) -> None:
        self.buffers: dict[int, list[Any]] = {}
        self.size = 0

    def add(self, shard: int, record: Any) -> None:
        buf = self.buffers.get(shard)
        if buf is None:
            buf = self.buffers[shard] = []
        buf.append(record)
        self.size += 1

    def drain(self, kind: int, shards: int, window: bool = False) -> Iterator[Any]:
        for shard, records in self.buffers.items():
            out = (shard, _pack((kind, shards, records)))
            if window:
                out = GlobalWindows.windowed_value(out)
            yield out
        self.buffers = {}
        self.size = 0


class _ToBatchesFn(beam.DoFn):
    """Single records → packed `(0, records)` batches of ≤ `_FLUSH`, with their sizes on `info`."""

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
                self._lone.append(a)  # a self-loop only names a node
            else:
                self._buf.append((a, b) if a > b else (b, a))
        else:
            if type(b) is not str:
                raise TypeError(f"BucketEdges: element {element!r}: the document id must be str")
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
    """Start of a step: each record gives stats (min candidate, salt) for a centre and one member.

    - `bucket` (key, doc): centre key ← candidate doc, salt(doc), count; member doc at (key, salt(doc)).
    - `large` (hi, lo): centre hi ← candidate lo; centre lo ← salt(hi); member hi at (lo, salt(hi)).
    - `small` (hi, lo): centre hi ← candidate lo, salt(lo); member lo at (hi, salt(lo)).

    Stats are pre-combined per bundle (what a lifted combine does) and go out keyed by `crc(centre) mod P`;
    members keyed by their join shard. P is the batch's (carried from the round's start) or, at a round
    start, ⌈records / group_records⌉ from the side input; a converged graph goes to `done` instead.
    """

    def __init__(self, kind: str, fanout: int, group_records: int, round_no: int = 0) -> None:
        self.kind = kind
        self.fanout = fanout
        self.group_records = group_records
        self.round_no = round_no

    def setup(self) -> None:
        self._active = Metrics.distribution(METRICS_NAMESPACE, "active_round")

    def start_bundle(self) -> None:
        self._stats: dict[Any, Any] = {}  # centre → smallest candidate
        self._present: set[tuple[Any, int]] = set()  # (centre, salt) of the members buffered
        self._counts: dict[Any, int] | None = {} if self.kind == "bucket" else None
        self._members: dict[int, list[Any]] = {}
        self._buffered = 0
        self._shards = 1
        self._worked = False

    def process(self, batch: bytes, info: list[tuple[int, int]] | None = None) -> Iterator[Any]:
        if info is not None:
            if self.round_no > 1 and _converged(info):
                yield beam.pvalue.TaggedOutput(_DONE, batch)
                return
            shards, records = _shards(_records(info), self.group_records), _unpack(batch)[1]
        else:
            shards, records = _unpack(batch)
        if shards != self._shards and (self._stats or self._members):
            yield from self._flush(False)
        self._shards = shards
        self._worked = True
        stats, members = self._stats, self._members
        if shards == 1:  # one group: no salts, no hashing; m(u) goes to every centre with a candidate
            buf = members.get(0)
            if buf is None:
                buf = members[0] = []
            if self.kind == "large":
                for hi, lo in records:
                    cur = stats.get(hi)
                    if cur is None or lo < cur:
                        stats[hi] = lo
                    buf.append((lo, 0, hi))
            else:
                for a, b in records:
                    cur = stats.get(a)
                    if cur is None or b < cur:
                        stats[a] = b
                    buf.append((a, 0, b))
        else:
            n_salts = _salts(shards, self.fanout)
            present, counts, large = self._present, self._counts, self.kind == "large"
            for a, b in records:
                if large:  # (hi, lo): candidate lo for centre hi; member hi joins centre lo
                    cur = stats.get(a)
                    if cur is None or b < cur:
                        stats[a] = b
                    centre, member = b, a
                else:  # bucket (key, doc), small (hi, lo): candidate and member b of centre a
                    cur = stats.get(a)
                    if cur is None or b < cur:
                        stats[a] = b
                    if counts is not None:
                        counts[a] = counts.get(a, 0) + 1
                    centre, member = a, b
                salt = _crc(member) % n_salts
                present.add((centre, salt))
                shard = _join_shard(_crc(centre), salt, shards)
                buf = members.get(shard)
                if buf is None:
                    buf = members[shard] = []
                buf.append((centre, salt, member))
        self._buffered += len(records)
        if self._buffered >= _FLUSH:
            yield from self._flush(False)

    def finish_bundle(self) -> Iterator[Any]:
        if self._worked:
            self._active.update(self.round_no)
        yield from self._flush(True)

    def _flush(self, window: bool) -> Iterator[Any]:
        shards = self._shards
        wrap = GlobalWindows.windowed_value if window else (lambda v: v)
        for shard, recs in self._members.items():
            yield wrap((shard, _pack((_MEMBER, shards, recs))))
        if shards == 1:  # salts {0} for every centre: only the candidates travel
            by_shard = {0: ([(centre, m, 0) for centre, m in self._stats.items()], [])}
        else:
            by_shard = {}
            counts = self._counts or {}
            for centre, m in self._stats.items():
                part = by_shard.get(shard := _crc(centre) % shards)
                if part is None:
                    part = by_shard[shard] = ([], [])
                part[0].append((centre, m, counts.get(centre, 0)))
            for centre, salt in self._present:
                part = by_shard.get(shard := _crc(centre) % shards)
                if part is None:
                    part = by_shard[shard] = ([], [])
                part[1].append((centre, salt))
        for shard, (cands, present) in by_shard.items():
            yield beam.pvalue.TaggedOutput("stats", wrap((shard, _pack((shards, cands, present)))))
        self._present = set()
        if self._counts is not None:
            self._counts = {}
        self._stats, self._members, self._buffered = {}, {}, 0


class _MergeFn(beam.DoFn):
    """One stats shard: smallest candidate per centre, sent once to each `(centre, salt)` group present.

    Not sent: a bucket of one record (no edge), a large-star centre without a smaller neighbour (m(u) = u).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def setup(self) -> None:
        self._sizes = Metrics.distribution(METRICS_NAMESPACE, "stats_group_records")

    def process(self, item: tuple[int, Iterable[bytes]]) -> Iterator[Any]:
        batches = [_unpack(b) for b in item[1]]
        shards = batches[0][0]  # every batch of a step carries the step's shard count
        self._sizes.update(sum(len(cands) + len(present) for _, cands, present in batches))
        best: dict[Any, Any] = {}
        counts: dict[Any, int] = {}
        for _, cands, _present in batches:
            for centre, m, n in cands:
                cur = best.get(centre)
                if cur is None or m < cur:
                    best[centre] = m
                if n:
                    counts[centre] = counts.get(centre, 0) + n
        if shards == 1:  # one group: every centre's m to salt 0 (a bucket of one meets only itself)
            recs = [(centre, 0, m) for centre, m in best.items()]
            for i in range(0, len(recs), _FLUSH):
                yield 0, _pack((_MIN, 1, recs[i : i + _FLUSH]))
            return
        bucket = self.kind == "bucket"
        out = _Emitter()
        sent: set[tuple[Any, int]] = set()
        for _, _cands, present in batches:
            for key in present:
                if key in sent:
                    continue
                centre, salt = key
                m = best.get(centre)
                if m is None or (bucket and counts.get(centre, 0) < 2):
                    continue
                sent.add(key)
                out.add(_join_shard(_crc(centre), salt, shards), (centre, salt, m))
            if out.size >= _FLUSH:
                yield from out.drain(_MIN, shards)
        yield from out.drain(_MIN, shards)


def _join_group(
    kind: str, values: list[tuple[int, int, list[Any]]]
) -> tuple[list[tuple[Any, str]], int, int]:
    """One join shard: members meet `m(centre)`; returns (edges, changes, members seen).

    - `bucket`: edge `(member, m)` for each member but m (m = the bucket's smallest id; no m: a bucket of one).
    - `large` at centre u, members = its larger neighbours: `(v, m(u))` each, m(u) = min(u, smaller
      neighbours), no record meaning m(u) = u. Changes: edges with m(u) ≠ u.
    - `small` at centre u, members = its smaller neighbours: `(v, m(u))` for each v ≠ m(u) (a change) and
      `(u, m(u))` from the member that is m(u).

    Convergence: if a large step changes nothing, every edge (hi, lo) has lo = m(lo): each lower end is a
    local minimum, so no upper end has a larger neighbour. If the small step after it changes nothing,
    every upper end has exactly one (smaller) neighbour. Together: each component is a star whose centre
    is below all its leaves, i.e. its smallest id.
    """
    mins: dict[tuple[Any, int], str] = {}
    for tag, _, records in values:
        if tag == _MIN:
            for centre, salt, m in records:
                mins[(centre, salt)] = m
    seen: set[tuple[Any, str]] = set()  # duplicated edges meet in the same group: dedup here
    edges: list[tuple[Any, str]] = []
    changes = 0
    for tag, _, records in values:
        if tag != _MEMBER:
            continue
        for centre, salt, v in records:
            if (centre, v) in seen:
                continue
            seen.add((centre, v))
            m = mins.get((centre, salt))
            if kind == "large":
                if m is None:
                    edges.append((v, centre))
                else:
                    edges.append((v, m))
                    changes += 1
            elif m is None:  # bucket of one
                continue
            elif v != m:
                edges.append((v, m))
                changes += 1
            elif kind == "small":
                edges.append((centre, m))
    return edges, changes, len(seen)


class _JoinFn(beam.DoFn):
    """Runs `_join_group` on one join shard; per bundle `(changes, edges out)` on `info`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def setup(self) -> None:
        self._sizes = Metrics.distribution(METRICS_NAMESPACE, "join_group_records")

    def start_bundle(self) -> None:
        self._changes = 0
        self._out = 0

    def process(self, item: tuple[int, Iterable[bytes]]) -> Iterator[Any]:
        values = [_unpack(b) for b in item[1]]
        shards = values[0][1]  # every batch of a round carries the round's shard count
        edges, changes, seen = _join_group(self.kind, values)
        self._sizes.update(seen)
        self._changes += changes
        if self.kind != "large":  # a round's size is its small step's output (≤ the large step's)
            self._out += len(edges)
        for i in range(0, len(edges), _FLUSH):
            yield _pack((shards, edges[i : i + _FLUSH]))

    def finish_bundle(self) -> Iterator[Any]:
        if self._out or self._changes:
            yield beam.pvalue.TaggedOutput(_INFO, GlobalWindows.windowed_value((self._changes, self._out)))


class _Step(beam.PTransform):
    """Record batches → edge batches (+ `info`): keys, stats merge, join. `side` is the round's side input."""

    def __init__(self, kind: str, fanout: int, group_records: int, round_no: int = 0, side: Any = None):
        super().__init__()
        self.kind = kind
        self.fanout = fanout
        self.group_records = group_records
        self.round_no = round_no
        self.side = side

    def expand(self, batches: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        args = () if self.side is None else (beam.pvalue.AsList(self.side),)
        keys = batches | "Keys" >> beam.ParDo(
            _KeysFn(self.kind, self.fanout, self.group_records, self.round_no), *args
        ).with_outputs("stats", _DONE, main="members")
        mins = keys.stats | "GroupStats" >> beam.GroupByKey() | "Merge" >> beam.ParDo(_MergeFn(self.kind))
        joined = (
            (keys.members, mins)
            | "Meet" >> beam.Flatten()
            | "GroupJoin" >> beam.GroupByKey()
            | "Join" >> beam.ParDo(_JoinFn(self.kind)).with_outputs(_INFO, main="edges")
        )
        return joined.edges, joined[_INFO], keys[_DONE]


class BucketEdges(beam.PTransform):
    """`(band_key: bytes, doc_id: str)` → `(member: str, smallest id of its bucket: str)`, every other member.

    Same components as all pairs of a bucket (k − 1 edges, not k²/2). The smallest id of each bucket is
    a combine; members meet it in groups keyed `(band_key, salt(member))`, so a bucket of a template page
    copied a million times reaches the join as ≤ `fanout` groups spread over the shards, never whole. A
    member in several buckets with the same smallest id gets the edge once per bucket.
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
    """Star-forest edge batches → `(leaf, root)` and `(root, root)` by node shard; fails if not converged."""

    def __init__(self, max_rounds: int, group_records: int) -> None:
        self.max_rounds = max_rounds
        self.group_records = group_records

    def start_bundle(self) -> None:
        self._out = _Emitter()
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
        lone = first == _LONE_NODES
        for rec in records:
            if lone:
                out.add(0 if shards == 1 else _crc(rec) % shards, (rec, rec))
                continue
            leaf, root = rec
            out.add(0 if shards == 1 else _crc(leaf) % shards, rec)
            if root not in roots:
                if len(roots) >= _FLUSH:
                    roots.clear()
                roots.add(root)
                out.add(0 if shards == 1 else _crc(root) % shards, (root, root))
        if out.size >= _FLUSH:
            yield from out.drain(0, shards)

    def finish_bundle(self) -> Iterator[Any]:
        yield from self._out.drain(0, self._shards, window=True)


def _smallest_roots(item: tuple[int, Iterable[bytes]]) -> Iterator[tuple[str, str]]:
    best: dict[str, str] = {}
    for packed in item[1]:
        for node, root in _unpack(packed)[2]:
            r = best.get(node)
            if r is None or root < r:
                best[node] = root
    yield from best.items()


class ConnectedComponents(beam.PTransform):
    """Edges `(a: str, b: str)` → `(node, root)` once per node of an edge; root = smallest id of its component.

    Alternating large-star / small-star, `max_rounds` rounds unrolled (rounds after convergence receive
    nothing); every group ≈ `group_records` records (or degree / `fanout` for a hotter node). Raises
    `NotConvergedError` when `max_rounds` was too few. A self-loop `(a, a)` gives `(a, a)` if a has no
    other edge. Output order is unspecified.
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
