"""The `--trace` recording's chunks: records as packed 64-bit words, and the trace lines they make.

The recording (trace/recording.py) writes each record it keeps as little-endian words into a native
byte buffer (`librt.strings.BytesWriter`: no Python object per value, nothing to free, nothing to
serialise but one bytes object per chunk):

    header   lane index | name id << NAME_SHIFT
    start    picoseconds (an instant: its time)
    end      picoseconds (slices only)
    values   one word per argument value: an int (i64) or a float (f64 bits); any other value
             (bool, str, None, a huge int, ...) takes a zero word and is the chunk's next `extras` item
    kinds    VALUE_BITS per value, first value lowest: INT_VALUE, FLOAT_VALUE or OBJECT_VALUE
             (only when the lane has argument keys)

A chunk also carries the lanes and names first used in it. `ChunkText` turns chunks, in order, into
the lines the streaming writer makes record by record (`ChromeTraceWriter.span` and `.instant`): the
sub-lane (tid) of each slice is chosen here, in arrival order, by the writer's own rule.
"""

from __future__ import annotations

import json
from typing import Final, cast

from librt.strings import BytesWriter, StringWriter, read_f64_le, read_i64_le, write_f64_le, write_i64_le

from mixpe_sim.trace.chrome import ChromeTraceWriter, Lane, fixed_us, write_us

NAME_SHIFT: Final = 24  # lane indices below 2^24, name ids above
LANE_MASK: Final = (1 << NAME_SHIFT) - 1
WORD_BYTES: Final = 8
VALUE_BITS: Final = 2
VALUE_MASK: Final = (1 << VALUE_BITS) - 1
MAX_VALUES: Final = 31  # kinds of at most 31 values fit one word
INT_VALUE: Final = 0
FLOAT_VALUE: Final = 1
OBJECT_VALUE: Final = 2
_OBJECT_KINDS: Final = sum(OBJECT_VALUE << (VALUE_BITS * index) for index in range(MAX_VALUES))
TAIL_PROBE_RECORDS: Final = 512  # a lane whose tails repeat less than half the time after these is not cached

# a lane first used in a chunk: index, component, lane, argument keys, instant or slice, pid
LaneEntry = tuple[int, str, str, tuple[str, ...], bool, int]
# what one chunk holds: its new lanes, its new names (ids in order), the extras, the words
Chunk = tuple[list[LaneEntry], list[str], list[object], bytes]


def put_value(stream: BytesWriter, extras: list[object], value: object) -> int:
    """Write one argument value; its kind."""
    if type(value) is int:
        try:
            write_i64_le(stream, cast(int, value))
            return INT_VALUE
        except (OverflowError, ValueError):  # beyond 64 bits (compiled: OverflowError): an object
            pass
    elif type(value) is float:
        write_f64_le(stream, cast(float, value))
        return FLOAT_VALUE
    write_i64_le(stream, 0)
    extras.append(value)
    return OBJECT_VALUE


def put_values(stream: BytesWriter, extras: list[object], values: list[object]) -> None:
    """Every value, then their kinds word (records with their arguments as a dict: rare)."""
    if len(values) > MAX_VALUES:
        raise ValueError(f"a traced record takes at most {MAX_VALUES} arguments, not {len(values)}")
    kinds = 0
    for index, value in enumerate(values):
        kinds |= put_value(stream, extras, value) << (VALUE_BITS * index)
    write_i64_le(stream, kinds)


def value_text(value: object) -> str:
    """An argument value as `_args` writes it: numbers as Python prints them, anything else as JSON."""
    return str(value) if type(value) is int or type(value) is float else json.dumps(value)


class _TextLane:
    """A lane as the text is made: its fixed text, the sub-lanes of its (component, lane), and the
    text around the last record's time, reused while it repeats."""

    __slots__ = ("arity", "caching", "heads", "instant", "last_duration", "last_head", "last_key", "last_name",
                 "last_tail", "last_tid", "lookups", "misses", "pid", "state")

    def __init__(self, keys: tuple[str, ...], instant: bool, pid: int, state: Lane | None) -> None:
        self.arity = len(keys)
        self.heads = [(',"args":{' if index == 0 else ",") + f'"{key}":' for index, key in enumerate(keys)]
        self.instant, self.pid, self.state = instant, pid, state
        self.last_head = ""
        self.last_name = -1
        self.last_tid = -1
        self.last_tail = ""
        self.last_key = b""  # the last tail's value words and their kinds, as bytes
        self.last_duration = -1
        self.lookups = 0
        self.misses = 0
        self.caching = True


