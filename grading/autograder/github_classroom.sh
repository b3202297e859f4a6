#!/usr/bin/env bash
# GitHub Classroom "run command" autograding (classroom-resources/autograding-command-grader):
# prints the score and exits 0 only when every available module and milestone passes.
#   setup:   pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu && pip install -e ".[test]"
#   command: bash grading/autograder/github_classroom.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
kata grade --json .kata/grade.json "$@" || exit 2
python - <<'PY'
import json, sys
r = json.load(open(".kata/grade.json"))
print(f"score: {r['score']:g}/{r['max_score']:g}")
sys.exit(0 if r["score"] >= r["max_score"] else 1)
PY
