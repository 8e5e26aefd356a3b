"""Reads a protobuf exposition (delimited io.prometheus.client.MetricFamily messages) with
Google's protobuf package, independently of the Swift encoder.

    proto_check.py FILE            # each family in protobuf text format, separated by "---"
    proto_check.py --summary FILE  # one JSON line per family: name, type, metrics, unit
    proto_check.py --compare-text FILE TEXT
        # the samples Prometheus derives from the protobuf families (`_bucket`, `_count`, `_sum`
        # of histograms and summaries, a sample per counter, gauge and untyped metric) must be
        # those prometheus_client's text parser reads from TEXT (a text 0.0.4 exposition of
        # the same families); prints how many agreed

The message classes come from a FileDescriptorProto built below from the field table of
prometheus/client_model's io/prometheus/client/metrics.proto (the current one, with
MetricFamily.unit and the created timestamps). Exit status 1, with the reason on standard
error, when the stream is not a sequence of length-prefixed messages, when a message does not
parse, or when any message holds a field the schema does not know (a wrong field number or
wire type shows up as an unknown field).
"""
import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, timestamp_pb2
from google.protobuf import unknown_fields

F = descriptor_pb2.FieldDescriptorProto
OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
DOUBLE, UINT64, UINT32, INT64 = F.TYPE_DOUBLE, F.TYPE_UINT64, F.TYPE_UINT32, F.TYPE_INT64
SINT32, SINT64, STRING, MESSAGE, ENUM = F.TYPE_SINT32, F.TYPE_SINT64, F.TYPE_STRING, F.TYPE_MESSAGE, F.TYPE_ENUM
P = ".io.prometheus.client."
TS = ".google.protobuf.Timestamp"

MESSAGES = {
    "LabelPair": [("name", 1, OPT, STRING), ("value", 2, OPT, STRING)],
    "Gauge": [("value", 1, OPT, DOUBLE)],
    "Counter": [("value", 1, OPT, DOUBLE), ("exemplar", 2, OPT, P + "Exemplar"),
                ("created_timestamp", 3, OPT, TS)],
    "Quantile": [("quantile", 1, OPT, DOUBLE), ("value", 2, OPT, DOUBLE)],
    "Summary": [("sample_count", 1, OPT, UINT64), ("sample_sum", 2, OPT, DOUBLE),
                ("quantile", 3, REP, P + "Quantile"), ("created_timestamp", 4, OPT, TS)],
    "Untyped": [("value", 1, OPT, DOUBLE)],
    "Histogram": [
        ("sample_count", 1, OPT, UINT64), ("sample_count_float", 4, OPT, DOUBLE), ("sample_sum", 2, OPT, DOUBLE),
        ("bucket", 3, REP, P + "Bucket"), ("created_timestamp", 15, OPT, TS),
        ("schema", 5, OPT, SINT32), ("zero_threshold", 6, OPT, DOUBLE), ("zero_count", 7, OPT, UINT64),
        ("zero_count_float", 8, OPT, DOUBLE),
        ("negative_span", 9, REP, P + "BucketSpan"), ("negative_delta", 10, REP, SINT64),
        ("negative_count", 11, REP, DOUBLE),
        ("positive_span", 12, REP, P + "BucketSpan"), ("positive_delta", 13, REP, SINT64),
        ("positive_count", 14, REP, DOUBLE),
        ("exemplars", 16, REP, P + "Exemplar"),
    ],
    "Bucket": [("cumulative_count", 1, OPT, UINT64), ("cumulative_count_float", 4, OPT, DOUBLE),
               ("upper_bound", 2, OPT, DOUBLE), ("exemplar", 3, OPT, P + "Exemplar")],
    "BucketSpan": [("offset", 1, OPT, SINT32), ("length", 2, OPT, UINT32)],
    "Exemplar": [("label", 1, REP, P + "LabelPair"), ("value", 2, OPT, DOUBLE), ("timestamp", 3, OPT, TS)],
    "Metric": [("label", 1, REP, P + "LabelPair"), ("gauge", 2, OPT, P + "Gauge"), ("counter", 3, OPT, P + "Counter"),
               ("summary", 4, OPT, P + "Summary"), ("untyped", 5, OPT, P + "Untyped"),
               ("histogram", 7, OPT, P + "Histogram"), ("timestamp_ms", 6, OPT, INT64)],
    "MetricFamily": [("name", 1, OPT, STRING), ("help", 2, OPT, STRING), ("type", 3, OPT, P + "MetricType"),
                     ("metric", 4, REP, P + "Metric"), ("unit", 5, OPT, STRING)],
}
METRIC_TYPES = [("COUNTER", 0), ("GAUGE", 1), ("SUMMARY", 2), ("UNTYPED", 3), ("HISTOGRAM", 4), ("GAUGE_HISTOGRAM", 5)]


