#!/usr/bin/env python3
"""Runs the test command and turns a hang into a failure that says where it hangs.

CI gives the whole run 90 minutes and, past them, shows only the tail of what was printed, and `swift test` passes
the test process's output on in blocks of 4 KiB, so that tail lags behind the run: a test that never returns
leaves no trace of itself. This passes the command's output through and follows the test process's own event
stream (exact, unbuffered) when given one. When nothing has happened for --silence seconds, the command has run
for --limit seconds, or the test run has ended and its processes have not exited --exit-grace seconds later, it
prints the tests started and not finished, the process tree, and every thread's stack of the test processes (gdb,
demangled, identical stacks merged), then kills every process of the run and exits 124. The summary comes last,
so it is in the tail.

    scripts/test-watchdog.py [--silence S] [--limit S] [--report FILE] [--events FILE] -- swift test --skip-build \\
        [--experimental-event-stream-output FILE --experimental-event-stream-version 0]
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

STARTED = re.compile(r"◇ Test (\w+\(.*?\)) started\.")
CASE_STARTED = re.compile(r"◇ Test case passing (.*) to (\w+\(.*?\)) started\.")
ENDED = re.compile(r"[✔✘􀟈] Test (\w+\(.*?\)) (?:with \d+ test cases? )?(?:passed|failed|skipped)")
# Frames of this project's code (module names as they appear demangled), for the summary.
OURS = re.compile(r"\b(LogFormat|Collector\w*|AuditQuery|auditq|TestSupport|\w+Tests)\.")
NOISE = re.compile(r"(partial apply|thunk|reabstraction|\$s)")


class Progress:
    """What the run says so far: when it last said anything, and the tests started and not ended. The event
    stream (written by the test process itself) is exact; the console, which `swift test` passes on in blocks
    of 4 KiB, is read only when there is no event stream."""

    def __init__(self):
        self.lock = threading.Lock()
        self.last_activity = time.monotonic()
        self.longest_silence = 0.0
        self.running = {}  # test id -> [started at, latest case or ""]
        self.events_seen = False
        self.run_ended_at = None

    def _activity(self, now):
        self.longest_silence = max(self.longest_silence, now - self.last_activity)
        self.last_activity = now

    def console_line(self, text):
        now = time.monotonic()
        with self.lock:
            self._activity(now)
            if self.events_seen:
                return
            m = CASE_STARTED.search(text)
            if m:
                self.running.setdefault(m.group(2), [now, ""])[1] = m.group(1)[:160]
            elif m := STARTED.search(text):
                self.running[m.group(1)] = [now, ""]
            elif m := ENDED.search(text):
                self.running.pop(m.group(1), None)

    def event(self, record):
        now = time.monotonic()
        payload = record.get("payload", {})
        kind = payload.get("kind")
        test = payload.get("testID", "")
        with self.lock:
            self._activity(now)
            if not self.events_seen:
                self.events_seen = True
                self.running.clear()
            if kind == "testStarted" and "/" in test:  # functions; suites have no "/" in their ids
                self.running[test] = [now, ""]
            elif kind == "testEnded":
                self.running.pop(test, None)
            elif kind == "testCaseStarted" and test in self.running:
                self.running[test][1] = payload.get("_testCase", {}).get("displayName", "")[:160]
            elif kind == "runEnded":
                self.run_ended_at = now


def follow(path, progress):
    """Feeds each record of the event stream at `path` to `progress` as it is written (a daemon thread: it ends
    with the script)."""
    handle, partial = None, b""
    while True:
        if handle is None:
            try:
                handle = open(path, "rb")
            except FileNotFoundError:
                time.sleep(0.5)
                continue
        chunk = handle.read()
        if not chunk:
            time.sleep(0.5)
            continue
        partial += chunk
        *lines, partial = partial.split(b"\n")
        for line in lines:
            try:
                progress.event(json.loads(line))
            except ValueError:
                pass


def session_processes(sid):
    """(pid, ppid, elapsed seconds, state, command) of every process in session `sid`."""
    out = subprocess.run(
        ["ps", "-e", "-o", "pid=,ppid=,sid=,etimes=,stat=,args="], capture_output=True, text=True
    ).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 5)
        if len(parts) >= 5 and int(parts[2]) == sid:
            rows.append((int(parts[0]), int(parts[1]), int(parts[3]), parts[4], parts[5] if len(parts) > 5 else ""))
    return rows


def tree(rows, root):
    """The rows as an indented tree under `root`."""
    children = {}
    for r in rows:
        children.setdefault(r[1], []).append(r)
    lines = []

    def walk(pid, depth):
        for r in children.get(pid, []):
            lines.append(f"{'  ' * depth}{r[0]} {r[3]} {r[2]}s {r[4][:200]}")
            walk(r[0], depth + 1)

    lines += [f"{r[0]} {r[3]} {r[2]}s {r[4][:200]}" for r in rows if r[0] == root]
    walk(root, 1)
    return lines


def demangle(text):
    tool = shutil.which("swift-demangle")
    if tool:
        done = subprocess.run([tool, "--simplified"], input=text, capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout
    return text


def stacks(pid):
    """Every thread's stack of `pid` as (count, frames), identical stacks merged, most frequent first."""
    if not shutil.which("gdb"):
        return None
    try:
        done = subprocess.run(
            ["gdb", "-p", str(pid), "-batch", "-nx", "-ex", "set pagination off", "-ex", "thread apply all bt 60"],
            capture_output=True, text=True, timeout=180,
        )
    except subprocess.TimeoutExpired:
        return None
    text = demangle(done.stdout)
    threads, current = [], None
    for line in text.splitlines():
        if line.startswith("Thread "):
            current = []
            threads.append(current)
        elif current is not None and re.match(r"#\d+ ", line):
            frame = re.sub(r"^#\d+\s+(0x[0-9a-f]+ in )?", "", line)
            frame = re.sub(r"\(\w+=0x[0-9a-f]+.*?\)", "(…)", frame)
            current.append(frame[:240])
    merged = {}
    for frames in threads:
        key = "\n".join(frames)
        merged[key] = merged.get(key, 0) + 1
    return sorted(((n, k.split("\n")) for k, n in merged.items()), key=lambda x: -x[0])


