"""Reads shardcat's /metrics with prometheus_client's own parser (the text format as Prometheus reads it)
and prints, as JSON, {"families": {name: type}, "samples": [[name, labels, value], ...]}; exits 1 with the
parser's message when the text does not parse."""
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

url = sys.argv[1]
with urllib.request.urlopen(url, timeout=10) as r:
    ctype = r.headers.get("Content-Type", "")
    text = r.read().decode("utf-8")
try:
    families = list(text_string_to_metric_families(text))
except Exception as e:  # the parser raises ValueError and friends on malformed text
    print(f"parse error: {e}", file=sys.stderr)
    sys.exit(1)
out = {"content_type": ctype, "families": {}, "samples": []}
for f in families:
    out["families"][f.name] = f.type
    for s in f.samples:
        out["samples"].append([s.name, s.labels, s.value])
print(json.dumps(out))
