"""Writes storage/go_isprint.py from Go's strconv/isprint.go (the tables strconv.IsPrint uses).

    .venv/bin/python scripts/gen_go_isprint.py GOROOT/src/strconv/isprint.go

Go's error texts quote with strconv.Quote, which prints a character literally when IsPrint says so;
Python's str.isprintable follows the Unicode of its own release, so the tables come from Go.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "storage" / "go_isprint.py"
TABLES = ("isPrint16", "isNotPrint16", "isPrint32", "isNotPrint32")


def main() -> int:
    source = Path(sys.argv[1]).read_text()
    version = re.search(r"go(\d+\.\d+(?:\.\d+)?)", str(Path(sys.argv[1]).resolve()))
    version_file = Path(sys.argv[1]).resolve().parents[2] / "VERSION"
    go = version_file.read_text().split()[0] if version_file.is_file() else (version.group(0) if version else "?")
    lines = [
        f'"""strconv.IsPrint\'s tables, generated from {go}\'s src/strconv/isprint.go by',
        "scripts/gen_go_isprint.py: do not edit.",
        '"""',
        "",
        f'GO_VERSION = "{go}"',
        "",
        "",
        "def _table(text: str) -> tuple[int, ...]:",
        "    return tuple(int(n, 16) for n in text.split())",
        "",
    ]
    for name in TABLES:
        body = re.search(rf"var {name} = \[\]uint(?:16|32)\{{[^\n]*\n(.*?)\n\}}", source, re.S).group(1)
        numbers = [int(n, 16) for n in re.findall(r"0x[0-9a-fA-F]+", body)]
        lines.append("")
        lines.append(f"{name.upper()} = _table(")
        for i in range(0, len(numbers), 16):
            lines.append('    "' + " ".join(f"{n:x}" for n in numbers[i : i + 16]) + ' "')
        lines.append(")")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT} from {go}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
