#!/usr/bin/env python3
"""A user's own pipeline stage: checks the ingested dataset before training.

Reads the ingest stage's counts.json, fails (exit 1) when a class has fewer
than --min-per-class images, and writes dataset metrics (images, classes,
imbalance ratio) to --out, which the pipeline records as metrics.
"""
import argparse
import json
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--counts", required=True)
parser.add_argument("--min-per-class", type=int, default=1)
parser.add_argument("--out", required=True)
args = parser.parse_args()

with open(args.counts) as f:
    counts = json.load(f)
classes = counts["classes"]
small = {name: n for name, n in classes.items() if n < args.min_per_class}
sizes = sorted(classes.values())
metrics = {
    "images": counts["accepted"],
    "classes": len(classes),
    "rejected": sum(counts["rejected"].values()),
    "imbalance_ratio": round(sizes[-1] / max(1, sizes[0]), 3),
}
print(f"{metrics['images']} images in {metrics['classes']} classes; imbalance ratio {metrics['imbalance_ratio']}")
if small:
    for name, n in sorted(small.items()):
        print(f"class {name!r} has {n} images, fewer than --min-per-class {args.min_per_class}", file=sys.stderr)
    sys.exit(1)
os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
with open(args.out, "w") as f:
    json.dump(metrics, f, indent=2)
