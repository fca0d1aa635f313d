"""`illuminate-sync run ...`, plus a log of every request the sync sends (for the floor and today's practice).

Usage: python -m bench.sync_child REQUEST_LOG.jsonl run --duckdb FILE [illuminate-sync run options]

The HTTP client logs each answered request at DEBUG on logger `illuminate_sync` ("GET path (params): HTTP 200, N
bytes in S s", without OAuth parameters). This wrapper routes exactly those records to a JSON-lines file and then runs
the unchanged `illuminate-sync` command in this process, so the request list is the one of the measured run itself.
It also samples its own RSS every 0.25 s into REQUEST_LOG.rss.json, so that the peak can be placed in the run:
while requests are still being answered (extract) or after the last one (normalize, load, summary).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import IO

from bench.common import RssSampler, parse_describe, process_rss_mb


class RequestLogHandler(logging.Handler):
    """Writes the client's per-request DEBUG records as JSON lines; other records of WARNING and up go to stderr."""

    def __init__(self, handle: IO[str], started: float) -> None:
        super().__init__(logging.DEBUG)
        self.out = handle
        self.started = started
        self.last_request = 0.0
        self.stderr = logging.StreamHandler(sys.stderr)
        self.stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.DEBUG and str(record.msg).startswith("%s: HTTP %d") and record.args:
            describe, status, nbytes, seconds = record.args  # type: ignore[misc]
            path, params = parse_describe(str(describe))
            item = {"path": path, "params": params, "status": status, "bytes": nbytes, "seconds": round(seconds, 4)}
            item["end"] = round(time.perf_counter() - self.started, 4)  # since the process started (bench.timeline)
            self.out.write(json.dumps(item) + "\n")
            self.last_request = time.perf_counter()
        elif record.levelno >= logging.WARNING:
            self.stderr.emit(record)


def main() -> int:
    log_path, argv = sys.argv[1], sys.argv[2:]
    sampler = RssSampler()
    sampler.start()
    started = time.perf_counter()
    with open(log_path, "w") as handle:
        logger = logging.getLogger("illuminate_sync")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        handler = RequestLogHandler(handle, started)
        logger.addHandler(handler)
        from illuminate_sync.pipelines.cli import main as cli_main

        try:
            return cli_main(argv)
        finally:
            sampler.stopped.set()
            cut = handler.last_request
            during = [rss for t, rss, _ in sampler.samples if t <= cut]
            after = [rss for t, rss, _ in sampler.samples if t > cut]
            summary = {
                "peak_rss_while_downloading_mb": round(max(during, default=0.0), 1),
                "peak_rss_after_last_request_mb": round(max(after, default=0.0), 1),
                "seconds_after_last_request": round(time.perf_counter() - cut, 1) if cut else None,
                "peak_rss_at_exit_of_the_command_mb": round(process_rss_mb("self", "VmHWM"), 1),
                # (seconds, MB) when the kernel's peak rose above every sample: peaks between two samples
                "peak_rises_between_samples": [(round(t - started, 2), round(mb)) for t, mb in sampler.peak_rises],
                # (seconds, RSS MB, MB allocated by Arrow's pool) once a second
                "timeline": [
                    (round(t - started, 2), round(rss), round(arrow)) for t, rss, arrow in sampler.samples[::4]
                ],
            }
            Path(f"{log_path}.rss.json").write_text(json.dumps(summary))


if __name__ == "__main__":
    raise SystemExit(main())
