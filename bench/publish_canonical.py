"""Server CPU per publish of a large contract, this checkout beside another (--before DIR).

Run: .venv/bin/python bench/publish_canonical.py --before DIR [--rounds 5] [--paths 2000] [--declaring 20]
DIR holds the other code (`git -C /work/main archive HEAD | tar -x -C DIR`). Both servers run at once
(SQLite, APIs created with validity `none`, so the OpenAPI validator's seconds do not drown the rest)
and take their publishes in turn, so both meet the same machine load. Documents: bench/synthetic.py's
`--paths` document with `--declaring` of its schemas declaring the canonical model `resource@^1`
(published first), and Stripe's spec3-v120.json as it is (it declares nothing: the walks alone). Each
round publishes a new version (its description changed); the figure is the server process's user +
system CPU from quiet to quiet around the request (the background route reload it causes included,
alike on both sides), read from /proc. Prints the median per document and checkout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from bench._corpus import corpus_dir
from bench._server import running_server, token
from bench.synthetic import base_document, resource_schema

CORPUS = corpus_dir()
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def settled_cpu_seconds(pid: int) -> float:
    """The server's CPU once it has gone quiet: a publish's announcement recompiles the API's routes in
    the background, after the answer; left running, it lands in the next publish's figure."""
    last = cpu_seconds(pid)
    while True:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - last < 0.02:
            return now
        last = now


def declaring_document(paths: int, declaring: int) -> dict[str, Any]:
    doc = base_document(paths)
    for i in range(declaring):
        doc["components"]["schemas"][f"Resource{i}"]["x-canonical"] = "resource@^1"
    return doc


class Registry:
    """One running server with the APIs the rounds publish to."""

    def __init__(self, url: str, pid: int) -> None:
        self.pid = pid
        self.http = httpx.Client(base_url=url, timeout=600, headers={"Authorization": f"Bearer {token(url)}"})
        self.http.post("/api/v1/teams", json={"name": "bench"}).raise_for_status()
        for name, layer in (("resource", "canonical"), ("synthetic", "system"), ("stripe", "system")):
            api = {"name": name, "owner": "bench", "title": name, "layer": layer, "validity": "none"}
            self.http.post("/api/v1/apis", json=api).raise_for_status()
        model = {"$schema": "https://json-schema.org/draft/2020-12/schema", **resource_schema()}
        self.publish("resource", model, "1.0.0")

    def publish(self, api: str, document: dict[str, Any], version: str) -> float:
        body = json.dumps(document).encode()
        before = settled_cpu_seconds(self.pid)
        response = self.http.post(
            f"/api/v1/apis/{api}/versions",
            content=body,
            params={"version": version},
            headers={"Content-Type": "application/json"},
        )
        spent = settled_cpu_seconds(self.pid) - before
        if response.status_code != 201:
            raise SystemExit(f"publish to {api} failed: {response.status_code} {response.text[:300]}")
        return spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--paths", type=int, default=2000)
    parser.add_argument("--declaring", type=int, default=20)
    args = parser.parse_args()
    documents = {
        "synthetic": declaring_document(args.paths, args.declaring),
        "stripe": json.loads((CORPUS / "stripe" / "spec3-v120.json").read_bytes()),
    }
    checkouts = {"before": args.before.resolve(), "after": Path(__file__).resolve().parents[1]}
    spent: dict[tuple[str, str], list[float]] = {(c, d): [] for c in checkouts for d in documents}
    with contextlib.ExitStack() as stack:
        registries = {}
        for label, root in checkouts.items():
            url, process = stack.enter_context(running_server(code=root))
            registries[label] = Registry(url, process.pid)
        for round_ in range(args.rounds):
            for name, document in documents.items():
                document["info"]["description"] = f"round {round_}"
                for label, registry in registries.items():
                    spent[(label, name)].append(registry.publish(name, document, f"1.{round_}.0"))
        for registry in registries.values():
            registry.http.close()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(f"{'document':<10} {'before CPU s':>13} {'after CPU s':>12} {'saved ms':>9}")
    for name in documents:
        before = statistics.median(spent[("before", name)])
        after = statistics.median(spent[("after", name)])
        print(f"{name:<10} {before:>13.3f} {after:>12.3f} {(before - after) * 1000:>9.0f}")


if __name__ == "__main__":
    main()
