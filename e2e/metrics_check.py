"""Checks a scrape of the operator's /metrics with prometheus_client's parser.

    metrics_check.py AFTER [--before BEFORE] [EXPECT...]

Parses AFTER (and BEFORE) with prometheus_client.parser.text_string_to_metric_families
and checks what the parser lets through as well: each family once, a TYPE for
every sample, no series twice, no timestamps. Then the contract of API.md
("The operator process"): every membrane_ family it lists is there with its
type and label names and there are no others; histograms have cumulative
buckets from milliseconds to minutes, an +Inf bucket equal to _count, and _sum.

Each EXPECT is NAME{label="value",...} OP NUMBER with OP one of == >= > <=:
the sum of the samples called NAME whose labels include the given ones (a
histogram's NAME_count, NAME_bucket, NAME_sum too), taken in AFTER, or when
--before is given, its increase from BEFORE to AFTER.

Prints one line per failure and exits 1 when anything failed, 2 on bad usage.
"""
import math
import re
import sys

from prometheus_client.parser import text_string_to_metric_families

# API.md, "The operator process": name -> (type, label names)
CONTRACT = {
    "membrane_reconcile_total": ("counter", {"kind", "result"}),
    "membrane_reconcile_duration_seconds": ("histogram", {"kind"}),
    "membrane_workqueue_depth": ("gauge", {"kind"}),
    "membrane_rollouts_total": ("counter", {"outcome"}),
    "membrane_rollbacks_total": ("counter", {"trigger"}),
    "membrane_promotions_total": ("counter", {"outcome"}),
    "membrane_verification_check_duration_seconds": ("histogram", {"check"}),
    "membrane_verification_failures_total": ("counter", {"check"}),
    "membrane_watch_restarts_total": ("counter", {"resource"}),
    "membrane_api_requests_total": ("counter", {"verb", "code"}),
    "membrane_is_leader": ("gauge", set()),
    "membrane_build_info": ("gauge", {"version"}),
    "membrane_transfer_bytes_total": ("counter", {"kind"}),
    "membrane_transfer_duration_seconds": ("histogram", {"kind"}),
    "membrane_bundles_total": ("counter", {"outcome"}),
}

# Durations from milliseconds to minutes: a bucket at 10 ms or below, one at a
# minute or above, and enough in between to tell them apart.
SMALLEST_BUCKET_MAX = 0.01
LARGEST_BUCKET_MIN = 60.0
BUCKETS_MIN = 10

failures = []


def fail(msg):
    failures.append(msg)


def exposed_name(family):
    """The name in the exposition: the parser drops a counter's _total."""
    if family.type == "counter" and family.name + "_total" in CONTRACT:
        return family.name + "_total"
    return family.name


