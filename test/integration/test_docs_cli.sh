#!/usr/bin/env bash
# Checks that the user docs match the binary, so that they cannot drift:
# (1) every flag and subcommand `membrane --help` prints has its page in
#     docs/cli/ (titled with it, its Default section naming the default --help
#     gives, with at least one example), and every page there names a real flag
#     or subcommand, and docs/README.md links every page; relative links in the
#     CLI, install and operations pages lead to files that exist;
# (2) every example command line `membrane [run] ...` in docs/cli/*.md,
#     docs/install.md and docs/operations.md passes the binary's own flag parsing
#     (`membrane run --help ARGS...` checks the whole line, exit 0); an example
#     marked `# exit 2` must be refused with exit 2, and when the line after it
#     shows the message (`membrane: ...`), the binary must print exactly that;
# (3) the metric families in docs/operations.md's table are the ones the code
#     registers (controller/, membrane_* families, with their type and labels),
#     and the ones the binary serves on /metrics: a standby operator is started
#     with --leader-elect against an address where no API server listens, which
#     serves /metrics while it waits for the Lease.
# Needs python3 and MEMBRANE_BIN (default build/membrane); no cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."

membrane=${MEMBRANE_BIN:-build/membrane}
[ -x "$membrane" ] || { echo "FAIL test_docs_cli: no membrane binary at $membrane (set MEMBRANE_BIN)"; exit 1; }
command -v python3 >/dev/null || { echo "FAIL test_docs_cli: python3 is not installed (hack/setup.sh installs it)"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/check.py" <<'PY'
import glob, json, os, re, shlex, signal, subprocess, sys, time, urllib.request

membrane, tmp = sys.argv[1], sys.argv[2]
passed, failures = 0, []

def ok(what):
    global passed
    passed += 1
    print("ok   " + what)

def fail(what, detail=""):
    failures.append(what)
    print("FAIL " + what)
    if detail:
        print("     " + detail)

def check(what, cond, detail=""):
    ok(what) if cond else fail(what, detail)

def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()

# the binary runs with this environment: the caller's (sanitizer options and all), but no
# Kubernetes configuration of its own, so that nothing here can reach a real cluster
env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")}
env["HOME"] = tmp

# ---- what the binary says it has -------------------------------------------

usage = subprocess.run([membrane, "--help"], capture_output=True, text=True, env=env)
if usage.returncode != 0 or "usage:" not in usage.stdout:
    fail("membrane --help prints the usage", f"exit {usage.returncode}: {usage.stderr.strip()}")
    sys.exit(1)
flags, subcommands, section = {}, {}, None
for line in usage.stdout.splitlines():
    if line.startswith("usage:"):
        section = "usage"
    elif line.startswith("flags of run:"):
        section = "flags"
    elif not line.strip():
        section = None
    elif section == "usage":
        m = re.match(r"^\s+membrane (\[run\]|run|receipt verify|version)(?=\s|$)", line)
        if m:
            words = m.group(1).strip("[]")
            subcommands[words.replace(" ", "-")] = words
    elif section == "flags":
        m = re.match(r"^\s+(?:-\w, )?--([a-z][a-z-]*)\b(.*)$", line)
        if m:
            flags[m.group(1)] = m.group(2)
check("membrane --help lists the flags of run and the subcommands",
      len(flags) >= 2 and "run" in subcommands and "version" in subcommands,
      f"flags {sorted(flags)}, subcommands {sorted(subcommands)}")
check("no flag shares its name with a subcommand", not set(flags) & set(subcommands),
      str(set(flags) & set(subcommands)))

# ---- (1) one page per flag and subcommand, and no other ---------------------

pages = {os.path.basename(p)[:-3]: p for p in sorted(glob.glob("docs/cli/*.md"))}
for name in sorted(flags):
    path = f"docs/cli/{name}.md"
    if name not in pages:
        fail(f"{path}: missing: membrane --help prints --{name}")
        continue
    text = read(path)
    title = text.splitlines()[0] if text else ""
    check(f"{path}: titled `# --{name}`", title == f"# --{name}", f"first line: {title!r}")
    # "default X" in --help, up to a comma: checked when X is one word (":8080", "4", "$KUBECONFIG")
    m = re.search(r"\bdefault ([^,]+)", flags[name])
    want = m.group(1).strip() if m else ""
    if want and " " not in want:
        dflt = re.search(r"^## Default\n(.*?)(?=^## |\Z)", text, re.S | re.M)
        check(f"{path}: its Default section names {want}, the default --help gives",
              bool(dflt) and want in dflt.group(1), "no ## Default section" if not dflt else dflt.group(1).strip()[:200])
for slug, words in sorted(subcommands.items()):
    path = f"docs/cli/{slug}.md"
    if slug not in pages:
        fail(f"{path}: missing: membrane --help prints the subcommand `membrane {words}`")
        continue
    title = read(path).splitlines()[0]
    check(f"{path}: titled `# membrane {words}`", title == f"# membrane {words}", f"first line: {title!r}")
for name, path in pages.items():
    if name not in flags and name not in subcommands:
        fail(f"{path}: stale page: membrane --help prints no flag --{name} and no subcommand {name.replace('-', ' ')}")

docs = sorted(pages.values()) + [p for p in ("docs/install.md", "docs/operations.md", "docs/README.md") if os.path.exists(p)]
for p in ("docs/install.md", "docs/operations.md", "docs/README.md"):
    check(f"{p} exists", os.path.exists(p))

# the index lists every CLI page
index = read("docs/README.md") if os.path.exists("docs/README.md") else ""
for name, path in sorted(pages.items()):
    check(f"docs/README.md links {path}", f"](cli/{name}.md)" in index)

# relative links resolve, on every docs page
for path in sorted(glob.glob("docs/**/*.md", recursive=True)):
    for n, line in enumerate(read(path).splitlines(), 1):
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            dest = os.path.normpath(os.path.join(os.path.dirname(path), target.split("#")[0]))
            if not os.path.exists(dest):
                fail(f"{path}:{n}: link to {target}: {dest} does not exist")

# ---- (2) every example command line passes the binary's flag parsing --------

SHELL_OPS = re.compile(r"^(\||\|\||&&|;|&|\d*[<>].*|[<>].*)$")

def examples(path):
    """(line number, command text, argv after `membrane`, expected exit, shown message) per example."""
    out, block, console, lines = [], False, False, read(path).splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            block = not block
            if block:  # a transcript: only its "$ " lines are commands, the rest is output
                end = next((j for j in range(i + 1, len(lines)) if lines[j].lstrip().startswith("```")), len(lines))
                console = any(l.startswith("$ ") for l in lines[i + 1:end])
            i += 1
            continue
        if not block or (console and not line.startswith("$ ")):
            i += 1
            continue
        start, text = i + 1, line
        while text.endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text[:-1] + " " + lines[i].strip()
        i += 1
        text = re.sub(r"^\s*\$ ", "", text)
        m = re.search(r"#\s*exit\s+(\d+)\s*$", text)
        want = int(m.group(1)) if m else 0
        try:
            tokens = shlex.split(text, comments=True)
        except ValueError:
            continue
        while tokens and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", tokens[0]):
            tokens.pop(0)
        if not tokens or os.path.basename(tokens[0]) != "membrane":
            continue
        args = []
        for t in tokens[1:]:
            if SHELL_OPS.match(t):
                break
            args.append(t)
        shown = None
        if want != 0 and i < len(lines) and lines[i].startswith("membrane: "):
            shown = lines[i]
        out.append((start, text.strip(), args, want, shown))
    return out

used = {}  # page name -> whether an example checked on it uses it
for path in docs:
    if path == "docs/README.md":
        continue
    for n, text, args, want, shown in examples(path):
        where = f"{path}:{n}: `{text}`"
        if args[:1] == ["receipt"] and want == 0:
            used.setdefault("receipt-verify", path)  # reads a real file: its parsing is checked by the unit tests
            continue
        if args and not args[0].startswith("-") and args[0] != "run":
            # version, receipt, or a command that does not exist: as written (only run starts the operator)
            argv = [membrane] + args
            used.setdefault({"version": "version", "receipt": "receipt-verify"}.get(args[0], ""), path)
        else:
            rest = args[1:] if args[:1] == ["run"] else args
            argv = [membrane, "run", "--help"] + rest  # --help anywhere: acted on once the whole line parses
            used.setdefault("run", path)
            for a in rest:
                if a.startswith("--"):
                    used.setdefault(a[2:].split("=")[0], path)
                elif a == "-h":
                    used.setdefault("help", path)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                           env=env)
        first = (r.stderr.strip().splitlines() or [""])[0]
        if r.returncode != want:
            fail(f"{where}: exits {want}", f"exit {r.returncode}: {first or r.stdout.strip()[:200]}")
        elif want == 0 and argv[1:3] == ["run", "--help"] and "usage:" not in r.stdout:
            fail(f"{where}: parses", f"no usage printed: {r.stdout[:200]}")
        elif shown is not None and shown != first:
            fail(f"{where}: the binary prints the message shown after it",
                 f"shown:  {shown}\n     binary: {first}")
        else:
            ok(f"{where}: exits {want}" + (" with the message shown" if shown else ""))
