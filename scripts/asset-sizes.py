#!/usr/bin/env python3
"""Sizes of the web client as a running server serves it (Python 3 stdlib only).

Starts at the entry page, follows src/href and module imports, and fetches every file
three times: uncompressed, with Accept-Encoding: gzip and with Accept-Encoding: br.
Prints bytes per file and in total (bodies only, as they go over the wire), the
Cache-Control of each, and one JSON line.

    python3 scripts/asset-sizes.py --url http://127.0.0.1:18095/
"""

import argparse
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

REFS = re.compile(r"""\s(?:src|href)="([^"]+)\"""")
IMPORTS = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*)(['"])(\.{0,2}/[^'"]+)\1""")


def fetch(url, encoding):
    req = urllib.request.Request(url, headers={"Accept-Encoding": encoding})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read(), r.headers.get("Content-Encoding", ""), r.headers.get("Cache-Control", "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:18095/")
    args = ap.parse_args()
    origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(args.url))

    rows, todo, seen = [], [args.url], set()
    try:
        while todo:
            url = todo.pop(0)
            if url in seen:
                continue
            seen.add(url)
            body, _, cache = fetch(url, "identity")
            sizes = {"raw": len(body)}
            for enc in ("gzip", "br"):
                wire, got, _ = fetch(url, enc)
                sizes[enc] = len(wire) if got == enc else None
            path = urllib.parse.urlsplit(url).path
            rows.append({"path": path, "cache": cache, **sizes})
            text = body.decode("utf-8", "replace")
            if path.endswith(".js"):
                found = [m.group(2) for m in IMPORTS.finditer(text)]
            elif path == urllib.parse.urlsplit(args.url).path or path.endswith(".html"):
                found = REFS.findall(text)
            else:
                found = []
            for ref in found:
                nxt = urllib.parse.urljoin(url, ref)
                if nxt.startswith(origin + "/") and nxt not in seen:
                    todo.append(nxt)
    except (urllib.error.URLError, OSError) as e:
        sys.exit(f"asset-sizes: {url}: {e}")

    total = {k: sum(r[k] or 0 for r in rows) for k in ("raw", "gzip", "br")}
    w = max(len(r["path"]) for r in rows)
    print(f"{'file'.ljust(w)}  {'bytes':>7}  {'gzip':>6}  {'br':>6}  cache-control")
    for r in rows:
        g = r["gzip"] if r["gzip"] is not None else "-"
        b = r["br"] if r["br"] is not None else "-"
        print(f"{r['path'].ljust(w)}  {r['raw']:>7}  {g:>6}  {b:>6}  {r['cache']}")
    print(f"{'total (' + str(len(rows)) + ' files)':<{w}}  {total['raw']:>7}  {total['gzip']:>6}  {total['br']:>6}")
    print(json.dumps({"url": args.url, "files": rows, "total": total}))


if __name__ == "__main__":
    main()
