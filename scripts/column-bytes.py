#!/usr/bin/env python3
"""Estimates what candidate column encodings save, in bytes per event, with the codecs the store uses.

Reads `auditq search --format json` output (one JSON object per line) on stdin, lays the events out in sealed order
(traces by user of their edge event, then time; rows by start), cuts blocks of BLOCK rows, and writes each candidate
column as the column block would (uvarint/svarint streams), compressed per block with LZ4 (liblz4's block API, as
hot blocks) and zlib level 9 (archive). A measurement aid only: it models the per-row columns it names, not the
whole block; docs/format/columns.md is the format.

usage: auditq search --data D --from F --to T --format json | scripts/column-bytes.py [BLOCK]
"""
import collections, ctypes, ctypes.util, json, sys, zlib

BLOCK = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
_lz4 = ctypes.CDLL(ctypes.util.find_library("lz4") or "liblz4.so.1")


def lz4(b: bytes) -> int:
    if not b:
        return 0
    cap = _lz4.LZ4_compressBound(len(b))
    out = ctypes.create_string_buffer(cap)
    return _lz4.LZ4_compress_default(b, out, len(b), cap)


def uv(x, out):
    while x >= 0x80:
        out.append(x & 0x7F | 0x80)
        x >>= 7
    out.append(x)


def sv(x, out):
    uv((x << 1) ^ (x >> 63) if x >= 0 else ((-x) << 1) - 1, out)


events = []
for line in sys.stdin:
    if line.startswith("{"):
        events.append(json.loads(line)["event"])
traces = collections.defaultdict(list)
for e in events:
    traces[e["trace_id"]].append(e)


def trace_key(es):
    user = next((e["user"]["subject"] for e in es if e.get("user") and (e["kind"] == "access" or e["source"] == "edge")),
                next((e["user"]["subject"] for e in es if e.get("user")), None))
    first = min(int(e["start_time_unix_nano"]) for e in es)
    return (user is None, user or es[0]["service"], first)


rows = []
for es in sorted(traces.values(), key=trace_key):
    rows.extend(sorted(es, key=lambda e: int(e["start_time_unix_nano"])))
n = len(rows)
print(f"{n} events, {len(traces)} traces ({n / len(traces):.2f} events/trace), blocks of {BLOCK} rows")

def shape_of(e):
    h, u = e.get("http") or {}, e.get("user") or {}
    return (e["kind"], e["service"], e["name"], e["source"], e.get("span_kind"), e.get("flags"), e.get("workload"),
            h.get("method"), h.get("route"), h.get("status_code"), "target" in h, "client_address" in h,
            tuple((k, type(v).__name__) for k, v in e.get("attributes", {}).items()),
            json.dumps(e.get("resource"), sort_keys=True), json.dumps(e.get("scope"), sort_keys=True),
            u.get("issuer"), len(u.get("groups", [])))


# Per block, per candidate: a dict of column name -> bytearray.
totals = collections.defaultdict(lambda: [0, 0])
for b0 in range(0, n, BLOCK):
    block = rows[b0:b0 + BLOCK]
    cols = collections.defaultdict(bytearray)
    strings = {}

    def sid(s):
        if s not in strings:
            strings[s] = len(strings) + 300  # block ids sit above the segment dictionary's (~300 strings)
        return strings[s]

    hexstrings = set()
    prev_trace = None
    # Per shape (approximated by what the shape holds but values), the keys whose value is the same in every row.
    seen = collections.defaultdict(dict)
    for e in block:
        for k, v in e.get("attributes", {}).items():
            seen[shape_of(e)].setdefault(k, set()).add(json.dumps(v))
    constant = {s: {k for k, vs in keys.items() if len(vs) == 1} for s, keys in seen.items()}
    for e in block:
        t = e["trace_id"]
        if t != prev_trace:
            run, prev_trace, by_span, run_target = [], t, {}, None
            t0 = int(e["start_time_unix_nano"])
        s, en = int(e["start_time_unix_nano"]), int(e["end_time_unix_nano"])
        p = by_span.get(e.get("parent_span_id"))
        # times: today (start from the run's first row, duration)
        if run:
            sv(s - t0, cols["times.now"])
        sv(en - s, cols["times.now"])
        # times: start from the parent row's start, end from the parent row's end (parent in the run), else today
        if p is not None:
            sv(s - p[0], cols["times.parent"])
            sv(p[1] - en, cols["times.parent"])
        else:
            if run:
                sv(s - t0, cols["times.parent"])
            sv(en - s, cols["times.parent"])
        by_span[e["span_id"]] = (s, en, e)
        run.append(e)
        # values (string attributes only: ids; trace-id strings kept in the shape) and the dictionary entries
        for k, v in e.get("attributes", {}).items():
            if isinstance(v, str):
                uv(sid(v), cols["values.now"])
                if v != t:
                    uv(sid(v), cols["values.traceid"])
                if v == t:
                    hexstrings.add(v)
        # string and int values the same in every row of their shape (in this block) kept in the shape instead
        for k, v in e.get("attributes", {}).items():
            if isinstance(v, float) or isinstance(v, bool) or v == t or k in constant.get(shape_of(e), ()):
                continue
            (uv(sid(v), cols["values.constants"]) if isinstance(v, str) else sv(v, cols["values.constants"]))
        # http targets: today (string id), or 0 = the run's previous target, else id + 1
        h = e.get("http") or {}
        if "target" in h:
            uv(sid(h["target"]), cols["http.now"])
            uv(0 if run_target == h["target"] else sid(h["target"]) + 1, cols["http.repeat"])
            run_target = h["target"]
        if "client_address" in h:
            uv(sid(h["client_address"]), cols["http.now"])
            uv(sid(h["client_address"]), cols["http.repeat"])
    # trace-id-valued strings: each is a dictionary entry of 1 + 16 bytes today
    d = bytearray()
    for _ in hexstrings:
        d += b"\x01" + bytes(16)
    for name, col in cols.items():
        totals[name][0] += lz4(bytes(col))
        totals[name][1] += len(zlib.compress(bytes(col), 9))
    totals["dictionary: trace-id strings"][0] += 17 * len(hexstrings)
    totals["dictionary: trace-id strings"][1] += 17 * len(hexstrings)

print(f"{'column':32} {'LZ4 B/event':>12} {'zlib-9 B/event':>15}")
for name in sorted(totals):
    l, z = totals[name]
    print(f"{name:32} {l / n:12.2f} {z / n:15.2f}")
