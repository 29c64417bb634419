"""scripts/fuzz, briefly: every libFuzzer target in Fuzz/ builds, runs from its committed seed
corpus and finds no crash (docs/fuzzing.md). The build from scratch takes many minutes; skip this
module with -m "not fuzz". Long runs are scripts/fuzz's job, not the suite's."""
import os
import re
import subprocess

import pytest

from conftest import REPO, Progress, kept_log_path, run_with_progress

FUZZ_SECONDS = 10  # per target: enough to replay the seed corpus and mutate it a little
# A target that ran its 10 s did tens of thousands of inputs (the slowest, http, runs thousands a
# second); fewer than this means it stopped early without a crash report.
MIN_RUNS = 1000
# The build from scratch (about the static release build's 25 minutes on a loaded 2-core machine)
# plus the runs: bounds a stuck one.
FUZZ_TIMEOUT = 3600
TARGETS = subprocess.run([os.path.join(REPO, "scripts", "fuzz"), "--list"], capture_output=True, text=True,
                         check=True).stdout.split()


@pytest.fixture(scope="module")
def fuzz_run(request, workdir):
    """Runs `scripts/fuzz 10` once: (exit status, {target: (runs, crashes)}, the output's tail)."""
    progress = Progress(request.config)
    log_path = kept_log_path(workdir, "fuzz.log")
    jobs = kept_log_path(workdir, "fuzz-runs")  # crashing inputs stay here
    env = dict(os.environ, PATH="/opt/swift/usr/bin:" + os.environ.get("PATH", "/usr/bin:/bin"), MLCRED_FUZZ_JOBS_DIR=jobs)
    progress.say(f"== scripts/fuzz {FUZZ_SECONDS}: builds Fuzz/ first (many minutes from scratch); log in {log_path}")
    status, tail = run_with_progress([os.path.join(REPO, "scripts", "fuzz"), str(FUZZ_SECONDS)], progress, log_path,
                                     FUZZ_TIMEOUT, env=env, every_line=True)
    results = {}
    with open(log_path) as log:
        for line in log:
            found = re.match(r"(\w+): (\d+) runs, (\d+) crashes", line)
            if found:
                results[found.group(1)] = (int(found.group(2)), int(found.group(3)))
    return status, results, tail


@pytest.mark.fuzz
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_runs_its_seed_corpus_and_mutations_without_a_crash(fuzz_run, target):
    status, results, tail = fuzz_run
    assert target in results, f"scripts/fuzz exited {status} without a line for {target}:\n" + "\n".join(tail)
    runs, crashes = results[target]
    assert crashes == 0, f"{target} crashed; the input and log are kept (see the end of the output):\n" + "\n".join(tail)
    assert runs >= MIN_RUNS, f"{target} ran only {runs} inputs in {FUZZ_SECONDS} s"