def metric_family_class():
    pool = descriptor_pool.DescriptorPool()
    ts = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(ts)
    pool.Add(ts)
    fdp = descriptor_pb2.FileDescriptorProto(name="io/prometheus/client/metrics.proto", package="io.prometheus.client",
                                             syntax="proto2", dependency=["google/protobuf/timestamp.proto"])
    enum = fdp.enum_type.add(name="MetricType")
    for name, number in METRIC_TYPES:
        enum.value.add(name=name, number=number)
    for message, fields in MESSAGES.items():
        m = fdp.message_type.add(name=message)
        for name, number, label, kind in fields:
            f = m.field.add(name=name, number=number, label=label)
            if isinstance(kind, str):
                f.type_name = kind
                f.type = ENUM if kind.endswith("MetricType") else MESSAGE
            else:
                f.type = kind
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("io.prometheus.client.MetricFamily"))


def varint(data, pos):
    """A base-128 varint at data[pos:]: (value, position after it)."""
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated length prefix")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("length prefix longer than 10 bytes")


def unknown(message, path):
    """Paths of fields the schema does not know, anywhere in `message`."""
    found = [f"{path}: field {f.field_number} (wire type {f.wire_type})" for f in unknown_fields.UnknownFieldSet(message)]
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
        for i, item in enumerate(value if repeated else [value]):
            found += unknown(item, f"{path}.{field.name}[{i}]")
    return found


def go_float(value):
    """A float as text exposition writes an `le` or `quantile` label (prometheus_client's floatToGoString)."""
    from prometheus_client.utils import floatToGoString
    return floatToGoString(value)


def flattened(families):
    """(name, labels, value) per sample, as Prometheus reads the protobuf families."""
    out = []
    for family in families:
        for metric in family.metric:
            labels = tuple(sorted((p.name, p.value) for p in metric.label))
            if metric.HasField("counter"):
                out.append((family.name, labels, metric.counter.value))
            elif metric.HasField("gauge"):
                out.append((family.name, labels, metric.gauge.value))
            elif metric.HasField("untyped"):
                out.append((family.name, labels, metric.untyped.value))
            elif metric.HasField("summary"):
                s = metric.summary
                for q in s.quantile:
                    out.append((family.name, tuple(sorted(labels + (("quantile", go_float(q.quantile)),))), q.value))
                out.append((family.name + "_count", labels, float(s.sample_count)))
                out.append((family.name + "_sum", labels, s.sample_sum))
            elif metric.HasField("histogram"):
                h = metric.histogram
                for b in h.bucket:
                    count = b.cumulative_count_float if b.cumulative_count_float > 0 else float(b.cumulative_count)
                    out.append((family.name + "_bucket", tuple(sorted(labels + (("le", go_float(b.upper_bound)),))),
                                count))
                count = h.sample_count_float if h.sample_count_float > 0 else float(h.sample_count)
                out.append((family.name + "_count", labels, count))
                out.append((family.name + "_sum", labels, h.sample_sum))
    return out


def compare_text(families, text_path):
    from prometheus_client.parser import text_string_to_metric_families
    with open(text_path, encoding="utf-8") as f:
        text = f.read()
    theirs = [(s.name, tuple(sorted(s.labels.items())), s.value)
              for family in text_string_to_metric_families(text) for s in family.samples]
    ours = flattened(families)

    def key(sample):
        name, labels, value = sample
        return (name, labels, "NaN" if value != value else repr(float(value)))
    a, b = sorted(map(key, ours)), sorted(map(key, theirs))
    if a != b:
        only_proto = [x for x in a if x not in b][:10]
        only_text = [x for x in b if x not in a][:10]
        print(f"protobuf and text disagree: {len(a)} vs {len(b)} samples; only in protobuf {only_proto}; "
              f"only in text {only_text}", file=sys.stderr)
        sys.exit(1)
    print(f"{len(a)} samples agree")


def main():
    args = sys.argv[1:]
    summary = args[:1] == ["--summary"]
    compare = args[:1] == ["--compare-text"]
    if summary or compare:
        args = args[1:]
    with open(args[0], "rb") as f:
        data = f.read()
    MetricFamily = metric_family_class()
    pos, families = 0, []
    while pos < len(data):
        length, start = varint(data, pos)
        if start + length > len(data):
            raise ValueError(f"message at byte {pos} claims {length} bytes, {len(data) - start} left")
        family = MetricFamily()
        family.ParseFromString(data[start:start + length])
        bad = unknown(family, family.name)
        if bad:
            print("unknown fields: " + "; ".join(bad), file=sys.stderr)
            sys.exit(1)
        families.append(family)
        pos = start + length
    if compare:
        compare_text(families, args[1])
        return
    for i, family in enumerate(families):
        if summary:
            print(json.dumps({"name": family.name, "type": family.type, "metrics": len(family.metric),
                              "unit": family.unit if family.HasField("unit") else None}))
        else:
            if i:
                print("---")
            print(text_format.MessageToString(family, as_utf8=True), end="")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001  (any failure to read is the answer)
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
