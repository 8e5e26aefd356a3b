"""Expected native-histogram bucket indices, computed from the specification alone.

For a positive finite value v and a schema s in -4...8 the bucket index is the smallest
integer i with v <= (2 ** 2 ** -s) ** i, that is v ** (2 ** s) <= 2 ** i. This script finds it
without floating-point error: math.frexp gives the power of two (the index at schema 0, and so
at every schema below 0, where boundaries are powers of two), and exact rational arithmetic
(fractions.Fraction) places v among the boundaries inside that power of two at schemas above 0.

Inside a power of two the boundaries are irrational; Prometheus's clients use doubles that may
be a few units in the last place off. A value that close to such a boundary is printed as
"ambiguous": the tests check those separately, against client_golang's boundary doubles.

Output, one line per value and schema: `<value as float.hex()> <schema> <index|ambiguous>`
for the magnitude of each value (the sign only chooses the positive or negative buckets).
The values are fixed edge cases plus a seeded random sample, so every run prints the same.

    python3 native_bucket_index.py            # the table
"""
import math
import random
import sys
from fractions import Fraction


def index_at_schema0(m):
    frac, exp = math.frexp(m)  # m = frac * 2**exp, frac in [0.5, 1)
    return exp - 1 if frac == 0.5 else exp


def exact_index(m, schema):
    k0 = index_at_schema0(m)
    if schema <= 0:
        d = 2 ** -schema
        return -((-k0) // d)  # k0 / d rounded up
    # The index lies in ((k0 - 1) * 2**s, k0 * 2**s]: the smallest i there with
    # m ** (2**s) <= 2 ** i.
    n = 2 ** schema
    x = Fraction(m) ** n
    lo, hi = (k0 - 1) * n, k0 * n  # x > 2**lo and x <= 2**hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if x <= Fraction(2) ** mid:
            hi = mid
        else:
            lo = mid
    return hi


def ulps(m, k):
    for _ in range(abs(k)):
        m = math.nextafter(m, math.inf if k > 0 else 0.0)
    return m


def ambiguous(m, schema, index):
    """Whether an irrational boundary lies within 8 units in the last place of m."""
    if schema <= 0:
        return False
    n = 2 ** schema
    up, down = ulps(m, 8), ulps(m, -8)
    if up != math.inf and exact_index(up, schema) != index and index % n != 0:
        return True
    if down > 0 and exact_index(down, schema) != index and (index - 1) % n != 0:
        return True
    return False


def values():
    out = [
        1.0, 2.0, 0.5, 1.5, 3.0, 0.1, 0.25, 0.3, 0.75, 1e-9, 1e9, 12345.678, 2.0 ** -128,
        math.ulp(0.0), 2.0 ** -1022, 2.0 ** -1022 * 1.5, 2.0 ** -1060, sys.float_info.max,
        2.0 ** 1023, math.nextafter(1.0, 2.0), math.nextafter(1.0, 0.0),
        math.nextafter(2.0, 4.0), math.nextafter(2.0, 0.0), 1.0905077326652577, 1.0905077326652578,
    ]
    out += [2.0 ** e for e in range(-1074, 1024, 37)]
    rng = random.Random(20240514)
    for _ in range(120):  # log-uniform over the whole positive range
        out.append(math.ldexp(rng.uniform(0.5, 1.0), rng.randint(-1073, 1024)))
    for _ in range(120):  # where latencies and sizes live
        out.append(10 ** rng.uniform(-6, 6))
    return out


def main():
    lines = []
    for v in values():
        for s in range(-4, 9):
            i = exact_index(v, s)
            lines.append(f"{v.hex()} {s} {'ambiguous' if ambiguous(v, s, i) else i}")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
