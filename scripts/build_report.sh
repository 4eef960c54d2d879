#!/usr/bin/env bash
# Build the Allure HTML trust report from pytest's Allure results.
#
#   pytest --model gptq4 --alluredir allure-results      # the run writes results
#   scripts/build_report.sh [RESULTS_DIR] [REPORT_DIR]   # defaults: allure-results, allure-report
#
# Uses the Allure 3 command-line tool from npm (Node only, no Java), pinned in package.json and
# installed under node_modules/ by scripts/setup.sh; installs it here if that has not run.
# The report is a single self-contained allure-report/index.html (see allurerc.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS=${1:-allure-results}
REPORT=${2:-allure-report}
if [ ! -d "$RESULTS" ] || [ -z "$(ls -A "$RESULTS" 2>/dev/null)" ]; then
  echo "build_report: no Allure results in '$RESULTS'; run pytest with --alluredir $RESULTS first" >&2
  exit 2
fi
if [ ! -x node_modules/.bin/allure ]; then
  command -v npm >/dev/null || { echo "build_report: npm not found; install Node.js (Debian: apt-get install nodejs npm)" >&2; exit 2; }
  npm ci --no-audit --no-fund --loglevel=error
fi
rm -rf "$REPORT"
node_modules/.bin/allure generate --config allurerc.mjs --output "$REPORT" "$RESULTS"
test -s "$REPORT/index.html" || { echo "build_report: allure wrote no $REPORT/index.html" >&2; exit 1; }
echo "trustgate: Allure report at $REPORT/index.html"
