"""Run one emulator standalone (benchmarks, manual poking); stops on Ctrl-C / SIGTERM.

    python -m tests.emulators openai --port 8001 --latency 2
    python -m tests.emulators search --port 8002 --api-key local-key
    python -m tests.emulators content-safety --tls        # prints the CA bundle path to trust

Only binds 127.0.0.1. Prints one line with the endpoint, then serves until stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from .base import DEFAULT_API_KEY, DEFAULT_TOKEN, EmulatorServer
from .content_safety import ContentSafetyEmulator
from .openai_responses import OpenAIResponsesEmulator
from .search import SearchEmulator

EMULATORS: dict[str, type[EmulatorServer]] = {
    "search": SearchEmulator,
    "openai": OpenAIResponsesEmulator,
    "content-safety": ContentSafetyEmulator,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators", description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=sorted(EMULATORS))
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added before every answer")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="accepted bearer token")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a generated test CA")
    return parser.parse_args(argv)


def build_emulator(args: argparse.Namespace) -> EmulatorServer:
    return EMULATORS[args.service](
        api_key=args.api_key, token=args.token, tls=args.tls, latency_seconds=args.latency, port=args.port
    )


def main(argv: list[str] | None = None) -> None:
    emulator = build_emulator(parse_args(argv))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with emulator:
        ca = f" ca_bundle={emulator.ca_bundle_path}" if emulator.ca_bundle_path else ""
        print(f"{emulator.service_name} emulator listening on {emulator.endpoint}{ca}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