def parse(path):
    """{exposed family name: family}; every malformation is a failure."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        fail(f"{path}: cannot read it: {e}")
        return None
    if not text.endswith("\n"):
        fail(f"{path}: the exposition does not end with a newline")
    families = {}
    seen_series = set()
    try:
        for fam in text_string_to_metric_families(text):
            name = exposed_name(fam)
            if name in families:
                fail(f"{path}: family {name} appears more than once (its samples are not together)")
            families[name] = fam
            if fam.type == "unknown":
                fail(f"{path}: samples of {name} come without a TYPE line")
            for s in fam.samples:
                if s.timestamp is not None:
                    fail(f"{path}: {s.name} carries a timestamp")
                key = (s.name, tuple(sorted(s.labels.items())))
                if key in seen_series:
                    fail(f"{path}: series {s.name}{s.labels} appears twice")
                seen_series.add(key)
                if math.isnan(s.value):
                    fail(f"{path}: {s.name}{s.labels} is NaN")
    except Exception as e:  # the parser raises ValueError and others on malformed text
        fail(f"{path}: the exposition is malformed: {type(e).__name__}: {e}")
        return None
    return families


def check_histogram(path, name, fam):
    series = {}
    for s in fam.samples:
        labels = dict(s.labels)
        le = labels.pop("le", None)
        key = tuple(sorted(labels.items()))
        entry = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if s.name == name + "_bucket":
            if le is None:
                fail(f"{path}: {name}_bucket{labels} has no le label")
                continue
            entry["buckets"].append((float(le), s.value))
        elif s.name == name + "_sum":
            entry["sum"] = s.value
        elif s.name == name + "_count":
            entry["count"] = s.value
        else:
            fail(f"{path}: {s.name} is not a sample a histogram has")
    for key, e in series.items():
        where = f"{path}: {name}{dict(key)}"
        bounds = [b for b, _ in e["buckets"]]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            fail(f"{where}: bucket bounds are not strictly increasing: {bounds}")
        if not bounds or bounds[-1] != math.inf:
            fail(f"{where}: no +Inf bucket")
            continue
        counts = [v for _, v in e["buckets"]]
        if any(b < a for a, b in zip(counts, counts[1:])):
            fail(f"{where}: bucket counts are not cumulative: {counts}")
        if e["count"] is None or e["sum"] is None:
            fail(f"{where}: _count or _sum is missing")
        elif counts[-1] != e["count"]:
            fail(f"{where}: the +Inf bucket ({counts[-1]}) is not _count ({e['count']})")
        finite = bounds[:-1]
        if len(finite) < BUCKETS_MIN or finite[0] > SMALLEST_BUCKET_MAX or finite[-1] < LARGEST_BUCKET_MIN:
            fail(f"{where}: buckets {finite} do not span milliseconds to minutes "
                 f"(want at least {BUCKETS_MIN}, the first <= {SMALLEST_BUCKET_MAX} s, the last >= {LARGEST_BUCKET_MIN} s)")


def check_contract(path, families):
    for name, (typ, labels) in CONTRACT.items():
        fam = families.get(name)
        if fam is None:
            fail(f"{path}: {name} ({typ}) is missing")
            continue
        if fam.type != typ:
            fail(f"{path}: {name} is a {fam.type}, API.md says {typ}")
            continue
        for s in fam.samples:
            got = set(s.labels) - ({"le"} if s.name.endswith("_bucket") else set())
            if got != labels:
                fail(f"{path}: {s.name} has labels {sorted(got)}, API.md says {sorted(labels)}")
        if typ == "histogram":
            check_histogram(path, name, fam)
    for name in sorted(families):
        if name.startswith("membrane_") and name not in CONTRACT:
            fail(f"{path}: {name} is not a metric API.md lists")


EXPECT = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s*(==|>=|<=|>)\s*(-?[0-9.]+)$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"\s*(?:,|$)')


def total(families, name, want):
    n = 0.0
    for fam in families.values():
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in want.items()):
                n += s.value
    return n


def check_expect(expr, after, before):
    m = EXPECT.match(expr.strip())
    if not m:
        print(f"metrics_check.py: cannot read the expectation {expr!r}", file=sys.stderr)
        sys.exit(2)
    name, labels_text, op, number = m.group(1), m.group(2) or "", m.group(3), float(m.group(4))
    want = dict(LABEL.findall(labels_text))
    got = total(after, name, want) - (total(before, name, want) if before is not None else 0.0)
    ok = {"==": got == number, ">=": got >= number, "<=": got <= number, ">": got > number}[op]
    if not ok:
        what = "increase" if before is not None else "value"
        fail(f"{expr}: the {what} is {got:g}")


def main(argv):
    args, before_path, expects = list(argv), None, []
    if not args or args[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    after_path = args.pop(0)
    while args:
        a = args.pop(0)
        if a == "--before" and args:
            before_path = args.pop(0)
        else:
            expects.append(a)
    after = parse(after_path)
    before = parse(before_path) if before_path else None
    if after is not None:
        check_contract(after_path, after)
    if before is not None:
        check_contract(before_path, before)
    if after is not None and (before is not None or before_path is None):
        for e in expects:
            check_expect(e, after, before)
    for f in failures:
        print(f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
