"""Print `export UV_...=...` lines that hand pip's configuration on this machine (extra indexes,
local wheels, constraints) to uv, which does not read pip's. `make setup` installs with uv
(~15 s here where pip took ~65 s) and falls back to pip if uv fails.

    eval "$(python tools/uv_env.py)"
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

UV_NAMES = {
    "index-url": "UV_DEFAULT_INDEX",
    "extra-index-url": "UV_EXTRA_INDEX_URL",  # space-separated, as pip's
    "find-links": "UV_FIND_LINKS",  # comma-separated for uv
    "constraint": "UV_CONSTRAINT",  # space-separated
}


def main() -> int:
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    ).stdout
    found: dict[str, str] = {}
    # `:env:.find-links='/opt/wheels'` (a PIP_* variable) comes before `global.find-links=...`
    # in pip's precedence; pip lists the variables first
    for key, value in re.findall(r"^\S*?\.([a-z-]+)='(.*)'$", listed, flags=re.M):
        if key in UV_NAMES and UV_NAMES[key] not in found:
            found[UV_NAMES[key]] = ",".join(value.split()) if key == "find-links" else value
    print("export UV_INDEX_STRATEGY=unsafe-best-match")  # pip's way: the best match over all indexes
    for name, value in found.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
