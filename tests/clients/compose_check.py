"""Validates docker-compose.yml offline as Docker would (`docker compose config` where the plugin exists,
else Debian's or PyPI's `docker-compose config`) and prints the resolved file as JSON; exits with the
tool's status and message when it refuses the file."""
import json
import subprocess
import sys

import yaml


def tool():
    try:
        if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
            return ["docker", "compose"]
    except FileNotFoundError:
        pass
    return ["docker-compose"]


cmd = tool() + ["-f", sys.argv[1], "config"]
try:
    r = subprocess.run(cmd, capture_output=True, text=True)
except FileNotFoundError:
    print("neither `docker compose` nor `docker-compose` is installed (scripts/test installs it)", file=sys.stderr)
    sys.exit(2)
if r.returncode != 0:
    print(f"{' '.join(cmd)}: {r.stderr}", file=sys.stderr)
    sys.exit(r.returncode)
quiet = subprocess.run(tool() + ["-f", sys.argv[1], "config", "-q"], capture_output=True, text=True)
print(json.dumps({"tool": " ".join(tool()), "quiet_rc": quiet.returncode, "config": yaml.safe_load(r.stdout)}))