for name, path in sorted(pages.items()):
    check(f"{path}: has an example that uses {'--' + name if name in flags else 'it'}", name in used)

# ---- (3) metric families: code, binary and docs/operations.md agree ---------

TYPES = {"METRICS_COUNTER": "counter", "METRICS_GAUGE": "gauge", "METRICS_HISTOGRAM": "histogram"}
code = {}
for src in sorted(glob.glob("controller/**/*.c", recursive=True)):
    text = read(src)
    # the ADD(field, TYPE, "name", help..., labels) macro of runtime/metrics.c, which prefixes membrane_
    for m in re.finditer(r'\bADD\(\s*\w+,\s*(METRICS_\w+),\s*"(\w+)",\s*(?:"(?:[^"\\]|\\.)*"\s*)+,\s*(NULL|LABELS\(([^)]*)\))\s*\)', text):
        labels = re.findall(r'"(\w+)"', m.group(4) or "")
        code["membrane_" + m.group(2)] = (TYPES.get(m.group(1), m.group(1)), labels)
    # direct registrations with a literal name
    for m in re.finditer(r'metrics_family_add\([^;]*?(METRICS_\w+),\s*"(membrane_\w+)"', text):
        code.setdefault(m.group(2), (TYPES.get(m.group(1), m.group(1)), None))
