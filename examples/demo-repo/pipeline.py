"""The steps of pipeline-config.toml: prepare (data zip -> csv), train (csv -> model.zip), validate (JUnit).

model-pipeline runs each in the repository copy on the training host, with MODEL_PIPELINE_STEP set.
"""
import hashlib
import json
import os
import sys
import zipfile


def prepare():
    rows = []
    with zipfile.ZipFile("raw_source_data.zip") as z:
        for name in sorted(z.namelist()):
            rows.extend(z.read(name).decode().splitlines())
    os.makedirs("work", exist_ok=True)
    with open("work/data.csv", "w") as f:
        f.write("\n".join(r.strip().lower() for r in rows if r.strip()) + "\n")
    print(f"prepared {len(rows)} rows")


def train():
    with open("work/data.csv", "rb") as f:
        data = f.read()
    with open(os.environ.get("MODEL_PIPELINE_CONFIG", "pipeline-config.toml"), "rb") as f:
        config = f.read()
    os.makedirs("out", exist_ok=True)
    with zipfile.ZipFile("out/model.zip", "w") as z:
        z.writestr("weights.txt", hashlib.sha256(config + data).hexdigest() + "\n")
    with open("out/metrics.json", "w") as f:
        json.dump({"top1": 81.5, "rows": data.count(b"\n")}, f)
    print(f"trained on {len(data)} bytes")


def validate():
    with zipfile.ZipFile("out/model.zip") as z:
        weights = z.read("weights.txt").decode().strip()
    ok = len(weights) == 64
    os.makedirs("reports", exist_ok=True)
    failure = "" if ok else '<failure message="weights are not a sha256"/>'
    with open("reports/validate.xml", "w") as f:
        f.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<testsuite name="validate" tests="1" failures="{0 if ok else 1}" errors="0">'
            f'<testcase name="weights" classname="validate">{failure}</testcase></testsuite>\n'
        )
    print("validation " + ("passed" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


{"prepare": prepare, "train": train, "validate": validate}[sys.argv[1]]()
