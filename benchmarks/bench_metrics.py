"""``ax-agent metrics --crm-dir`` against one DuckDB SQL pipeline over the same three files.

    pip install -e '.[bench]'                        # DuckDB: for this benchmark only
    python -m benchmarks.bench_metrics               # 50,000 / 500,000 / 1,000,000
    python -m benchmarks.bench_metrics --scale 0.1   # 10 % of that, for a quick look
    python -m benchmarks.bench_metrics --folder DIR  # an existing CRM folder

Generates the portfolio as a plain-file CRM folder, then runs, side by side in one run:

- the real command, ``ax-agent metrics --crm-dir DIR --as-of …`` as a subprocess (wall
  time from start to exit, the JSON document on stdout);
- the SQL pipeline, also as a subprocess (``python -m benchmarks.bench_metrics --sql``):
  DuckDB reads the three CSV files and does every row-level step in SQL (validation and
  rejection, the four matching steps with domain normalisation, the latest answer per
  respondent in the window, tiers from titles, the per-account tallies, drivers, dropped
  rows); Python then turns the per-account tallies into figures with the contract's own
  per-figure functions (a few arithmetic operations per account).

It checks that both give the same document (floats within 1e-6 absolute or 1e-9
relative) and prints both times (wall, and CPU over all threads: steadier on a shared
machine) and the ratios; the last line is JSON. Target: the command takes at most 1.5
times the SQL pipeline (wall).

The SQL pipeline compares repeated response ids by their fields rather than by the
raw text of the record (DuckDB does not give the raw text); on files written by a CSV
writer, as here, that is the same.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.core.compute import Tally, account_metrics
from agent.core.contract import DEFAULT_FREE_MAIL, DEFAULT_TIER_PATTERNS, MetricsConfig
from agent.core.document import Unmatched
from agent.core.metrics import add_account_drivers, driver_metrics, portfolio_metrics
from agent.core.models import Account, Dropped, Rejected
from benchmarks.generate import AS_OF, generate, write_crm_folder

TARGET_RATIO = 1.5
_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?$"
)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="metrics --crm-dir against DuckDB SQL.")
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--contacts", type=int, default=500_000)
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply all three sizes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--folder", type=Path, help="use this CRM folder instead of generating")
    parser.add_argument("--sql", type=Path, help=argparse.SUPPRESS)  # the SQL side, as a child
    return parser.parse_args()


def _read(table: str, path: Path) -> str:
    return (
        f"CREATE TEMP TABLE {table} AS SELECT row_number() OVER () AS pos, * FROM read_csv("
        f"'{path}', all_varchar = true, header = true, quote = '\"', escape = '\"', "
        "sample_size = -1)"
    )


def _timestamp(column: str) -> str:
    """A contract timestamp as TIMESTAMPTZ (no zone is UTC), NULL when not one."""
    text = f"trim({column}, ' \t')"
    return (
        f"CASE WHEN regexp_full_match(coalesce({text}, ''), '{_TIMESTAMP}') "
        f"THEN TRY_CAST({text} AS TIMESTAMPTZ) END"
    )


def _tier_sql() -> str:
    cases = " ".join(
        f"WHEN regexp_matches(title, '(?i){p.pattern}') THEN '{p.tier}'"
        for p in DEFAULT_TIER_PATTERNS
    )
    return (
        "CASE WHEN lower(crm_tier) IN ('executive', 'management', 'frontline') "
        "THEN lower(crm_tier) WHEN title = '' THEN 'unknown' "
        f"{cases} ELSE 'frontline' END"
    )


def sql_document(folder: Path, as_of: datetime) -> dict[str, Any]:
    """The metrics document of ``folder``, its row-level work done by DuckDB."""
    import duckdb  # noqa: PLC0415  # a benchmark-only extra: imported where it is needed

    config = MetricsConfig()
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    db.execute(_read("acc_raw", folder / "accounts.csv"))
    db.execute(_read("con_raw", folder / "contacts.csv"))
    db.execute(_read("res_raw", folder / "responses.csv"))
    trim = "trim({}, ' \t')"
    db.execute(f"""
        CREATE TEMP TABLE acc_all AS
        SELECT pos, {trim.format("id")} AS id, {trim.format("name")} AS name,
               coalesce(domain, '') AS domain, coalesce({trim.format("revenue")}, '') AS rev,
               coalesce({trim.format("revenue_potential")}, '') AS pot, revenue AS rev_raw,
               revenue_potential AS pot_raw,
               row_number() OVER (PARTITION BY {trim.format("id")} ORDER BY pos) AS k
        FROM acc_raw""")
    db.execute(f"""
        CREATE TEMP TABLE acc_checked AS
        SELECT *, CASE
            WHEN coalesce(id, '') = '' THEN 'missing_id'
            WHEN k > 1 THEN 'duplicate_id'
            WHEN rev <> '' AND (NOT regexp_full_match(rev, '{_NUMBER}')
                 OR NOT isfinite(CAST(rev AS DOUBLE)) OR CAST(rev AS DOUBLE) < 0)
                 THEN 'invalid_revenue'
            WHEN pot <> '' AND (NOT regexp_full_match(pot, '{_NUMBER}')
                 OR NOT isfinite(CAST(pot AS DOUBLE)) OR CAST(pot AS DOUBLE) < 0)
                 THEN 'invalid_revenue_potential'
            END AS reason
        FROM acc_all""")
    db.execute("""
        CREATE TEMP TABLE acc AS
        SELECT pos, id, name, domain,
               CASE WHEN rev = '' THEN 0.0 ELSE CAST(rev AS DOUBLE) END AS revenue,
               CASE WHEN pot = '' THEN NULL ELSE CAST(pot AS DOUBLE) END AS potential
        FROM acc_checked WHERE reason IS NULL""")
    db.execute(f"""
        CREATE TEMP TABLE con_all AS
        SELECT pos, {trim.format("id")} AS id, {trim.format("account_id")} AS account_id,
               nullif({trim.format("email")}, '') AS email,
               coalesce({trim.format("title")}, '') AS title,
               nullif({trim.format("tier")}, '') AS crm_tier,
               row_number() OVER (PARTITION BY {trim.format("id")} ORDER BY pos) AS k
        FROM con_raw""")
    db.execute(f"""
        CREATE TEMP TABLE con AS
        SELECT row_number() OVER (ORDER BY c.pos) - 1 AS idx, c.pos, c.id, c.account_id,
               c.email, lower(c.email) AS norm, {_tier_sql()} AS tier
        FROM con_all c JOIN acc a ON a.id = c.account_id
        WHERE coalesce(c.id, '') <> '' AND c.k = 1""")
    db.execute("""
        CREATE TEMP TABLE con_by_email AS
        SELECT norm, arg_min(idx, pos) AS idx, arg_min(account_id, pos) AS account_id
        FROM con WHERE norm IS NOT NULL GROUP BY norm""")
    db.execute("""
        CREATE TEMP TABLE dom AS
        WITH parts AS (
            SELECT id, lower(trim(unnest(string_split(domain, ';')), ' \t')) AS d FROM acc),
        cleaned AS (
            SELECT DISTINCT id, regexp_replace(regexp_replace(regexp_replace(d,
                '^[a-z][a-z0-9+.-]*://', ''), '[/?#].*$', ''), '^www\\.', '') AS d
            FROM parts)
        SELECT d, count(*) AS n, min(id) AS id FROM cleaned WHERE d <> '' GROUP BY d""")
    cols = "response_id, email, score, submitted_at, driver, comment, account_hint, loop_closed_at"
    db.execute(f"""
        CREATE TEMP TABLE res_all AS
        SELECT pos, {trim.format("response_id")} AS rid, response_id AS rid_raw,
               score AS score_raw, submitted_at AS sub_raw,
               {trim.format("score")} AS score_text, {_timestamp("submitted_at")} AS submitted,
               md5(concat_ws(chr(31), {", ".join(f"coalesce({c}, '')" for c in cols.split(", "))}))
                 AS fp,
               nullif({trim.format("email")}, '') AS email,
               nullif({trim.format("driver")}, '') AS driver,
               nullif({trim.format("account_hint")}, '') AS hint,
               {_timestamp("loop_closed_at")} AS closed
        FROM res_raw""")
    as_text = as_of.isoformat()
    db.execute(f"""
        CREATE TEMP TABLE res_checked AS
        WITH firsts AS (
            SELECT *, row_number() OVER (PARTITION BY rid ORDER BY pos) AS k,
                   first_value(fp) OVER (PARTITION BY rid ORDER BY pos) AS first_fp
            FROM res_all)
        SELECT *, CASE
            WHEN coalesce(rid, '') = '' THEN 'missing_response_id'
            WHEN k > 1 AND fp = first_fp THEN 'repeat'
            WHEN k > 1 THEN 'duplicate_response_id'
            WHEN NOT regexp_full_match(coalesce(score_text, ''), '[0-9]+')
                 OR TRY_CAST(score_text AS INTEGER) > 10 THEN 'invalid_score'
            WHEN submitted IS NULL THEN 'invalid_submitted_at'
            WHEN submitted > TIMESTAMPTZ '{as_text}' THEN 'future_submitted_at'
            END AS reason
        FROM firsts""")
    free = ", ".join(f"'{d}'" for d in DEFAULT_FREE_MAIL)
    db.execute(f"""
        CREATE TEMP TABLE matched AS
        WITH ok AS (
            SELECT pos, rid, email, lower(coalesce(email, '')) AS norm,
                   CAST(score_text AS INTEGER) AS score, submitted, driver, hint, closed
            FROM res_checked WHERE reason IS NULL),
        steps AS (
            SELECT ok.*, c.idx AS cidx, c.account_id AS c_acc, h.id AS h_acc,
                   contains(ok.norm, '@') AS has_at,
                   string_split(ok.norm, '@')[-1] AS domain
            FROM ok
            LEFT JOIN con_by_email c ON c.norm = ok.norm AND ok.norm <> ''
            LEFT JOIN acc h ON h.id = ok.hint)
        SELECT s.*,
            CASE WHEN s.c_acc IS NOT NULL THEN s.c_acc
                 WHEN s.h_acc IS NOT NULL THEN s.h_acc
                 WHEN s.has_at AND s.domain NOT IN ({free}) AND d.n = 1 THEN d.id END AS account,
            CASE WHEN NOT s.has_at THEN 'no_match'
                 WHEN s.domain IN ({free}) THEN 'free_mail_domain'
                 WHEN d.n > 1 THEN 'ambiguous_domain' ELSE 'no_match' END AS why
        FROM steps s LEFT JOIN dom d ON d.d = s.domain AND s.has_at""")
    db.execute(f"""
        CREATE TEMP TABLE latest AS
        WITH inwin AS (
            SELECT m.*, CASE WHEN m.c_acc IS NOT NULL THEN 'c' || m.cidx
                             WHEN m.norm <> '' THEN 'e' || m.norm ELSE 'r' || m.rid END AS who
            FROM matched m
            WHERE m.account IS NOT NULL
              AND m.submitted BETWEEN TIMESTAMPTZ '{as_text}' - INTERVAL {config.window_days} DAY
                                  AND TIMESTAMPTZ '{as_text}'),
        ranked AS (
            SELECT *, row_number() OVER (PARTITION BY who ORDER BY submitted DESC, rid DESC) AS n
            FROM inwin)
        SELECT r.*, CASE WHEN r.c_acc IS NOT NULL THEN c.tier END AS tier,
               CASE WHEN r.score >= 9 THEN 0 WHEN r.score >= 7 THEN 1 ELSE 2 END AS cat
        FROM ranked r LEFT JOIN con c ON c.idx = r.cidx WHERE r.n = 1""")
    sla = f"INTERVAL {int(config.loop_sla_hours * 3600)} SECOND"
    per_account = db.execute(f"""
        SELECT account, count(*) FILTER (cat = 0), count(*) FILTER (cat = 1),
               count(*) FILTER (cat = 2), count(cidx), max(submitted),
               count(*) FILTER (cat = 2 AND closed IS NULL),
               count(*) FILTER (cat = 2 AND closed IS NULL
                                AND TIMESTAMPTZ '{as_text}' - submitted > {sla}),
               count(*) FILTER (cat = 2 AND closed IS NOT NULL AND closed - submitted <= {sla}),
               bool_or(cat = 2 AND tier = 'executive')
        FROM latest GROUP BY account""").fetchall()
    tallies: dict[str, Tally] = {}
    for row in per_account:
        tally = tallies[row[0]] = Tally()
        tally.counts = [row[1], row[2], row[3]]
        tally.responded_contacts, tally.last = row[4], row[5]
        tally.open, tally.overdue, tally.closed_in_sla = row[6], row[7], row[8]
        tally.executive_detractor = bool(row[9])
    for account, tier, cat, n in db.execute(
        "SELECT account, tier, cat, count(*) FROM latest WHERE tier IS NOT NULL "
        "AND tier <> 'unknown' GROUP BY ALL"
    ).fetchall():
        tallies[account].tiers.setdefault(tier, [0, 0, 0])[cat] = n
    for account, driver, cat, n in db.execute(
        "SELECT account, driver, cat, count(*) FROM latest GROUP BY ALL"
    ).fetchall():
        tallies[account].drivers.setdefault(driver, [0, 0, 0])[cat] = n
    with_email = dict(
        db.execute(
            "SELECT a.id, count(c.email) FROM acc a LEFT JOIN con c ON c.account_id = a.id "
            "GROUP BY a.id"
        ).fetchall()
    )
    accounts = [
        Account(id=i, name=n or "", revenue=r, revenue_potential=p)
        for i, n, r, p in db.execute(
            "SELECT id, name, revenue, potential FROM acc ORDER BY revenue DESC, id"
        ).fetchall()
    ]
    empty = Tally()
    figures = [
        account_metrics(a, tallies.get(a.id, empty), with_email[a.id], as_of, config)
        for a in accounts
    ]
    drivers: dict[str | None, list[float]] = {}
    for account in accounts:
        tally = tallies.get(account.id)
        if tally is not None:
            add_account_drivers(drivers, tally.drivers, account.revenue, sum(tally.counts))
    portfolio = portfolio_metrics(
        figures,
        responded_contacts=sum(t.responded_contacts for t in tallies.values()),
        detractors_closed=sum(t.closed_in_sla for t in tallies.values()),
    )
    unmatched = [
        Unmatched(rid, email, why)
        for rid, email, why in db.execute(
            "SELECT rid, email, why FROM matched WHERE account IS NULL "
            "ORDER BY rid, coalesce(email, '')"
        ).fetchall()
    ]
    rejected = [
        Rejected(source, pos, reason, (value or "")[:80])
        for source, pos, reason, value in db.execute("""
            SELECT 'accounts.csv', pos, reason, CASE reason
                WHEN 'invalid_revenue' THEN rev_raw WHEN 'invalid_revenue_potential' THEN pot_raw
                ELSE id END
            FROM acc_checked WHERE reason IS NOT NULL
            UNION ALL
            SELECT 'contacts.csv', pos, CASE WHEN coalesce(id, '') = '' THEN 'missing_id'
                ELSE 'duplicate_id' END, id
            FROM con_all WHERE coalesce(id, '') = '' OR k > 1
            UNION ALL
            SELECT 'responses.csv', pos, reason, CASE
                WHEN reason IN ('missing_response_id', 'duplicate_response_id') THEN rid_raw
                WHEN reason = 'invalid_score' THEN score_raw ELSE sub_raw END
            FROM res_checked WHERE reason IS NOT NULL AND reason <> 'repeat'
            ORDER BY 1, 2""").fetchall()
    ]
    dropped = [
        Dropped(source, pos, reason)
        for source, pos, reason in db.execute("""
            SELECT 'accounts.csv', pos, reason FROM acc_checked WHERE reason IS NOT NULL
            UNION ALL
            SELECT 'contacts.csv', c.pos, CASE
                WHEN coalesce(c.id, '') = '' THEN 'missing_id'
                WHEN c.k > 1 THEN 'duplicate_id'
                WHEN a.id IS NULL AND r.id IS NOT NULL THEN 'account_rejected'
                WHEN a.id IS NULL THEN 'unknown_account'
                ELSE 'missing_email' END
            FROM con_all c LEFT JOIN acc a ON a.id = c.account_id
            LEFT JOIN (SELECT DISTINCT id FROM acc_checked WHERE reason IN
                       ('invalid_revenue', 'invalid_revenue_potential')) r
                   ON r.id = c.account_id
            WHERE coalesce(c.id, '') = '' OR c.k > 1 OR a.id IS NULL OR c.email IS NULL
            ORDER BY 1, 2""").fetchall()
    ]
    document = {
        "as_of": as_of.isoformat(),
        "portfolio": _plain(portfolio),
        "accounts": [_plain(f) for f in figures],
        "drivers": [_plain(d) for d in driver_metrics(drivers)],
        "unmatched": [_plain(u) for u in unmatched],
        "rejected": [_plain(r) for r in rejected],
        "dropped": [_plain(d) for d in dropped],
    }
    return json.loads(json.dumps(document, default=str))


def _plain(value: Any) -> dict[str, Any]:
    out = {}
    for f in fields(value):
        item = getattr(value, f.name)
        out[f.name] = item.isoformat() if isinstance(item, datetime) else item
    return out


def _same(a: Any, b: Any, path: str = "$") -> str | None:  # noqa: PLR0911
    """Where two documents differ (floats within 1e-6 abs / 1e-9 rel, instants as instants)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{path}: keys {sorted(a.keys() ^ b.keys())}"
        return next((d for k in a if (d := _same(a[k], b[k], f"{path}.{k}"))), None)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items vs {len(b)}"
        pairs = enumerate(zip(a, b, strict=True))
        return next((d for i, (x, y) in pairs if (d := _same(x, y, f"{path}[{i}]"))), None)
    differ = f"{path}: {a!r} vs {b!r}"
    if isinstance(a, float) or isinstance(b, float):
        ok = isinstance(a, int | float) and isinstance(b, int | float)
        return None if ok and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6) else differ
    if isinstance(a, str) and isinstance(b, str) and len(a) >= 19 and a[10:11] == "T":
        try:
            return None if datetime.fromisoformat(a) == datetime.fromisoformat(b) else differ
        except ValueError:
            pass
    return None if a == b else differ


