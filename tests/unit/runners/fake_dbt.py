"""A stand-in for the dbt CLI: records how it was called and replays captured artifacts.

Usage: python fake_dbt.py <fixture case or "-"> <exit code> [sleep seconds] -- <dbt argv>
"""

import json
import os
import shutil
import sys
import time
from pathlib import Path

case, exit_code, sleep_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
argv = sys.argv[sys.argv.index("--") + 1 :]
target = Path(argv[argv.index("--target-path") + 1])
target.mkdir(parents=True, exist_ok=True)
(target.parent / "fake_dbt_call.json").write_text(
    json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)})
)
print("fake dbt: Encountered an error: Env var required but not provided: 'LAKEGOV_X'")
time.sleep(sleep_s)
if case != "-":
    fixtures = Path(__file__).parent / "fixtures" / case
    for name in ("run_results.json", "manifest.json"):
        shutil.copy(fixtures / name, target / name)
sys.exit(exit_code)
