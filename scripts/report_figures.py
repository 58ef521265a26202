"""Renders a report's PDF pages to PNG figures for the documentation's "Reading a report" page.

    .venv/bin/memaudit demo                                   # writes reports/demo/ (about 7 minutes)
    .venv/bin/python scripts/report_figures.py reports/demo/scan-hospital

The figures are the demo's own output, page by page (docs/figures/report/page-N.png), never drawn by
hand; rerun both commands when the report's template changes. Needs pdftoppm (poppler-utils).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "docs" / "figures" / "report"


def render_pages(pdf: Path, out: Path, *, dpi: int = 70) -> list[Path]:
    """Every page of ``pdf`` as ``out/page-N.png`` (N from 1), replacing the pages a previous run left."""
    if shutil.which("pdftoppm") is None:
        raise SystemExit("pdftoppm not found: install poppler-utils (scripts/system-packages.txt)")
    if not pdf.is_file():
        raise SystemExit(f"{pdf}: no such report; run `memaudit demo` first, or name a scan's output folder")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("page-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), str(pdf), str(out / "page")], check=True)
    pages = sorted(out.glob("page-*.png"), key=lambda path: int(path.stem.rsplit("-", 1)[1]))
    # pdftoppm pads the page number to the page count's width (page-01.png); the docs name them page-1.png.
    renamed = []
    for path in pages:
        target = out / f"page-{int(path.stem.rsplit('-', 1)[1])}.png"
        path.rename(target)
        renamed.append(target)
    return renamed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scan", type=Path, help="a scan's output folder (holding report.pdf) or the PDF itself")
    parser.add_argument("--out", type=Path, default=FIGURES, help="where the PNG pages go")
    parser.add_argument("--dpi", type=int, default=70)
    args = parser.parse_args(argv)
    pdf = args.scan if args.scan.suffix == ".pdf" else args.scan / "report.pdf"
    for page in render_pages(pdf, args.out, dpi=args.dpi):
        print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
