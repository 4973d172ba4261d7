"""`python -m bench` (`make bench`): every benchmark in turn, then one summary line per figure.

Each benchmark runs in a process of its own and prints its baseline beside its figure, its
figure last. The run ends with the machine it ran on and the summary lines; it exits 1 if a
figure misses its target or a benchmark fails. ``python -m bench create sweep`` runs only those.
"""

from __future__ import annotations

import os
import subprocess
import sys

from bench import common

BENCHMARKS = ("rewrap", "create", "sweep", "link_lookup")


def _run(name: str) -> tuple[list[str], int]:
    """Run one benchmark, passing its output through; returns its summary lines and status."""
    print(f"== bench.{name}", flush=True)
    process = subprocess.Popen(
        [sys.executable, "-m", f"bench.{name}"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=common.PROJECT_ROOT,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        print(line, end="", flush=True)
        if line.startswith("bench "):
            lines.append(line.rstrip("\n"))
    return lines, process.wait()


def _machine() -> str:
    facts = common.machine()
    server = common.postgres_server_url()
    postgres = common.postgres_version(server) if server else "not available"
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['ram']} RAM, "
        f"Python {facts['python']}, SQLite {facts['sqlite']}, PostgreSQL {postgres}, "
        f"load average now {load}"
    )


def main(names: list[str]) -> int:
    """Run the named benchmarks (default: all) and summarise."""
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        return 2
    print(_machine(), flush=True)
    summary, failed = [], []
    for name in names or BENCHMARKS:
        lines, status = _run(name)
        summary += lines
        if status != 0:
            failed.append(name)
            summary.append(f"bench {name} error: exited with status {status}")
    print("== summary")
    print(_machine())
    for line in summary:
        print(line)
    missed = [line for line in summary if line.endswith(" fail")]
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