check("the code registers membrane_* metric families", len(code) > 0, "none found in controller/")

# the binary's /metrics, from a standby that never reaches an API server
with open(f"{tmp}/kubeconfig", "w") as f:
    f.write("apiVersion: v1\nkind: Config\ncurrent-context: nowhere\nclusters:\n- name: nowhere\n  cluster:\n"
            "    server: https://127.0.0.1:1\ncontexts:\n- name: nowhere\n  context:\n    cluster: nowhere\n"
            "    user: nobody\nusers:\n- name: nobody\n  user:\n    token: unused\n")
served, proc, log = {}, None, open(f"{tmp}/standby.log", "w+")
try:
    proc = subprocess.Popen([membrane, "run", "--kubeconfig", f"{tmp}/kubeconfig", "--leader-elect",
                             "--leader-election-namespace", "docs-test", "--metrics-addr", "127.0.0.1:0",
                             "--health-addr", "127.0.0.1:0", "--log-format", "json"],
                            stdout=log, stderr=log, env=env)
    port, deadline = None, time.monotonic() + 30
    while port is None and time.monotonic() < deadline and proc.poll() is None:
        log.seek(0)
        m = re.search(r'"serving /metrics on [^"]*\(port (\d+)\)', log.read())
        port = int(m.group(1)) if m else None
        time.sleep(0.1)
    if port is None:
        log.seek(0)
        fail("a standby operator serves /metrics", log.read()[-500:])
    else:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        served = dict(re.findall(r"^# TYPE (membrane_\w+) (\w+)$", body, re.M))
        ok(f"a standby operator serves /metrics ({len(served)} membrane_* families)")
finally:
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
for name in sorted(set(served) | set(code)):
    if name not in code:
        fail(f"{name}: the binary serves it, but the registrations this test reads from controller/ do not name it",
             "register it with runtime/metrics.c's ADD, or teach this test the new way")
    elif served and name not in served:
        fail(f"{name}: registered in controller/, but the binary's /metrics does not have it")
    elif served and served[name] != code[name][0]:
        fail(f"{name}: the binary serves it as a {served[name]}, the code registers a {code[name][0]}")

ops = "docs/operations.md"
documented = {}
text = read(ops) if os.path.exists(ops) else ""
for n, line in enumerate(text.splitlines(), 1):
    m = re.match(r"^\|\s*`(membrane_\w+)`\s*\|\s*(\w+)\s*\|([^|]*)\|", line)
    if m:
        labels = re.findall(r"`(\w+)`", m.group(3))
        documented[m.group(1)] = (n, m.group(2), labels)
for name, (typ, labels) in sorted(code.items()):
    if name not in documented:
        fail(f"{ops}: {name} is registered in controller/ but has no row in the metrics table")
        continue
    n, dtyp, dlabels = documented[name]
    check(f"{ops}:{n}: {name} is a {typ}" + (f" with labels {', '.join(labels) or 'none'}" if labels is not None else ""),
          dtyp == typ and (labels is None or dlabels == labels),
          f"documented: {dtyp} with labels {', '.join(dlabels) or 'none'}")
for n, line in enumerate(text.splitlines(), 1):
    for name in re.findall(r"\bmembrane_[a-z0-9_]+", line):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in code and not (base in code and code[base][0] == "histogram"):
            fail(f"{ops}:{n}: names {name}, which controller/ does not register")

print()
print(f"{passed} passed, {len(failures)} failed")
if failures:
    print("failed:")
    for f in failures:
        print("  " + f)
    sys.exit(1)
PY

python3 "$tmp/check.py" "$membrane" "$tmp"
