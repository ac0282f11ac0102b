"""pass@k for HumanEval-format problems: the unbiased estimator and a sandbox that runs generated code in a separate
process with time and memory limits, no network, and file writes confined to a temporary directory.

The sandbox is a guard for honest mistakes in generated code (infinite loops, stray writes, accidental downloads), in
the spirit of HumanEval's reliability_guard: it is not a security boundary against hostile code. Run untrusted
generations in a container or VM as well."""

import os
import subprocess
import sys
import tempfile

import numpy as np

GUARD = r'''
import builtins, io, os, resource, shutil, socket, subprocess, sys
_limit = {memory}
resource.setrlimit(resource.RLIMIT_AS, (_limit, _limit))
resource.setrlimit(resource.RLIMIT_CPU, ({cpu}, {cpu}))
_root = os.path.realpath(os.getcwd())

def _inside(path):
    return os.path.realpath(os.path.join(_root, os.fspath(path))).startswith(_root + os.sep)

_open = builtins.open
def _guarded_open(file, mode="r", *args, **kwargs):
    if any(m in mode for m in "wax+") and not (isinstance(file, int) or _inside(file)):
        raise PermissionError(f"sandbox: writing outside the working directory is not allowed: {{file}}")
    return _open(file, mode, *args, **kwargs)
builtins.open = io.open = _guarded_open

def _blocked(*args, **kwargs):
    raise PermissionError("sandbox: not allowed")
socket.socket = socket.create_connection = _blocked
for _name in ("system", "kill", "killpg", "fork", "forkpty", "putenv", "remove", "unlink", "removedirs", "rmdir",
              "rename", "renames", "replace", "truncate", "chmod", "chown", "symlink", "link", "execv", "execve"):
    if hasattr(os, _name):
        setattr(os, _name, _blocked)
shutil.rmtree = shutil.move = shutil.copyfile = _blocked
subprocess.Popen = _blocked
del _name
'''


def pass_at_k(n, c, k):
    """Unbiased pass@k (Chen et al., 2021): 1 - C(n-c, k) / C(n, k), computed as a stable product."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def run_sandboxed(program, timeout_s=5.0, memory_mb=512):
    """Run `program` in a fresh interpreter inside a temporary directory. Returns (status, output):
    status is 'passed' (exit 0), 'failed', or 'timeout'."""
    with tempfile.TemporaryDirectory(prefix="sandbox-") as workdir:
        source = GUARD.format(memory=memory_mb * 1024 * 1024, cpu=max(1, int(timeout_s) + 1)) + "\n" + program
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0", "HOME": workdir, "TMPDIR": workdir,
               "no_proxy": "*", "http_proxy": "http://0.0.0.0:9", "https_proxy": "http://0.0.0.0:9"}
        try:
            result = subprocess.run([sys.executable, "-I", "-c", source], cwd=workdir, env=env, capture_output=True,
                                    text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return "timeout", ""
        return ("passed" if result.returncode == 0 else "failed"), (result.stdout + result.stderr)[-2000:]


def humaneval_program(problem, completion):
    return f"{problem['prompt']}{completion}\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"
