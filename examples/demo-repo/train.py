"""A stand-in training script: reads the config and the data, writes model.zip and metrics.json.

model-pipeline passes MODEL_PIPELINE_CONFIG, MODEL_PIPELINE_DATA and MODEL_PIPELINE_OUTPUT_DIR.
"""
import hashlib
import json
import os
import zipfile

config_path = os.environ.get("MODEL_PIPELINE_CONFIG", "search-config.toml")
data_path = os.environ.get("MODEL_PIPELINE_DATA", "")
out_dir = os.environ.get("MODEL_PIPELINE_OUTPUT_DIR", ".")

with open(config_path, "rb") as f:
    config = f.read()
data = b""
if data_path and os.path.exists(data_path):
    with zipfile.ZipFile(data_path) as z:
        data = b"".join(z.read(n) for n in sorted(z.namelist()))

weights = hashlib.sha256(config + data).hexdigest()
os.makedirs(out_dir, exist_ok=True)
with zipfile.ZipFile(os.path.join(out_dir, "model.zip"), "w") as z:
    z.writestr("weights.txt", weights + "\n")
    z.writestr("config.toml", config)
with open(os.path.join(out_dir, "metrics.json"), "w") as f:
    json.dump({"top1": 81.5, "top5": 95.2, "loss": 0.42, "examples": len(data)}, f)
print(f"trained on {len(data)} bytes of data: model.zip written to {out_dir}")
