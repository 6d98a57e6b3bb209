"""Scrapes a magg's /metrics and reads it with Prometheus' own Python parsers.

Usage: python3 scrape.py URL [prometheus|openmetrics]

Asks for the given format (the Prometheus text format by default, or OpenMetrics), checks
the response's media type, parses the body with prometheus_client's parser for that format,
and prints every sample as one JSON object per line: {"name", "labels", "value", "type"}.
A body the parser rejects makes it exit non-zero with the parser's error.
"""

import json
import sys
import urllib.request

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as prometheus_families


def main(argv):
    url = argv[1]
    fmt = argv[2] if len(argv) > 2 else "prometheus"
    accept = {
        "prometheus": "text/plain;version=0.0.4;q=0.9,*/*;q=0.1",
        "openmetrics": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
    }[fmt]
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        media = response.headers.get("Content-Type", "")
        body = response.read().decode("utf-8")
    expected = "text/plain" if fmt == "prometheus" else "application/openmetrics-text"
    if not media.startswith(expected):
        print(f"media type {media!r}, expected {expected}", file=sys.stderr)
        return 1
    parse = prometheus_families if fmt == "prometheus" else openmetrics_families
    for family in parse(body):
        for sample in family.samples:
            print(
                json.dumps(
                    {
                        "name": sample.name,
                        "labels": sample.labels,
                        "value": sample.value,
                        "type": family.type,
                    }
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
