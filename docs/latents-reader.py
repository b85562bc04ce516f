"""Read dcae latent shards with the standard library and numpy only.

Usage: python3 latents-reader.py DST   (the output folder of `dcae latents run`)

Checks every shard against manifest.jsonl (sha256, sample count) and prints the first latent.
"""
import hashlib
import io
import json
import os
import sys
import tarfile

import numpy as np

root = sys.argv[1]
with open(os.path.join(root, "manifest.jsonl")) as f:
    lines = [json.loads(line) for line in f]
dataset, shards = lines[0], lines[1:]
print(f"run {dataset['runId']}: {dataset['shards']} shards, {dataset['resolution']}px, "
      f"{dataset['dtype']}, scaling factor {dataset['scalingFactor']} (applied: {dataset['scaled']})")

total = 0
first = None
for shard in shards:
    path = os.path.join(root, shard["url"])
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == shard["sha256"], f"{path}: sha256 mismatch"
    samples = {}
    with tarfile.open(path) as tar:
        for member in tar:
            key, ext = member.name.split(".", 1)  # keys never contain dots
            data = tar.extractfile(member).read()
            sample = samples.setdefault(key, {})
            sample[ext] = np.load(io.BytesIO(data)) if ext == "npy" else json.loads(data)
    assert len(samples) == shard["nsamples"], f"{path}: {len(samples)} samples, manifest says {shard['nsamples']}"
    total += len(samples)
    if first is None and samples:
        first = next(iter(samples.items()))

print(f"{total} samples")
if first is not None:
    key, sample = first
    latent = sample["npy"]
    print(f"first: {key} {latent.shape} {latent.dtype} label={sample['json'].get('label')}")
