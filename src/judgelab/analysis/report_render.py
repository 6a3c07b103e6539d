"""The report's writers (L3): one self-contained HTML page, Markdown, and an optional PNG screenshot.

HTML: images as base64 PNG, inline CSS, a Content-Security-Policy allowing no script and no remote
load; every string from a record is HTML-escaped (model outputs are untrusted). Markdown: PNG files
beside it; outputs in fenced blocks whose fence is longer than any backtick run in the text.
"""

from __future__ import annotations

import base64
import html
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from judgelab.analysis.report_model import SAMPLES_TITLE, Figure, Report, Samples, Table, Text, fmt
from judgelab.errors import JudgelabError

_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1d1d1f;max-width:1180px;
margin:24px auto;padding:0 20px;line-height:1.45;font-size:15px}
h1{font-size:26px;margin-bottom:4px}h2{font-size:20px;margin-top:34px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:16px;margin:22px 0 4px}
table{border-collapse:collapse;font-size:13px;margin:8px 0;width:100%}
th,td{border:1px solid #d0d0d0;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.note{color:#555;font-size:12.5px;margin:4px 0 0}.meta{width:auto}.meta td{border:none;padding:1px 12px 1px 0;font-size:13px}
.meta td:first-child{color:#666}img{max-width:100%;border:1px solid #eee}
.prompt{background:#f7f7f9;border-left:3px solid #999;padding:6px 10px;margin:14px 0 6px;font-size:13px}
.cells{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:10px}
.cell{border:1px solid #ddd;border-radius:4px;padding:6px 8px;font-size:12.5px;overflow-wrap:anywhere}
.cell .head{font-weight:600;margin-bottom:4px}.cell .scores{color:#444;margin-bottom:4px}
pre{white-space:pre-wrap;overflow-wrap:anywhere;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;
margin:0;background:#fafafa;padding:4px}details{margin-top:4px;color:#444}
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _esc(s: Any) -> str:
    return html.escape("" if s is None else str(s), quote=True)


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def render_html(rep: Report) -> str:
    """The report as one self-contained HTML page (every record string escaped)."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(rep.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(rep.title)}</h1>",
        '<table class="meta">' + "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in rep.subtitle) + "</table>",
    ]
    toc = list(dict.fromkeys(SAMPLES_TITLE if isinstance(s, Samples) else s.title for s in rep.sections if s.title))
    out.append("<p class=\"note\">" + " · ".join(f'<a href="#{_slug(t)}">{_esc(t)}</a>' for t in toc) + "</p>")
    samples_started = False
    for sec in rep.sections:
        if isinstance(sec, Samples):
            if not samples_started:
                out.append(f'<h2 id="{_slug(SAMPLES_TITLE)}">{_esc(SAMPLES_TITLE)}</h2>')
                samples_started = True
            out.append(f'<h3 id="{_slug(SAMPLES_TITLE + " " + sec.title)}">{_esc(sec.title)}</h3>')
        elif sec.title:
            out.append(f'<h2 id="{_slug(sec.title)}">{_esc(sec.title)}</h2>')
        if isinstance(sec, Table):
            out.append("<table><thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in sec.headers) + "</tr></thead><tbody>")
            for row in sec.rows:
                out.append(
                    "<tr>"
                    + "".join(
                        f"<td>{_esc(c)}</td>" if i in sec.text_cols else f'<td class="num">{_esc(c)}</td>'
                        for i, c in enumerate(row)
                    )
                    + "</tr>"
                )
            out.append("</tbody></table>")
            if sec.note:
                out.append(f'<p class="note">How computed: {_esc(sec.note)}</p>')
        elif isinstance(sec, Figure):
            b64 = base64.b64encode(sec.png).decode("ascii")
            out.append(f'<img alt="{_esc(sec.title)}" src="data:image/png;base64,{b64}">')
            out.append(f'<p class="note">{_esc(sec.caption)}</p>')
        elif isinstance(sec, Samples):
            if sec.note:
                out.append(f'<p class="note">{_esc(sec.note)}</p>')
            for sp in sec.prompts:
                out.append(f'<div class="prompt"><b>prompt {_esc(sp.prompt_id)}</b><pre>{_esc(sp.prompt)}</pre></div>')
                out.append('<div class="cells">')
                for c in sp.cells:
                    out.append(
                        f'<div class="cell"><div class="head">{_esc(c.label)} · step {c.step}</div>'
                        f'<div class="scores">proxy {_esc(fmt(c.proxy))} · gold {_esc(fmt(c.gold))}</div>'
                        f"<pre>{_esc(c.response)}</pre>"
                        + (
                            f"<details><summary>gold reasoning</summary><pre>{_esc(c.gold_reasoning)}</pre></details>"
                            if c.gold_reasoning
                            else ""
                        )
                        + "</div>"
                    )
                out.append("</div>")
        elif isinstance(sec, Text):
            out.append(f"<p>{_esc(sec.text)}</p>")
    out.append(
        '<p class="note">Generated by <code>judgelab report</code> from the run\'s records only; the numbers '
        "behind every table, and the sha256 of each record file read, are in report.json beside this page.</p>"
    )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _md_cell(s: str) -> str:
    return html.escape(s, quote=False).replace("|", "\\|").replace("\n", " ")


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def render_markdown(rep: Report) -> str:
    """The report as Markdown; figures are linked as the PNG files written beside it."""
    out = [f"# {_md_cell(rep.title)}", ""]
    out += [f"- **{_md_cell(k)}**: {_md_cell(v)}" for k, v in rep.subtitle]
    samples_started = False
    for sec in rep.sections:
        out.append("")
        if isinstance(sec, Samples):
            if not samples_started:
                out += [f"## {SAMPLES_TITLE}", ""]
                samples_started = True
            out += [f"### {_md_cell(sec.title)}", ""]
        elif sec.title:
            out += [f"## {_md_cell(sec.title)}", ""]
        if isinstance(sec, Table):
            out.append("| " + " | ".join(_md_cell(h) for h in sec.headers) + " |")
            out.append("|" + "|".join("---" if i in sec.text_cols else "---:" for i in range(len(sec.headers))) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in sec.rows]
            if sec.note:
                out += ["", f"*How computed:* {_md_cell(sec.note)}"]
        elif isinstance(sec, Figure):
            out += [f"![{_md_cell(sec.title)}]({sec.filename})", "", f"*{_md_cell(sec.caption)}*"]
        elif isinstance(sec, Samples):
            if sec.note:
                out += [f"*{_md_cell(sec.note)}*", ""]
            for sp in sec.prompts:
                out += [f"**prompt {_md_cell(sp.prompt_id)}**", "", _fence(sp.prompt), ""]
                for c in sp.cells:
                    out += [f"- *{_md_cell(c.label)}* · step {c.step} · proxy {fmt(c.proxy)} · gold {fmt(c.gold)}", "",
                            _fence(c.response), ""]
                    if c.gold_reasoning:
                        out += ["  gold reasoning:", "", _fence(c.gold_reasoning), ""]
        elif isinstance(sec, Text):
            out.append(_md_cell(sec.text))
    out += ["", "*Generated by `judgelab report` from the run's records only; numbers and record hashes in report.json.*", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------
# optional screenshot

_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable on PATH, or None."""
    for name in _CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def render_png(html_path: str | Path, png_path: str | Path | None = None, *, width: int = 1200, height: int = 4000) -> Path:
    """Screenshot ``html_path`` with headless Chromium (the top ``width`` × ``height`` pixels).

    Offline and sandboxed from the network (``--disable-background-networking``; the page's CSP
    allows no remote load). Raises ``JudgelabError`` when no Chromium is installed.
    """
    exe = find_chromium()
    if exe is None:
        raise JudgelabError(
            "no Chromium/Chrome executable found on PATH (needed for --png)",
            "install it (Debian: apt-get install chromium) or open report.html in a browser",
        )
    html_path = Path(html_path).resolve()
    png = Path(png_path) if png_path is not None else html_path.with_suffix(".png")
    with tempfile.TemporaryDirectory(prefix="judgelab-chromium-") as profile:
        # a fresh profile, and nothing that phones home: on a machine without network Chromium
        # otherwise retries its background connections (and name look-ups) at every start
        cmd = [
            exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--hide-scrollbars", f"--screenshot={png.resolve()}",
            f"--window-size={width},{height}", html_path.as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise JudgelabError(f"Chromium failed to screenshot {html_path}: {e}",
                                "run it by hand: " + " ".join(cmd)) from e
    if proc.returncode != 0 or not png.exists():
        raise JudgelabError(
            f"Chromium exited {proc.returncode} without writing {png}: {proc.stderr.strip()[-500:]}",
            "run it by hand: " + " ".join(cmd),
        )
    return png

