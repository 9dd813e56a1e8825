#!/usr/bin/env bash
# validate: the regression suite (tests/*.sh, each exits non-zero on failure) as JUnit in validate/junit.xml.
# shellcheck source=components/common.sh source-path=SCRIPTDIR/..
source components/common.sh
mkdir -p validate
cases=""
failures=0
count=0
for t in tests/*.sh; do
  count=$((count + 1))
  name="$(basename "$t" .sh)"
  if out="$(bash "$t" 2>&1)"; then
    cases="$cases<testcase name=\"$name\" classname=\"regression\"/>"
  else
    failures=$((failures + 1))
    cases="$cases<testcase name=\"$name\" classname=\"regression\"><failure message=\"$name failed\">$(printf '%s' "$out" | sed 's/&/\&amp;/g; s/</\&lt;/g')</failure></testcase>"
  fi
done
printf '<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="regression" tests="%s" failures="%s" errors="0">%s</testsuite>\n' \
  "$count" "$failures" "$cases" > validate/junit.xml
echo "regression suite: $count tests, $failures failed"
[ "$failures" = 0 ]
