#!/usr/bin/env bash
# Gradescope image build: runs once. /autograder/source is this course repository
# (zip the repository root - reference/, checks/, grading/, milestones/, pyproject.toml -
# with grading/autograder/setup.sh and run_autograder copied to the zip's top level).
set -euo pipefail
apt-get update -qq && apt-get install -y -qq python3 python3-pip python3-venv bubblewrap > /dev/null  # bubblewrap: the namespace sandbox where the container allows it
python3 -m venv /opt/kata
/opt/kata/bin/pip install -q --upgrade pip
# CPU-only PyTorch first (the checks compare against it), then the course tool itself.
/opt/kata/bin/pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
/opt/kata/bin/pip install -q -e "/autograder/source[test]"
# Datasets for milestones, fetched once at build time (md5-verified; submissions run offline).
mkdir -p /autograder/data
/opt/kata/bin/python -m tinytorch.datasets --data-dir /autograder/data \
    || echo "warning: datasets not pre-fetched; milestones needing data will report an error"
chmod -R a+rX /autograder/data
# Collect each module's checks once on the reference (cached in /autograder/source/.kata).
/opt/kata/bin/python -c "
from grading import curriculum, runner
for m in curriculum.load().modules:
    if m.is_available():
        runner.expected_checks(m.key)
"
# Learner code must not be able to change the course's files. Gradescope runs as root, which
# ignores permission bits, so grading runs as an unprivileged user (run_autograder uses runuser).
id -u kata > /dev/null 2>&1 || useradd --create-home --shell /usr/sbin/nologin kata
chown -R root:root /autograder/source && chmod -R a-w,a+rX /autograder/source
mkdir -p /autograder/source/.kata && chown -R kata /autograder/source/.kata && chmod u+w /autograder/source/.kata
chown -R kata /home/kata
