"""Publish Stripe's large contracts through the API, beside openapi_spec_validator.validate() alone.

Run: .venv/bin/python bench/publish.py [--rounds N]
Each document is published N times (as new versions) to a fresh `charter serve` on loopback; the
validator alone is timed N times in this process on the same parsed document. Prints medians,
peak memory of the server, and the ratio publish / validator.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx
from openapi_spec_validator import validate

from bench._corpus import corpus_dir
from bench._server import peak_rss_mb, running_server, token
from contracts.loading import load_document

CORPUS = corpus_dir() / "stripe"
DOCUMENTS = [
    ("spec3-v110.json", "application/json"),
    ("spec3-v190.yaml", "application/yaml"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    header = ("document", "MB", "publish s", "validate() s", "ratio", "server peak MiB")
    print("{:<18} {:>5} {:>10} {:>13} {:>6} {:>16}".format(*header))
    for name, media_type in DOCUMENTS:
        data = (CORPUS / name).read_bytes()
        document = load_document(data, media_type=media_type)
        validator_times = []
        for _ in range(rounds):
            started = time.perf_counter()
            validate(document)
            validator_times.append(time.perf_counter() - started)

        with running_server() as (url, process):
            headers = {"Authorization": f"Bearer {token(url)}", "Content-Type": media_type}
            with httpx.Client(base_url=url, timeout=300) as http:
                http.post("/api/v1/teams", json={"name": "payments"}, headers=headers).raise_for_status()
                publish_times = []
                for round_ in range(rounds):
                    started = time.perf_counter()
                    response = http.post(
                        "/api/v1/apis/stripe/versions",
                        content=data,
                        headers=headers,
                        params={"version": f"1.{round_}.0", "owner": "payments"},
                    )
                    publish_times.append(time.perf_counter() - started)
                    if response.status_code != 201:
                        raise SystemExit(f"publish failed: {response.status_code} {response.text[:300]}")
            peak = peak_rss_mb(process.pid)

        publish_s = statistics.median(publish_times)
        validate_s = statistics.median(validator_times)
        print(
            f"{name:<18} {len(data) / 1e6:>5.1f} {publish_s:>10.2f} {validate_s:>13.2f} "
            f"{publish_s / validate_s:>6.2f} {peak:>16.0f}"
        )

    successor(rounds)


def successor(rounds: int) -> None:
    """A real next version: v120 published after v110, so the compatibility diff runs on publish."""
    base, revision = (CORPUS / "spec3-v110.json").read_bytes(), (CORPUS / "spec3-v120.json").read_bytes()
    validator_times = []
    document = load_document(revision)
    for _ in range(rounds):
        started = time.perf_counter()
        validate(document)
        validator_times.append(time.perf_counter() - started)
    with running_server() as (url, process):
        headers = {"Authorization": f"Bearer {token(url)}", "Content-Type": "application/json"}
        with httpx.Client(base_url=url, timeout=300) as http:
            http.post("/api/v1/teams", json={"name": "payments"}, headers=headers).raise_for_status()
            publish_times = []
            for round_ in range(rounds):
                older = {"version": f"{2 * round_ + 1}.0.0", "owner": "payments"}
                http.post("/api/v1/apis/stripe/versions", content=base, headers=headers, params=older)
                started = time.perf_counter()
                response = http.post(
                    "/api/v1/apis/stripe/versions",
                    content=revision,
                    headers=headers,
                    params={"version": f"{2 * round_ + 2}.0.0"},
                )
                publish_times.append(time.perf_counter() - started)
                if response.status_code != 201:
                    raise SystemExit(f"publish failed: {response.status_code} {response.text[:300]}")
                changes = response.json()["change_count"]
        peak = peak_rss_mb(process.pid)
    publish_s, validate_s = statistics.median(publish_times), statistics.median(validator_times)
    label = "v120 after v110"
    print(
        f"{label:<18} {len(revision) / 1e6:>5.1f} {publish_s:>10.2f} {validate_s:>13.2f} "
        f"{publish_s / validate_s:>6.2f} {peak:>16.0f}  ({changes} changes diffed on publish)"
    )


if __name__ == "__main__":
    main()
