"""The DuckDB side of benches/warehouse_vs_duckdb.rs: the same views over the same Parquet files, the same
report SQL, timed from connecting to the last row (median of the runs after one warm-up).

Usage: warehouse_vs_duckdb.py JOBS_JSON   (written by the Rust bench); prints {report: {ms, rows}}.
"""

import json
import os
import statistics
import sys
import time

import duckdb


def session(spec):
    con = duckdb.connect()
    root = spec["root"]
    ids = ", ".join("'%s'" % s for s in spec["committed"]) or "NULL"
    hive = "hive_partitioning = true, hive_types = {'subscription': VARCHAR, 'registry': VARCHAR, 'scan_id': VARCHAR}"
    for table in ("findings", "images", "crawls"):
        path = os.path.join(root, table, "*", "*", "*", "*.parquet")
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}', {hive}) WHERE scan_id IN ({ids})")
    path = os.path.join(root, "scans", "*", "*.parquet")
    con.execute(f"CREATE VIEW scans AS SELECT * FROM read_parquet('{path}', hive_partitioning = true, "
                f"hive_types = {{'scan_id': VARCHAR}}) WHERE scan_id IN ({ids})")
    path = os.path.join(root, "disable_rules", "*.parquet")
    con.execute(f"CREATE VIEW disable_rules AS SELECT * FROM read_parquet('{path}')")
    # Vigil registers these two over the files of the scans since each registry's newest full crawl; over
    # every committed file they give the same rows to the views.
    con.execute("CREATE VIEW _current_images AS SELECT * FROM images")
    con.execute("CREATE VIEW _current_crawls AS SELECT * FROM crawls")
    for statement in spec["views"]:
        con.execute(statement)
    return con


def main():
    spec = json.load(open(sys.argv[1]))
    out = {}
    for job in spec["reports"]:
        times = []
        rows = 0
        for run in range(spec["runs"] + 1):
            start = time.perf_counter()
            con = session(spec)
            rows = len(con.execute(job["sql"]).fetchall())
            con.close()
            if run > 0:
                times.append(time.perf_counter() - start)
        out[job["name"]] = {"ms": statistics.median(times) * 1000.0, "rows": rows}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