class ChunkText:
    """The trace lines of a recording's chunks, given in order (one per process that makes text)."""

    def __init__(self, writer: ChromeTraceWriter) -> None:
        self.writer = writer
        self._lanes: list[_TextLane | None] = []
        self._names: list[str] = []  # name id -> its JSON string

    def lines(self, chunk: Chunk) -> str:
        """The chunk's records' lines, in arrival order, joined by ',\n'."""
        new_lanes, new_names, extras, data = chunk
        for index, component, lane_name, keys, instant, pid in new_lanes:
            while len(self._lanes) <= index:
                self._lanes.append(None)
            self._lanes[index] = _TextLane(keys, instant, pid,
                                           None if instant else self.writer.lane_state(component, lane_name, pid))
        for new_name in new_names:
            self._names.append(json.dumps(new_name))
        out = StringWriter()
        at = 0
        size = len(data)
        extra = 0
        last_start = -1  # records in a row often start together (a tile, its dequant, the next load)
        last_start_text = ""
        while at < size:
            if at:
                out.write(",\n")
            header = read_i64_le(data, at)
            lane = self._lanes[header & LANE_MASK]
            assert lane is not None
            name = header >> NAME_SHIFT
            start = read_i64_le(data, at + WORD_BYTES)
            if lane.instant:
                duration = -1
                at += 2 * WORD_BYTES
                if name != lane.last_name:
                    lane.last_head = (f'{{"ph":"i","s":"g","name":{self._names[name]},"pid":{lane.pid},'
                                      f'"tid":0,"ts":')
                    lane.last_name = name
            else:
                end = read_i64_le(data, at + 2 * WORD_BYTES)
                duration = end - start
                at += 3 * WORD_BYTES
                state = lane.state
                assert state is not None
                tid = self._tid(state, start, end)
                if name != lane.last_name or tid != lane.last_tid:
                    lane.last_head = (f'{{"ph":"X","name":{self._names[name]},"pid":{lane.pid},"tid":{tid},'
                                      f'"ts":')
                    lane.last_name, lane.last_tid = name, tid
            out.write(lane.last_head)
            if start != last_start:
                last_start, last_start_text = start, fixed_us(start)
            out.write(last_start_text)
            if not lane.arity:
                if duration < 0:
                    out.write("}")
                else:
                    out.write(',"dur":')
                    write_us(out, duration)
                    out.write("}")
                continue
            values_end = at + lane.arity * WORD_BYTES
            kinds = read_i64_le(data, values_end)
            if lane.caching and not kinds & _OBJECT_KINDS:
                out.write(_cached_tail(lane, data, at, kinds, duration))
            else:
                _write_tail(out, lane, data, at, kinds, duration, extras, extra)
                if kinds & _OBJECT_KINDS:
                    extra += _objects(kinds, lane.arity)
            at = values_end + WORD_BYTES
        return out.getvalue()

    def _tid(self, state: Lane, start_ps: int, end_ps: int) -> int:
        ends = state.ends
        if ends and start_ps >= ends[0]:  # the first sub-lane is free: the common case, no search
            if end_ps > ends[0]:
                ends[0] = end_ps
            return state.tids[0]
        return self.writer.sub_lane(state, start_ps, end_ps)


def _cached_tail(lane: _TextLane, data: bytes, at: int, kinds: int, duration: int) -> str:
    """The text after the time, reused while the duration and the value words repeat (tiles)."""
    key = data[at:at + (lane.arity + 1) * WORD_BYTES]  # the value words and their kinds
    lane.lookups += 1
    if duration == lane.last_duration and key == lane.last_key:
        return lane.last_tail
    lane.misses += 1
    if lane.lookups >= TAIL_PROBE_RECORDS and lane.misses * 2 > lane.lookups:
        lane.caching = False  # transfers: token and address change every record
    out = StringWriter()
    _write_tail(out, lane, data, at, kinds, duration, [], 0)
    lane.last_key, lane.last_duration, lane.last_tail = key, duration, out.getvalue()
    return lane.last_tail


def _objects(kinds: int, arity: int) -> int:
    count = 0
    for index in range(arity):
        if (kinds >> (VALUE_BITS * index)) & VALUE_MASK == OBJECT_VALUE:
            count += 1
    return count


def _write_tail(out: StringWriter, lane: _TextLane, data: bytes, at: int, kinds: int, duration: int,
                extras: list[object], extra: int) -> None:
    """The duration (slices), the arguments and the closing braces."""
    if duration >= 0:
        out.write(',"dur":')
        write_us(out, duration)
    heads = lane.heads
    for index in range(lane.arity):
        out.write(heads[index])
        kind = (kinds >> (VALUE_BITS * index)) & VALUE_MASK
        word_at = at + index * WORD_BYTES
        if kind == INT_VALUE:
            out.write(str(read_i64_le(data, word_at)))
        elif kind == FLOAT_VALUE:
            out.write(str(read_f64_le(data, word_at)))
        else:
            out.write(value_text(extras[extra]))
            extra += 1
    out.write("}}")
