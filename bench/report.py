"""Render bench/results/*.json into the results section of bench/README.md.

Usage: python -m bench.report   (run.py calls it after each run)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

START, END = "<!-- results:start -->", "<!-- results:end -->"
LABELS = {
    "floor": "1. floor (same requests, same concurrency, bodies discarded)",
    "practice": "2. today's practice (sequential, limit 1000, json.loads)",
    "full": "3. full sync (`illuminate-sync run`, new DuckDB file)",
    "full_postgres": "3b. full sync into PostgreSQL (`--destination postgres`, new database, COPY)",
    "nightly": "4. nightly sync (rerun after a small change, +1 day)",
    "nightly_postgres": "4b. nightly sync into PostgreSQL (the same change, the same database)",
}
LOADING_ALONE = {
    "loading_alone": "Loading alone",
    "loading_alone_postgres": "Loading alone into PostgreSQL (dlt's `csv`, COPY, as the sync loads)",
    "loading_alone_postgres_insert_values": "Loading alone into PostgreSQL with dlt's default `insert_values`",
}


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "met" if value else "**missed**"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def render_result(result: dict[str, Any]) -> str:
    p, m, s = result["params"], result["machine"], result["scenarios"]
    lines = [
        f"### {result['name']}: {p['students']:,} students, {p['latency_s'] * 1000:g} ms latency, concurrency"
        f" {p['concurrency']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, {m['os']}. Seed"
        f" {p['seed']}, today {p['today']}. Run {result['started']}. Simulator start-up"
        f" {result['simulator']['startup_s']} s, {result['simulator']['rss_after_start_mb']:,.0f} MB."
        + (
            f" Code: commit {result['source']['commit']}, tree {result['source']['tree_sha1']}, uncommitted:"
            f" {', '.join(result['source']['uncommitted']) or 'none'}."
            if result.get("source")
            else ""
        ),
        "",
    ]
    server = any("postgres_server_cpu_s" in x for x in s.values())
    lines += [
        "| scenario | wall s | requests | rows | rows/s | peak RSS MB | CPU s (process) | simulator CPU s |"
        + (" PostgreSQL server CPU s |" if server else "")
        + " other processes CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if server else "") + "---:|",
    ]
    for key in LABELS:
        if key in s:
            x = s[key]
            lines.append(
                f"| {LABELS[key]} | {_fmt(x['wall_s'])} | {_fmt(x['requests'])} | {_fmt(x['rows'])} |"
                f" {_fmt(x['rows_per_s'])} | {_fmt(x['peak_rss_mb'], 0)} | {_fmt(x['cpu_s'])} |"
                f" {_fmt(x['simulator_cpu_s'])} |"
                + (f" {_fmt(x.get('postgres_server_cpu_s'))} |" if server else "")
                + f" {_fmt(max(0.0, x.get('other_processes_cpu_s') or 0.0))} |"
            )
    if result.get("models"):
        lines += ["", f"SQL models: {result['models']}."]
    postgres = result.get("postgres")
    if postgres:
        settings = ", ".join(f"{name} {value}" for name, value in postgres["key_settings"].items())
        lines += [
            "",
            f"PostgreSQL {postgres['version']}, a throwaway cluster on the same machine with the server's default"
            f" settings (only address, port and socket directory set): {settings}.",
        ]
    r = result["ratios"]
    if "full" in s:
        ideal = s["full"]["requests"] * p["latency_s"] / p["concurrency"]
        lines += [
            "",
            f"Ideal network floor (full sync's requests x latency / concurrency, an infinitely fast server):"
            f" {ideal:,.1f} s; full sync / ideal floor {s['full']['wall_s'] / ideal:,.1f}.",
        ]
        full = s["full"]
        if full.get("peak_rss_while_downloading_mb") is not None:
            lines += [
                "",
                f"Full sync memory: peak {full['peak_rss_while_downloading_mb']:,.0f} MB while downloading (extract),"
                f" {full['peak_rss_after_last_request_mb']:,.0f} MB after the last request (normalize, load, summary,"
                f" models; {full.get('seconds_after_last_request')} s).",
            ]
    lines += [
        "",
        f"Ratios: full / floor **{_fmt(r['full_over_floor_wall'], 2)}** (target <= 1.25); today's practice / full"
        f" **{_fmt(r['practice_over_full_wall'], 2)}** (target >= 6); nightly / full requests"
        f" **{_fmt(r['nightly_over_full_requests'], 3)}** (target <= 0.05).",
    ]
    for key, title in LOADING_ALONE.items():
        if result.get(key):
            lines += ["", loading_line(title, result[key], key == "loading_alone")]
    if "postgres_full_over_floor_wall" in r or "postgres_loading_alone_over_duckdb" in r:
        lines += ["", postgres_ratios_line(r)]
    baseline = result.get("baseline")
    if baseline and r.get("duckdb_full_over_baseline_wall") is not None:
        lines += [
            "",
            f"DuckDB full sync against `{baseline['file']}` (code {baseline['commit']}, {baseline['started']}):"
            f" {s['full']['wall_s']:,.1f} s against {baseline['full_wall_s']:,.1f} s"
            f" (**{_fmt(r['duckdb_full_over_baseline_wall'], 2)}**), without the models' build"
            f" **{_fmt(r.get('duckdb_full_over_baseline_without_models'), 2)}** (target <= 1); other processes"
            f" {_fmt(baseline.get('full_other_processes_cpu_s'))} CPU s during the baseline's full sync,"
            f" {_fmt(s['full'].get('other_processes_cpu_s'))} during this one; full / floor"
            f" {_fmt(baseline.get('full_over_floor_wall'), 2)} then, {_fmt(r['full_over_floor_wall'], 2)} now.",
        ]
        if r.get("duckdb_nightly_over_baseline_wall") is not None:
            lines[-1] += (
                f" DuckDB nightly: {s['nightly']['wall_s']:,.1f} s against {baseline['nightly_wall_s']:,.1f} s"
                f" (**{_fmt(r['duckdb_nightly_over_baseline_wall'], 2)}**), without the models' build"
                f" **{_fmt(r.get('duckdb_nightly_over_baseline_without_models'), 2)}** (target <= 1)."
            )
    t = result["targets"]
    lines += ["", "Targets: " + "; ".join(f"{name} {_fmt(value)}" for name, value in t.items()) + "."]
    profile = result.get("profile")
    if profile:
        for label in ("sync", "simulator"):
            if label in profile:
                data = profile[label]
                busy = [c for c in data["categories"] if not c["category"].startswith("waiting")]
                top = ", ".join(f"{c['category']} {c['cpu_s']} s ({c['share'] * 100:.0f} %)" for c in busy[:8])
                gil = data.get("gil_busy_share_of_wall")
                held = f"; GIL held {gil * 100:.0f} % of the {profile['wall_s']} s wall" if gil is not None else ""
                lines += [
                    "",
                    f"Profile of the {label} process (py-spy --gil: Python CPU with the GIL held{held}): {top}.",
                ]
    return "\n".join(lines)


def loading_line(title: str, loading: dict[str, Any], with_target: bool) -> str:
    rps, secs = loading["rows_per_s"], loading["seconds"]
    step = f"; load step {_fmt(rps['load'], 0)} rows/s" if rps.get("load") is not None else ""
    return (
        f"{title} ({loading['rows']:,} rows of {', '.join(loading['rows_by_table'])}, already downloaded):"
        f" **{_fmt(rps['loading_alone'], 0)} rows/s** end to end"
        + (" (target >= 100,000)" if with_target else "")
        + step
        + f" — parse {secs['parse']} s, convert {secs['convert']} s"
        + (
            f" (CPU; {secs['parse_convert_wall']} s of wall on one thread per core)"
            if "parse_convert_wall" in secs
            else ""
        )
        + f", dedupe {secs['dedupe']} s, dlt extract"
        f" {secs['extract']} s, normalize {secs['normalize']} s, load {secs['load']} s"
        f" (convert alone {_fmt(rps['convert'], 0)} rows/s, dlt alone {_fmt(rps['dlt_extract_normalize_load'], 0)}"
        " rows/s)"
        + (
            f"; PostgreSQL server {_fmt(loading['postgres_server_cpu_s'])} CPU s"
            if loading.get("file_format") and loading.get("destination") == "postgres"
            else ""
        )
        + "."
    )


def postgres_ratios_line(r: dict[str, Any]) -> str:
    parts = []
    if "postgres_loading_alone_over_duckdb" in r:
        parts.append(
            f"loading alone PostgreSQL / DuckDB **{_fmt(r['postgres_loading_alone_over_duckdb'], 2)}** (target >= 0.8;"
            f" load step alone {_fmt(r.get('postgres_load_step_over_duckdb'), 2)})"
        )
    if "postgres_csv_over_insert_values_loading_alone" in r:
        parts.append(
            f"COPY / insert_values **{_fmt(r['postgres_csv_over_insert_values_loading_alone'], 2)}** end to end"
            f" (dlt's steps {_fmt(r.get('postgres_csv_over_insert_values_dlt'), 2)}, load step"
            f" {_fmt(r.get('postgres_csv_over_insert_values_load_step'), 2)})"
        )
    if "postgres_full_over_floor_wall" in r:
        parts.append(
            f"PostgreSQL full / floor **{_fmt(r['postgres_full_over_floor_wall'], 2)}** (target <= 1.3), PostgreSQL"
            f" full / DuckDB full {_fmt(r.get('postgres_full_over_duckdb_full_wall'), 2)}"
        )
    if "postgres_nightly_over_duckdb_nightly_wall" in r:
        parts.append(
            f"PostgreSQL nightly / DuckDB nightly {_fmt(r['postgres_nightly_over_duckdb_nightly_wall'], 2)} (nightly /"
            f" full requests {_fmt(r.get('postgres_nightly_over_full_requests'), 3)})"
        )
    return "PostgreSQL: " + "; ".join(parts) + "."


def render_destinations(results: list[dict[str, Any]]) -> str:
    """One line per run that also loaded PostgreSQL: loading alone and full sync, DuckDB beside PostgreSQL."""
    lines = [
        "### DuckDB and PostgreSQL",
        "",
        "| run | students | loading alone rows/s DuckDB | PostgreSQL COPY | PostgreSQL insert_values | PG / DuckDB |"
        " load step rows/s DuckDB | PG COPY | PG insert_values | floor s | full s DuckDB | full s PG |"
        " DuckDB full / floor | PG full / floor | nightly s DuckDB | nightly s PG | models |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        if "postgres" not in result["params"].get("destinations", []):
            continue
        s, r = result["scenarios"], result["ratios"]

        def rps(key: str, step: str, result: dict[str, Any] = result) -> str:
            return _fmt(result.get(key, {}).get("rows_per_s", {}).get(step), 0)

        def wall(key: str, s: dict[str, Any] = s) -> str:
            return _fmt(s.get(key, {}).get("wall_s"))

        lines.append(
            f"| {result['name']} | {result['params']['students']:,} | {rps('loading_alone', 'loading_alone')} |"
            f" {rps('loading_alone_postgres', 'loading_alone')} |"
            f" {rps('loading_alone_postgres_insert_values', 'loading_alone')} |"
            f" {_fmt(r.get('postgres_loading_alone_over_duckdb'), 2)} | {rps('loading_alone', 'load')} |"
            f" {rps('loading_alone_postgres', 'load')} | {rps('loading_alone_postgres_insert_values', 'load')} |"
            f" {wall('floor')} | {wall('full')} | {wall('full_postgres')} | {_fmt(r.get('full_over_floor_wall'), 2)} |"
            f" {_fmt(r.get('postgres_full_over_floor_wall'), 2)} | {wall('nightly')} | {wall('nightly_postgres')} |"
            f" {'skipped' if result['params'].get('skip_models') else 'built'} |"
        )
    return "\n".join(lines) if len(lines) > 4 else ""


def render_scaling(results: list[dict[str, Any]]) -> str:
    """One line per run: how the full sync's time, requests and memory grow with the district."""
    lines = [
        "### Scaling with district size",
        "",
        "| students | full sync s | requests | rows | full / floor | ideal floor s | full / ideal | peak RSS MB |"
        " peak while downloading MB | peak after last request MB | s after last request | nightly / full requests |"
        " other processes CPU s (full) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        p, full = result["params"], result["scenarios"].get("full")
        if not full:
            continue
        ideal = full["requests"] * p["latency_s"] / p["concurrency"]
        lines.append(
            f"| {p['students']:,} | {_fmt(full['wall_s'])} | {_fmt(full['requests'])} | {_fmt(full['rows'])} |"
            f" {_fmt(result['ratios']['full_over_floor_wall'], 2)} | {ideal:,.1f} | {full['wall_s'] / ideal:,.1f} |"
            f" {_fmt(full['peak_rss_mb'], 0)} | {_fmt(full.get('peak_rss_while_downloading_mb'), 0)} |"
            f" {_fmt(full.get('peak_rss_after_last_request_mb'), 0)} | {_fmt(full.get('seconds_after_last_request'))} |"
            f" {_fmt(result['ratios']['nightly_over_full_requests'], 3)} | {_fmt(full.get('other_processes_cpu_s'))} |"
        )
    return "\n".join(lines)


def render_readme(results_dir: Path, readme: Path) -> None:
    files = sorted(results_dir.glob("*.json"), key=lambda f: json.loads(f.read_text())["params"]["students"])
    results = [json.loads(f.read_text()) for f in files]
    sections = [render_scaling(results), render_destinations(results), *(render_result(r) for r in results)]
    body = "\n\n".join(section for section in sections if section)
    section = f"{START}\n{body}\n{END}"
    text = readme.read_text() if readme.exists() else f"# Benchmark\n\n## Results\n\n{START}\n{END}\n"
    if START in text and END in text:
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(END)
        text = head + section + tail
    else:
        text += "\n" + section + "\n"
    readme.write_text(text)


def main() -> int:
    here = Path(__file__).resolve().parent
    render_readme(here / "results", here / "README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
