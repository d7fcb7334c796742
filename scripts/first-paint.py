#!/usr/bin/env python3
"""First paint of the web client, measured in headless Chromium.

Drives chromedriver over the W3C WebDriver HTTP protocol (Python 3 stdlib only) and
loads a running server's page --runs times, twice over:

  cold  a new browser session (fresh profile, empty cache) for every load
  warm  one session: one priming load, then --runs reloads

and reports, in ms from the start of navigation: first paint and first contentful
paint (performance.getEntriesByType('paint')), largest contentful paint (the join
screen or the app drawn by the modules), DOMContentLoaded and load, plus the requests
that went to the network and the bytes they transferred. Median and max, as a table
and as one JSON line.

    python3 scripts/first-paint.py --url http://127.0.0.1:18095/ --runs 10
"""

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
]

# Navigation timing and paint entries of the current page, in ms from navigation start.
TIMINGS = """
const nav = performance.getEntriesByType('navigation')[0];
const paint = {};
for (const p of performance.getEntriesByType('paint')) paint[p.name] = p.startTime;
const res = performance.getEntriesByType('resource');
// transferSize is 0 for what came from the memory or disk cache.
const fetched = res.filter(r => r.transferSize > 0);
return {
  fp: paint['first-paint'] ?? null,
  fcp: paint['first-contentful-paint'] ?? null,
  dcl: nav ? nav.domContentLoadedEventEnd : null,
  load: nav ? nav.loadEventEnd : null,
  requests: fetched.length + (nav && nav.transferSize > 0 ? 1 : 0),
  bytes: fetched.reduce((n, r) => n + r.transferSize, 0) + (nav ? nav.transferSize : 0),
  cached: res.length - fetched.length,
};
"""

# The largest contentful paint so far (buffered entries), once the page has settled.
LCP = """
const done = arguments[arguments.length - 1];
let last = null;
try {
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) last = e.startTime;
  }).observe({type: 'largest-contentful-paint', buffered: true});
} catch (e) { done(null); }
setTimeout(() => done(last), 50);
"""

# The page is drawn by the modules when the boot placeholder is gone.
DRAWN = """
const root = document.getElementById('root');
return !!root && root.children.length > 0 && !root.querySelector(':scope > .boot');
"""

METRICS = [
    ("fp", "first paint"),
    ("fcp", "first contentful paint"),
    ("lcp", "largest contentful paint"),
    ("dcl", "DOMContentLoaded"),
    ("load", "load"),
]


class WebDriverError(Exception):
    pass