def report(progress, sid, why, path):
    out = []
    say = out.append
    say(f"\n=== test-watchdog: {why}; stopping the run ===")
    rows = session_processes(sid)
    say("process tree:")
    out.extend("  " + l for l in tree(rows, sid))
    summary = []
    for pid, _, _, _, args in rows:
        if ".xctest" not in args and "PackageTests" not in args:
            continue
        found = stacks(pid)
        if found is None:
            say(f"stacks of {pid}: gdb missing or did not answer")
            continue
        say(f"stacks of {pid} ({sum(n for n, _ in found)} threads):")
        for n, frames in found:
            say(f"  --- {n} thread(s)")
            out.extend("    " + f for f in frames)
            ours = [f for f in frames if OURS.search(f) and not NOISE.match(f)]
            if ours:
                summary.append(f"  {n}× " + " ← ".join(re.sub(r" \(.*", "", f)[:100] for f in ours[:4]))
    now = time.monotonic()
    with progress.lock:
        running = sorted(progress.running.items(), key=lambda kv: kv[1][0])
    say("=== test-watchdog summary ===")
    say(f"{why}. Tests started and not finished (longest first):")
    for name, (started, case) in running:
        say(f"  {int(now - started)}s {name}" + (f" [{case}]" if case else ""))
    if not running:
        say("  none")
    if summary:
        say("threads in this project's code (innermost first):")
        out.extend(summary[:20])
    text = "\n".join(out)
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")
    print(text, flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--silence", type=float, default=600)
    parser.add_argument("--limit", type=float, default=2700)
    parser.add_argument("--exit-grace", type=float, default=120, help="seconds from the run's end to the exit")
    parser.add_argument("--report", default="")
    parser.add_argument("--events", default="", help="the event stream the command writes (swift-testing JSON)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    progress = Progress()
    if args.events:
        try:
            os.remove(args.events)
        except FileNotFoundError:
            pass
        threading.Thread(target=follow, args=(args.events, progress), daemon=True).start()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

    def pump():
        for raw in iter(child.stdout.readline, b""):
            sys.stdout.buffer.write(raw)
            sys.stdout.flush()
            progress.console_line(raw.decode("utf-8", "replace"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    started = time.monotonic()
    why = None
    while child.poll() is None:
        time.sleep(1)
        now = time.monotonic()
        with progress.lock:
            silent = now - progress.last_activity
            ended = progress.run_ended_at
        if ended is not None and now - ended >= args.exit_grace:
            why = f"the test run ended {int(now - ended)} s ago and its processes have not exited"
        elif silent >= args.silence:
            why = f"no test started or ended, and nothing printed, for {int(silent)} s"
        elif now - started >= args.limit:
            why = f"still running after {int(now - started)} s"
        if why:
            break
    if why:
        report(progress, child.pid, why, args.report)
        # Children the tests started may be in process groups of their own (Foundation's Process makes one per
        # child), so every process of the session goes, not only the command's group.
        for _ in range(3):
            for pid, *_ in session_processes(child.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        child.wait()
        sys.exit(124)
    reader.join(timeout=10)
    print(
        f"test-watchdog: finished in {int(time.monotonic() - started)} s, status {child.returncode}; "
        f"longest silence {int(progress.longest_silence)} s (limit {int(args.silence)} s)",
        file=sys.stderr, flush=True,
    )
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
