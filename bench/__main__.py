"""`make bench`: every benchmark, with its figures."""

import sys

from bench import cli_download, cold_start, cost, staging, staging_latency, stream_memory

SECTIONS = {
    "cold start": cold_start.run,
    "cost": cost.run,
    "streaming a result": stream_memory.run,
    "staging an import": staging.run,
    "staging at the vendor's speed": staging_latency.run,
    "downloading a result with the CLI": cli_download.run,
}


def main(only: list[str]) -> None:
    for title, run in SECTIONS.items():
        if only and not any(word in title for word in only):
            continue
        print(f"== {title}", flush=True)
        for line in run():
            print(f"   {line}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