class Driver:
    """A chromedriver process and the HTTP calls to it."""

    def __init__(self, path):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [path, f"--port={self.port}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.call("GET", "/status").get("ready"):
                    return
            except (OSError, WebDriverError):
                pass
            if self.proc.poll() is not None:
                raise WebDriverError(f"chromedriver exited with {self.proc.returncode}")
            if time.monotonic() > deadline:
                self.close()
                raise WebDriverError("chromedriver did not become ready in 20 s")
            time.sleep(0.05)

    def call(self, method, path, body=None, timeout=60):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                payload = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                detail = json.loads(e.read()).get("value", {})
                msg = f"{detail.get('error')}: {detail.get('message', '')[:300]}"
            except (ValueError, AttributeError):
                msg = str(e)
            raise WebDriverError(f"{method} {path}: {msg}") from None
        except ValueError as e:
            raise WebDriverError(f"{method} {path}: not JSON ({e})") from None
        if not isinstance(payload, dict):
            raise WebDriverError(f"{method} {path}: unexpected answer {payload!r}")
        return payload.get("value")

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Session:
    """One Chromium with a fresh profile directory."""

    def __init__(self, driver, chromium):
        self.driver = driver
        self.profile = tempfile.mkdtemp(prefix="first-paint-")
        caps = {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": FLAGS + [f"--user-data-dir={self.profile}"],
            },
        }
        try:
            value = driver.call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})
            self.id = value["sessionId"]
            self.version = value.get("capabilities", {}).get("browserVersion", "?")
        except (WebDriverError, KeyError, TypeError) as e:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise WebDriverError(f"could not start Chromium: {e}") from None

    def cmd(self, method, what, body=None):
        return self.driver.call(method, f"/session/{self.id}{what}", body)

    def script(self, source, asynchronous=False):
        kind = "async" if asynchronous else "sync"
        return self.cmd("POST", f"/execute/{kind}", {"script": source, "args": []})

    def load(self, url=None):
        """Navigates to url (or reloads), waits for the drawn page, returns timings."""
        if url is None:
            self.cmd("POST", "/refresh", {})
        else:
            self.cmd("POST", "/url", {"url": url})
        deadline = time.monotonic() + 15
        while not self.script(DRAWN):
            if time.monotonic() > deadline:
                raise WebDriverError("no Hubbub page drawn within 15 s (is the server up?)")
            time.sleep(0.02)
        t = self.script(TIMINGS)
        if not isinstance(t, dict):
            raise WebDriverError(f"timings script answered {t!r}")
        # Paint entries can trail the load event by a frame.
        while t.get("fcp") is None and time.monotonic() < deadline:
            time.sleep(0.02)
            t = self.script(TIMINGS)
        t["lcp"] = self.script(LCP, asynchronous=True)
        return t

    def close(self):
        try:
            self.cmd("DELETE", "")
        except (OSError, WebDriverError):
            pass
        shutil.rmtree(self.profile, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summary(samples):
    out = {}
    for key, _ in METRICS + [("requests", ""), ("bytes", "")]:
        values = [s[key] for s in samples if isinstance(s.get(key), (int, float))]
        if values:
            out[key] = {
                "median": round(statistics.median(values), 1),
                "max": round(max(values), 1),
                "n": len(values),
            }
    return out


def cell(stats, key):
    s = stats.get(key)
    if not s:
        return "—"
    if key == "bytes":
        return f"{s['median'] / 1000:.1f}k / {s['max'] / 1000:.1f}k"
    if key == "requests":
        return f"{s['median']:g} / {s['max']:g}"
    return f"{s['median']:.1f} / {s['max']:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:18095/")
    ap.add_argument("--runs", type=int, default=10, help="loads per mode (default 10)")
    ap.add_argument("--mode", choices=["both", "cold", "warm"], default="both")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    for tool in (args.chromedriver, args.chromium):
        if not shutil.which(tool):
            sys.exit(f"first-paint: {tool} not found (apt-get install chromium chromium-driver)")

    driver = Driver(args.chromedriver)
    results, version = {}, "?"
    try:
        if args.mode in ("both", "cold"):
            samples = []
            for i in range(args.runs):
                s = Session(driver, args.chromium)
                version = s.version
                try:
                    samples.append(s.load(args.url))
                finally:
                    s.close()
                print(f"cold {i + 1}/{args.runs}", end="\r", file=sys.stderr)
            results["cold"] = summary(samples)
        if args.mode in ("both", "warm"):
            s = Session(driver, args.chromium)
            version = s.version
            try:
                s.load(args.url)  # primes the cache; not counted
                samples = []
                for i in range(args.runs):
                    samples.append(s.load())
                    print(f"warm {i + 1}/{args.runs}", end="\r", file=sys.stderr)
            finally:
                s.close()
            results["warm"] = summary(samples)
    except WebDriverError as e:
        sys.exit(f"first-paint: {e}")
    finally:
        driver.close()

    print(" " * 20, end="\r", file=sys.stderr)
    print(f"{args.url}, Chromium {version}, {args.runs} loads per mode")
    print("ms from the start of navigation (bytes: on the wire, headers included); median / max")
    head = ["mode"] + [label for _, label in METRICS] + ["network requests", "bytes transferred"]
    rows = [head]
    for mode, stats in results.items():
        rows.append([mode] + [cell(stats, k) for k, _ in METRICS] + [cell(stats, "requests"), cell(stats, "bytes")])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for n, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print(json.dumps({"url": args.url, "runs": args.runs, "chromium": version, **results}))


if __name__ == "__main__":
    main()
