/**
 * The training job's entry: what the container runs (copy it into the training image as its ENTRYPOINT,
 * see docs/sagemaker.md) and what the local run of the contract executes. It unpacks the source archive
 * into <root>/code when the code is not there yet, then runs the training command there with
 * MODEL_PIPELINE_OUTPUT_DIR pointing at <root>/model, whose files become the model folder.
 */
export const ENTRY_SCRIPT = `#!/bin/sh
# model-pipeline SageMaker entry: unpack the source archive, run the training command.
set -eu
root="\${MODEL_PIPELINE_ML_ROOT:-/opt/ml}"
code="$root/code"
if [ ! -d "$code" ] || [ -z "$(ls -A "$code" 2>/dev/null)" ]; then
  mkdir -p "$code"
  aws s3 cp --only-show-errors "$MODEL_PIPELINE_SOURCE_URI" /tmp/model-pipeline-source.tar.gz
  tar -xzf /tmp/model-pipeline-source.tar.gz -C "$code"
fi
data_dir="$root/input/data/\${MODEL_PIPELINE_DATA_CHANNEL:-training}"
data=""
if [ -d "$data_dir" ]; then
  data="$(find "$data_dir" -type f | sort | head -n 1)"
fi
export MODEL_PIPELINE_DATA="$data"
export MODEL_PIPELINE_OUTPUT_DIR="$root/model"
mkdir -p "$MODEL_PIPELINE_OUTPUT_DIR"
cd "$code"
echo "model-pipeline entry: $MODEL_PIPELINE_TRAIN_COMMAND (on \${SM_CURRENT_HOST:-algo-1})"
status=0
sh -c "$MODEL_PIPELINE_TRAIN_COMMAND" || status=$?
if [ "$status" -ne 0 ]; then
  mkdir -p "$root/output"
  echo "training command exited with $status" > "$root/output/failure"
fi
exit "$status"
`;
