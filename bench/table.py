"""The comparison's one table: rows = measures, columns = engines, then
Baton/peer ratios (Baton's value divided by the peer's)."""

from __future__ import annotations

from common import (
    CPU_SERVER,
    CPU_WORKER,
    START_P50,
    W1_ASYNC_P50,
    W1_P50,
    W1_P90,
    W1_P99,
    W2_ASYNC_RATE,
    W2_CPU_SERVER,
    W2_CPU_WORKER,
    W2_RATE,
    W3_DRAIN,
    W3_ENQUEUE,
    Settings,
)

TITLES = {
    "baton": "Baton",
    "bare": "W1's bare shape",
    "dbos": "DBOS",
    "temporal-local": "Temporal (local act.)",
    "temporal": "Temporal (activities)",
}


def _rows(settings: Settings) -> list[tuple[str, str, str]]:
    """(key, label, format) in table order."""
    return [
        (W1_P50, "W1 start->result p50 (ms)", "{:.2f}"),
        (W1_P90, "W1 start->result p90 (ms)", "{:.2f}"),
        (W1_P99, "W1 start->result p99 (ms)", "{:.2f}"),
        (W1_ASYNC_P50, "W1 p50, Baton `async def` workflow (ms)", "{:.2f}"),
        (W2_RATE, f"W2 {settings.w2_workflows} wf x 3 steps (wf/s)", "{:.0f}"),
        (W2_ASYNC_RATE, "W2, Baton `async def` workflow (wf/s)", "{:.0f}"),
        (W3_ENQUEUE, f"W3 {settings.w3_tasks} tasks: enqueue (/s)", "{:.0f}"),
        (W3_DRAIN, f"W3 {settings.w3_tasks} tasks: drain (/s)", "{:.0f}"),
        (START_P50, "enqueue->start p50 (ms)", "{:.1f}"),
        (W2_CPU_SERVER, "W2 CPU ms/wf: server", "{:.2f}"),
        (W2_CPU_WORKER, "W2 CPU ms/wf: worker", "{:.2f}"),
        (CPU_SERVER, "CPU s, all workloads: server", "{:.1f}"),
        (CPU_WORKER, "CPU s, all workloads: worker", "{:.1f}"),
    ]


def _measures(result: dict[str, object]) -> dict[str, float]:
    measures = result.get("measures", {})
    assert isinstance(measures, dict)
    return {str(k): float(v) for k, v in measures.items()}


def render(settings: Settings, results: dict[str, dict[str, object]]) -> str:
    """A Markdown table of ``results`` (engine -> its results file), then notes."""
    engines = list(results)
    values = {engine: _measures(result) for engine, result in results.items()}
    peers = [e for e in engines if e != "baton"] if "baton" in engines else []
    header = ["measure", *(TITLES[e] for e in engines), *(f"Baton/{TITLES[p]}" for p in peers)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, label, fmt in _rows(settings):
        cells = [label]
        for engine in engines:
            value = values[engine].get(key)
            cells.append("—" if value is None else fmt.format(value))
        for peer in peers:
            ours, theirs = values["baton"].get(key), values[peer].get(key)
            cells.append("—" if ours is None or not theirs else f"{ours / theirs:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Ratios are Baton / peer: below 1 is better for ms rows, above 1 for rate rows.")
    for engine in engines:
        notes = results[engine].get("notes", [])
        assert isinstance(notes, list)
        for note in notes:
            lines.append(f"- {TITLES[engine]}: {note}")
    return "\n".join(lines)
