#!/usr/bin/env bash
# Runs one model-pipeline command for the orb. CircleCI passes every parameter as a PARAM_* variable;
# MP_COMMAND names the command and MP_OPTIONS (generated from the option table) lists its options, one
# "kind name default" line each: kind is flag, bool or secret (for a secret, "default" is the variable the
# CLI reads it from). A value equal to the default is not passed, so environment variables and the
# settings file still apply when a parameter is left alone.
set -euo pipefail

if [ -z "${MP_COMMAND:-}" ]; then
  echo "error: MP_COMMAND is not set: run this script through a model-pipeline orb command" >&2
  exit 2
fi

param_var() { # config-path -> PARAM_CONFIG_PATH
  local n="${1//-/_}"
  printf 'PARAM_%s' "${n^^}"
}

args=("$MP_COMMAND")
shown=("$MP_COMMAND")
while read -r kind name default; do
  [ -n "${kind:-}" ] || continue
  var="$(param_var "$name")"
  value="${!var-}"
  case "$kind" in
    flag)
      if [ -n "$value" ] && [ "$value" != "$default" ]; then
        args+=("--$name=$value")
        shown+=("--$name=$value")
      fi
      ;;
    bool)
      if [ -n "$value" ] && [ "$value" != "$default" ]; then
        case "$value" in
          true | 1) args+=("--$name") ;;
          false | 0) args+=("--no-$name") ;;
          *)
            echo "error: parameter ${name//-/_} must be true or false, got \"$value\"" >&2
            exit 2
            ;;
        esac
        shown+=("${args[-1]}")
      fi
      ;;
    secret)
      # the parameter holds the NAME of the variable with the secret (env_var_name), never the secret
      [ -n "$value" ] || continue
      if ! [[ "$value" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
        echo "error: parameter ${name//-/_} must name an environment variable, got \"$value\"" >&2
        exit 2
      fi
      secret="${!value-}"
      if [ -z "$secret" ]; then
        echo "note: \$$value (parameter ${name//-/_}) is empty or unset; --$name is not given" >&2
        continue
      fi
      if [ "$default" = "-" ]; then
        args+=("--$name" "$secret")
        shown+=("--$name" "***")
      elif [ "$value" != "$default" ]; then
        export "$default=$secret"
      fi
      ;;
    *)
      echo "error: bad MP_OPTIONS line \"$kind $name $default\" (the orb is broken: regenerate it)" >&2
      exit 2
      ;;
  esac
done < <(printf '%s\n' "${MP_OPTIONS:-}")

cli_version="${PARAM_CLI_VERSION:-}"
if [ -z "$cli_version" ]; then
  echo "error: parameter cli_version is empty: give a model-pipeline version, a release tarball (.tgz URL or path), or \"path\"" >&2
  exit 2
elif [ "$cli_version" = "path" ]; then
  if ! command -v model-pipeline > /dev/null; then
    echo "error: cli_version is \"path\" but model-pipeline is not on PATH" >&2
    exit 2
  fi
  cli=(model-pipeline)
elif [[ "$cli_version" == *.tgz ]]; then
  # a release tarball (URL or path), e.g. the model-pipeline-X.Y.Z.tgz attached to a GitHub release
  cli=(npx --yes --package "$cli_version" model-pipeline)
else
  cli=(npx --yes "model-pipeline@$cli_version")
fi

outputs_dir="${PARAM_OUTPUTS_DIR:-/tmp/model-pipeline/outputs}"
mkdir -p "$outputs_dir"
new_outputs="$(mktemp)"
trap 'rm -f "$new_outputs"' EXIT

# messages then name the orb's parameters (dry_run: false), not the CLI's flags
export MODEL_PIPELINE_DIALECT=orb
echo "+ ${cli[*]} ${shown[*]}"
# the summary (GitHub's step summary) goes beside the outputs; the command's store_artifacts step uploads it
"${cli[@]}" "${args[@]}" --output-file "$new_outputs" --summary-file "$outputs_dir/$MP_COMMAND.md"

# later jobs read the workspace copy; later steps of this job source $BASH_ENV, where `set -a` exports
# the variables so programs those steps start see them too (the CLI writes $BASH_ENV itself only when no
# orb runs it: MODEL_PIPELINE_DIALECT=orb tells it this script does)
cat "$new_outputs" >> "$outputs_dir/$MP_COMMAND.env"
if [ -n "${BASH_ENV:-}" ]; then
  {
    echo "set -a"
    cat "$new_outputs"
    echo "set +a"
  } >> "$BASH_ENV"
else
  echo "note: BASH_ENV is not set; outputs are only in $outputs_dir/$MP_COMMAND.env" >&2
fi
