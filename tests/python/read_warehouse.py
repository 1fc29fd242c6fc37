"""Independent readers of a Vigil warehouse: pyarrow and DuckDB count what Vigil committed.

Usage: read_warehouse.py WAREHOUSE_DIR
Prints one JSON object: per reader, the committed scans and the rows of findings and images in them, the
latest findings (the newest committed scan of each image), computed here without Vigil's views, and how many
images rows store finding counts that the findings rows do not bear out.
"""

import json
import os
import sys

import duckdb
import pyarrow.dataset as ds


def committed_scans(root):
    scans = ds.dataset(os.path.join(root, "scans"), format="parquet", partitioning="hive")
    return sorted(scans.to_table(columns=["scan_id"]).column("scan_id").to_pylist())


def pyarrow_counts(root, committed):
    out = {"scans": len(committed)}
    for table in ("findings", "images"):
        data = ds.dataset(os.path.join(root, table), format="parquet", partitioning="hive")
        rows = data.to_table(filter=ds.field("scan_id").isin(committed), columns=["image_digest"])
        out[table] = rows.num_rows
    return out


def duckdb_counts(root, committed):
    con = duckdb.connect()
    ids = ", ".join("'%s'" % s for s in committed) or "NULL"
    out = {"scans": con.execute(
        "SELECT count(*) FROM read_parquet(?, hive_partitioning = true)",
        [os.path.join(root, "scans", "**", "*.parquet")]).fetchone()[0]}
    for table in ("findings", "images"):
        path = os.path.join(root, table, "**", "*.parquet")
        out[table] = con.execute(
            f"SELECT count(*) FROM read_parquet(?, hive_partitioning = true) WHERE scan_id IN ({ids})",
            [path]).fetchone()[0]
    # Latest findings: each image's newest committed scan (no image disappears in the tests' warehouses).
    out["latest_findings"] = con.execute(f"""
        WITH images AS (
            SELECT * FROM read_parquet(?, hive_partitioning = true) WHERE scan_id IN ({ids})),
        newest AS (
            SELECT subscription, registry, repository, image_digest, platform, max(scan_id) AS scan_id
            FROM images GROUP BY ALL)
        SELECT count(*) FROM read_parquet(?, hive_partitioning = true) f
        JOIN newest USING (subscription, registry, repository, image_digest, platform, scan_id)
        """, [os.path.join(root, "images", "**", "*.parquet"),
              os.path.join(root, "findings", "**", "*.parquet")]).fetchone()[0]
    # Images whose stored counts disagree with the findings rows of the scan that evaluated them.
    by_rank = ", ".join(f"count(*) FILTER (WHERE severity_rank = {rank}) AS r{rank}" for rank in range(5))
    stored = ["critical_count", "high_count", "medium_count", "low_count", "unknown_count"]
    differ = " OR ".join(f"i.{column} <> coalesce(f.r{4 - n}, 0)" for n, column in enumerate(stored))
    out["images_with_wrong_counts"] = con.execute(f"""
        WITH images AS (
            SELECT * FROM read_parquet(?, hive_partitioning = true) WHERE scan_id IN ({ids})),
        counted AS (
            SELECT subscription, registry, repository, image_digest, platform, scan_id, count(*) AS n,
                   count(*) FILTER (WHERE patchable) AS patchable, {by_rank}
            FROM read_parquet(?, hive_partitioning = true) GROUP BY ALL)
        SELECT count(*) FROM images i LEFT JOIN counted f
          ON f.subscription = i.subscription AND f.registry = i.registry AND f.repository = i.repository
         AND f.image_digest = i.image_digest AND f.platform = i.platform AND f.scan_id = i.findings_scan_id
        WHERE i.finding_count <> coalesce(f.n, 0) OR i.patchable_count <> coalesce(f.patchable, 0) OR {differ}
        """, [os.path.join(root, "images", "**", "*.parquet"),
              os.path.join(root, "findings", "**", "*.parquet")]).fetchone()[0]
    return out


def main():
    root = sys.argv[1]
    committed = committed_scans(root)
    print(json.dumps({"pyarrow": pyarrow_counts(root, committed), "duckdb": duckdb_counts(root, committed)}))


if __name__ == "__main__":
    main()