def _timed(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system, all threads) and stdout of a child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} … failed:\n{done.stderr[-2000:]}")
    return seconds, cpu, done.stdout


def main() -> None:
    args = _args()
    if args.sql is not None:  # the SQL side, run as its own process like the command
        print(json.dumps(sql_document(args.sql, AS_OF)))
        return
    with tempfile.TemporaryDirectory(prefix="ax-bench-metrics-") as tmp:
        folder = args.folder
        if folder is None:
            sizes = [round(n * args.scale) for n in (args.accounts, args.contacts, args.responses)]
            folder = write_crm_folder(Path(tmp) / "crm", generate(*sizes, seed=args.seed))
            print(f"generated {sizes[0]:,} accounts, {sizes[1]:,} contacts, {sizes[2]:,} responses")
        ax = Path(sys.executable).with_name("ax-agent")
        agent_seconds, agent_cpu, agent_out = _timed(
            [str(ax), "metrics", "--crm-dir", str(folder), "--as-of", AS_OF.isoformat()]
        )
        sql_seconds, sql_cpu, sql_out = _timed(
            [sys.executable, "-m", "benchmarks.bench_metrics", "--sql", str(folder)]
        )
    difference = _same(json.loads(agent_out), json.loads(sql_out))
    ratio = agent_seconds / sql_seconds
    print(f"ax-agent metrics --crm-dir: {agent_seconds:.2f} s wall, {agent_cpu:.2f} s CPU")
    print(f"DuckDB SQL pipeline:        {sql_seconds:.2f} s wall, {sql_cpu:.2f} s CPU")
    print(f"ratio: {ratio:.2f} wall (target <= {TARGET_RATIO}), {agent_cpu / sql_cpu:.2f} CPU")
    print("same document" if difference is None else f"DOCUMENTS DIFFER at {difference}")
    print(
        json.dumps(
            {
                "agent_seconds": round(agent_seconds, 3),
                "sql_seconds": round(sql_seconds, 3),
                "agent_cpu_seconds": round(agent_cpu, 3),
                "sql_cpu_seconds": round(sql_cpu, 3),
                "ratio": round(ratio, 3),
                "cpu_ratio": round(agent_cpu / sql_cpu, 3),
                "target_ratio": TARGET_RATIO,
                "same_document": difference is None,
            }
        )
    )
    if difference is not None:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
