"""The grading kernel: one student's code in a process that can do little else.

``python -m cs_utils.sandbox -f CONNECTION_FILE --settings JSON`` starts an
IPython kernel the way ``ipykernel_launcher`` does, after it has

1. asked Linux to kill it when the process that started it dies
   (``PR_SET_PDEATHSIG``), so that no kernel outlives its grader;
2. set resource limits: address space (memory), CPU seconds, size of the
   files it writes, no core dumps;
3. dropped root privileges to an unprivileged user, when the settings ask for
   one and that user can run this interpreter (``usable_user``);
4. loaded the instructor's modules (numpy, the grading checks, whatever the
   locked cells import) and taken a snapshot of their namespaces;
5. installed an audit hook (PEP 578; it cannot be removed once added) that
   refuses, for the rest of the process's life: opening, listing or changing
   files outside the kernel's private folder and the installed software;
   starting processes; network sockets; ctypes calls and foreign libraries;
   unpickling anything but array and tensor data; trace functions
   (``sys.settrace``), profile functions other than the grading module's
   reference guard, new audit hooks, ``gc``'s object walks; signals to other
   processes; changing resource limits.

The grader (:mod:`cs_utils.autograde`) runs only instructor code and student
code that passed its static policy in this kernel; the hook is the second
line, for whatever the policy cannot see (a library reading a file for the
student, a pickle that would call ``eval``). ``Referee`` is the third: between
cells it checks that the instructor's modules and names still hold what they
held, puts back anything that changed, and says so.

Everything here runs inside the grading kernel, so it imports little at module
level and never imports the grader's side.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys

__all__ = ["main", "install_policy", "Referee", "usable_user", "kernel_settings"]

# Modules whose namespaces the referee snapshots when they are loaded.
WATCHED_MODULES = (
    "builtins",
    "math",
    "numpy",
    "numpy.testing",
    "numpy.linalg",
    "numpy.random",
    "cs_utils.grading",
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "matplotlib.pyplot",
)

# Classes that a pickle may rebuild inside the kernel: arrays, tensors and plain
# containers. Anything else (builtins.eval, os.system, ...) is refused.
_PICKLE_MODULES = ("numpy", "torch", "collections", "copyreg", "_codecs")
_PICKLE_BUILTINS = frozenset({"set", "frozenset", "complex", "slice", "range", "bytearray", "list", "dict", "tuple"})

# Creating a socket is harmless (asyncio's self-pipe is a socketpair); reaching anything with it is not.
_NETWORK_EVENTS = ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
                   "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo", "socket.sethostname", "urllib.", "http.client.", "ftplib.", "smtplib.", "poplib.", "imaplib.",
                   "nntplib.", "telnetlib.", "webbrowser.")
_PROCESS_EVENTS = frozenset({
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.startfile",
    "subprocess.Popen", "pty.spawn", "os.add_dll_directory",
})
_FORBIDDEN_EVENTS = frozenset({
    "sys.settrace", "sys.addaudithook", "sys._current_frames", "gc.get_objects", "gc.get_referrers",
    "gc.get_referents", "resource.setrlimit", "resource.prlimit", "builtins.input", "builtins.input/result",
    "os.chroot", "os.setuid", "os.setgid", "os.setreuid", "os.setregid", "os.setresuid", "os.setresgid",
    "os.setgroups", "os.mknod", "os.mkfifo", "os.link", "os.symlink", "os.chown", "os.lchown",
    "fcntl.ioctl", "sqlite3.enable_load_extension", "sqlite3.load_extension",
})
# event -> positions of the arguments that are paths it writes (w) or reads (r)
_PATH_EVENTS = {
    "os.listdir": "r", "os.scandir": "r", "glob.glob": "r", "glob.glob/2": "r", "os.chdir": "r",
    "os.mkdir": "w", "os.rmdir": "w", "os.remove": "w", "os.rename": "ww", "os.truncate": "w",
    "os.utime": "w", "os.chmod": "w", "os.chflags": "w", "os.setxattr": "w", "os.removexattr": "w",
    "os.getxattr": "r", "os.listxattr": "r", "shutil.rmtree": "w", "shutil.copyfile": "rw",
    "shutil.copymode": "rw", "shutil.copystat": "rw", "shutil.copytree": "rw", "shutil.move": "ww",
    "shutil.make_archive": "w", "shutil.unpack_archive": "rw", "tempfile.mkstemp": "w", "tempfile.mkdtemp": "w",
    "sqlite3.connect": "r", "dbm.open": "r", "fcntl.flock": "", "fcntl.lockf": "",
}


class PolicyViolation(PermissionError):
    """Something the grading kernel does not allow (raised by the audit hook)."""


# --------------------------------------------------------------------------
# limits and privileges (before anything of the student's runs)
# --------------------------------------------------------------------------


def _set_parent_death_signal() -> None:
    """Linux: SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        if os.getppid() == 1:  # the parent died before we got here
            os._exit(1)
    except (OSError, AttributeError):
        pass


def _apply_limits(memory_mb: int | None, cpu_seconds: int | None, file_mb: int | None) -> None:
    """Soft and hard limits for this process and anything it could start."""

    def cap(which: int, value: int) -> None:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value if which != resource.RLIMIT_CPU else value + 5))

    if memory_mb:
        cap(resource.RLIMIT_AS, int(memory_mb) * 2**20)
    if cpu_seconds:
        # SIGXCPU at the soft limit (default action: terminate), SIGKILL 5 s later
        cap(resource.RLIMIT_CPU, int(cpu_seconds))
    if file_mb:
        cap(resource.RLIMIT_FSIZE, int(file_mb) * 2**20)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _path_chain_usable(path: str, uid: int, gid: int) -> bool:
    """Can user uid:gid traverse every folder above ``path`` and read it?"""
    import stat

    path = os.path.realpath(path)
    parts = path.split(os.sep)
    for i in range(1, len(parts)):
        folder = os.sep.join(parts[:i]) or os.sep
        try:
            st = os.stat(folder)
        except OSError:
            return False
        if st.st_uid == uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == gid:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
    try:
        st = os.stat(path)
    except OSError:
        return False
    return bool(st.st_mode & (stat.S_IROTH | stat.S_IXOTH))


def usable_user(name: str | None) -> tuple[int, int] | None:
    """``(uid, gid)`` of user ``name`` if this process may switch to it (it runs as root) and that
    user can run this interpreter and read its libraries; None otherwise."""
    if not name or os.name != "posix" or os.geteuid() != 0:
        return None
    try:
        import pwd

        entry = pwd.getpwnam(name)
    except (KeyError, ImportError):
        return None
    uid, gid = entry.pw_uid, entry.pw_gid
    needed = [sys.executable, os.path.realpath(sys.executable), sys.prefix, sys.base_prefix,
              os.path.dirname(os.__file__), os.path.dirname(os.path.dirname(__file__))]
    if all(_path_chain_usable(p, uid, gid) for p in needed):
        return uid, gid
    return None


def _drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise RuntimeError("could not drop root privileges")


# --------------------------------------------------------------------------
# the audit hook
# --------------------------------------------------------------------------


def install_policy(read_roots, write_roots, profile_codes=()) -> None:
    """Install the audit hook that confines this process (see the module docstring).

    ``read_roots``: folders whose files may be read (installed software, the
    kernel's private folder); ``write_roots``: folders whose files may be
    written. ``profile_codes``: code objects allowed to call ``sys.setprofile``
    (the grading module's reference guard). Cannot be undone.
    """
    realpath = os.path.realpath
    sep = os.sep

    def norm(path: str) -> str:
        return realpath(path).rstrip(sep) + sep

    reads = tuple(sorted({norm(p) for p in read_roots} | {norm(p) for p in write_roots}))
    writes = tuple(sorted({norm(p) for p in write_roots}))
    exact_reads = frozenset({"/dev/null", "/dev/urandom", "/dev/random", "/dev/zero", "/etc/localtime",
                             "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/etc/timezone"})
    allowed_profile = frozenset(profile_codes)
    # The process list and each process's stat line (ipykernel lists its children on shutdown);
    # never another process's memory, environment or files.
    proc_pattern = __import__("re").compile(r"/proc(/\d+(/stat)?)?\Z")
    proc_ok = proc_pattern.match
    my_pid = os.getpid()
    _getframe = sys._getframe

    # Every name the hook uses is bound here, as a default argument, so that
    # nothing the student does to a module or to builtins can change it.
    def hook(event, args, *, _str=str, _bytes=bytes, _int=int, _isinstance=isinstance,
             _fspath=os.fspath, _realpath=realpath, _reads=reads, _writes=writes, _exact=exact_reads,
             _Violation=PolicyViolation, _path_events=_PATH_EVENTS, _forbidden=_FORBIDDEN_EVENTS,
             _process=_PROCESS_EVENTS, _network=_NETWORK_EVENTS, _pickle_modules=_PICKLE_MODULES,
             _pickle_builtins=_PICKLE_BUILTINS, _pid=my_pid, _profile=allowed_profile, _frame=_getframe,
             _sep=sep, _O_WRITE=os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC,
             _own_proc=f"/proc/{my_pid}/", _system_info=("/sys/devices/system/cpu", "/sys/fs/cgroup"),
             _proc_ok=proc_ok, _type=type, _function=type(install_policy)):

        def check(path, write):
            if _isinstance(path, _int) or path is None:
                return  # an already open file descriptor, or "the current folder" of a listing
            try:
                text = _fspath(path)
                if _isinstance(text, _bytes):
                    text = text.decode("utf-8", "surrogateescape")
                real = _realpath(text)
            except Exception:
                raise _Violation(f"the grader does not let this submission use the path {path!r}") from None
            if not write and (real in _exact or real.startswith(_own_proc) or real.startswith(_system_info)
                              or (real.startswith("/proc/") and _proc_ok(real))):
                return
            roots = _writes if write else _reads
            candidate = real + _sep
            for root in roots:
                if candidate.startswith(root):
                    return
            verb = "write" if write else "read"
            raise _Violation(f"the grader does not let this submission {verb} {text} "
                             f"(only its own folder and the installed software)")

        if event == "open":
            path, mode, flags = (args + (None, None, None))[:3]
            write = False
            if _isinstance(mode, _str) and any(c in mode for c in "wax+"):
                write = True
            if _isinstance(flags, _int) and flags & _O_WRITE:
                write = True
            check(path, write)
        elif event in _path_events:
            kinds = _path_events[event]
            for index, kind in enumerate(kinds):
                if index < len(args):
                    check(args[index], kind == "w")
        elif event in _forbidden:
            raise _Violation(f"the grader does not allow {event} in a submission")
        elif event in _process or event.startswith(_network):
            raise _Violation(f"the grader does not let a submission start processes or use the network ({event})")
        elif event.startswith("ctypes."):
            if event == "ctypes.dlopen" and args and _isinstance(args[0], _str):
                check(args[0], False)  # a library of the installed software (torch loads its own)
                return
            raise _Violation(f"the grader does not allow ctypes in a submission ({event})")
        elif event == "pickle.find_class":
            module, name = (args + ("", ""))[:2]
            if module == "builtins" and name in _pickle_builtins:
                return
            if _isinstance(module, _str) and module.split(".")[0] in _pickle_modules:
                return
            raise _Violation(f"the grader does not let a pickle create {module}.{name}")
        elif event == "sys.setprofile":
            caller = _frame(1).f_code
            if caller not in _profile:
                raise _Violation("the grader does not let a submission install a profile function")
        elif event in ("os.kill", "os.killpg", "signal.pthread_kill", "signal.pidfd_send_signal"):
            if not (args and args[0] in (_pid, 0)):
                raise _Violation("the grader does not let a submission signal other processes")
        elif event in ("object.__setattr__", "object.__delattr__"):
            # CPython audits assigning a function's __code__ (and a few attributes that libraries
            # set as they load, such as a module's __class__): replacing the code of a library
            # function is refused; the notebook's own functions are its business.
            target = args[0] if args else None
            name = args[1] if len(args) > 1 else None
            if name != "__code__":
                return
            owner = target.__module__ if _type(target) is _function else _type(target).__module__
            if owner != "__main__":
                raise _Violation(f"the grader does not let a submission change {args[1]!r} of {owner} objects")
        elif event == "mmap.__new__":
            if args and args[0] != -1:
                raise _Violation("the grader does not let a submission map files into memory")

    sys.addaudithook(hook)


# --------------------------------------------------------------------------
# the referee: instructor modules and names stay what they were
# --------------------------------------------------------------------------

_MISSING = object()


class Referee:
    """Snapshots of the instructor's modules and names, checked between cells.

    ``snapshot_modules`` records the namespaces of ``WATCHED_MODULES`` once, at
    start; ``snapshot_names(names)`` records what the instructor cells bound to
    ``names`` (after each instructor cell). ``verify()`` puts back every module
    attribute and every name that changed since, and returns what it put back,
    so that a test cell always runs with the real comparison helpers.
    """

    def __init__(self, user_ns: dict, shell=None) -> None:
        self.user_ns = user_ns
        self.modules: dict[str, tuple[object, dict]] = {}
        self.names: dict[str, object] = {}
        self.shell = shell
        self.hooks: dict[str, object] = {}
        self.shell_attributes: set[str] = set()
        if shell is not None:
            self.snapshot_hooks()

    # IPython's and the interpreter's hooks that decide what a cell runs and how its errors are
    # reported: input and AST transformers, custom exception handlers, event callbacks, the
    # display and exception hooks, the output streams.
    _LISTS = ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")
    _VALUES = ("custom_exceptions", "CustomTB")
    _SYS = ("excepthook", "displayhook", "stdout", "stderr")

    def snapshot_hooks(self) -> None:
        shell = self.shell
        for name in self._LISTS:
            self.hooks[name] = list(getattr(shell, name, []))
        for name in self._VALUES:
            self.hooks[name] = getattr(shell, name, None)
        self.hooks["events"] = {k: list(v) for k, v in getattr(shell.events, "callbacks", {}).items()}
        for name in self._SYS:
            self.hooks["sys." + name] = getattr(sys, name)
        self.shell_attributes = set(vars(shell))

    def _verify_hooks(self) -> list[str]:
        if self.shell is None:
            return []
        shell, changed = self.shell, []
        for name in self._LISTS:
            current = getattr(shell, name, None)
            saved = self.hooks[name]
            if not isinstance(current, list):
                setattr(shell, name, list(saved))
                changed.append(f"IPython {name}")
            elif len(current) != len(saved) or any(a is not b for a, b in zip(current, saved)):
                current[:] = saved
                changed.append(f"IPython {name}")
        for name in self._VALUES:
            if getattr(shell, name, None) is not self.hooks[name]:
                setattr(shell, name, self.hooks[name])
                changed.append(f"IPython {name}")
        callbacks = getattr(shell.events, "callbacks", {})
        for event, saved in self.hooks["events"].items():
            current = callbacks.get(event)
            if current is None or len(current) != len(saved) or any(a is not b for a, b in zip(current, saved)):
                callbacks[event] = list(saved)
                changed.append(f"IPython event {event}")
        for name in self._SYS:
            if getattr(sys, name) is not self.hooks["sys." + name]:
                setattr(sys, name, self.hooks["sys." + name])
                changed.append(f"sys.{name}")
        for name in set(vars(shell)) - self.shell_attributes:
            if callable(getattr(type(shell), name, None)):  # an instance attribute hiding a method
                delattr(shell, name)
                changed.append(f"IPython shell.{name}")
        if sys.gettrace() is not None:
            try:
                sys.settrace(None)
                changed.append("sys.settrace")
            except Exception:
                pass
        return changed

    def snapshot_modules(self, names=WATCHED_MODULES) -> None:
        for name in names:
            module = sys.modules.get(name)
            if module is not None and name not in self.modules:
                self.modules[name] = (module, dict(vars(module)))

    def snapshot_names(self, names) -> None:
        for name in names:
            value = self.user_ns.get(name, _MISSING)
            if value is not _MISSING:
                self.names[name] = value
        self.snapshot_modules()  # modules the instructor cells imported since

    def verify(self) -> list[str]:
        changed = self._verify_hooks()
        for name, (module, saved) in self.modules.items():
            if sys.modules.get(name) is not module:
                sys.modules[name] = module
                changed.append(f"sys.modules[{name!r}]")
            current = vars(module)
            for key, value in saved.items():
                now = current.get(key, _MISSING)
                if now is value:
                    continue
                if _library_wrapper(now, value, name):
                    saved[key] = now  # the library wrapped its own function as it loaded more of itself
                    continue
                current[key] = value
                changed.append(f"{name}.{key}")
            if "__getattr__" in current and "__getattr__" not in saved:
                del current["__getattr__"]
                changed.append(f"{name}.__getattr__")
        for name, value in self.names.items():
            if self.user_ns.get(name, _MISSING) is not value:
                self.user_ns[name] = value
                changed.append(name)
        return changed


def _library_wrapper(new, old, module: str) -> bool:
    """``new`` is the package's own wrapper of ``old`` (torch wraps some of its functions lazily)."""
    package = module.split(".")[0]
    owner = getattr(new, "__module__", None) or ""
    if owner.split(".")[0] != package:
        return False
    seen = 0
    while new is not None and seen < 10:
        new = getattr(new, "__wrapped__", None)
        if new is old:
            return True
        seen += 1
    return False


# --------------------------------------------------------------------------
# the kernel launcher
# --------------------------------------------------------------------------


def kernel_settings(argv: list[str]) -> tuple[str, dict, list[str]]:
    """Split ``-f CONNECTION --settings JSON [kernel args...]``."""
    connection, settings, rest = None, {}, []
    i = 0
    while i < len(argv):
        if argv[i] == "-f" and i + 1 < len(argv):
            connection = argv[i + 1]
            i += 2
        elif argv[i] == "--settings" and i + 1 < len(argv):
            settings = json.loads(argv[i + 1])
            i += 2
        else:
            rest.append(argv[i])
            i += 1
    if connection is None:
        raise SystemExit("usage: python -m cs_utils.sandbox -f CONNECTION_FILE --settings JSON")
    return connection, settings, rest


def main(argv: list[str] | None = None) -> None:
    connection, settings, rest = kernel_settings(list(sys.argv[1:] if argv is None else argv))
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]  # as ipykernel_launcher does: the student's folder is not a package source
    _set_parent_death_signal()
    _apply_limits(settings.get("memory_mb"), settings.get("cpu_seconds"), settings.get("file_mb"))
    ids = settings.get("uid_gid")
    if ids:
        _drop_privileges(int(ids[0]), int(ids[1]))

    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(["-f", connection, "--IPKernelApp.log_level=ERROR", "--HistoryManager.enabled=False", *rest])

    import importlib

    for name in ["numpy", "cs_utils.grading", "matplotlib", "matplotlib.pyplot",
                 "matplotlib_inline.backend_inline", *settings.get("preload", [])]:
        try:
            importlib.import_module(name)
        except Exception:  # a locked cell will report the same error where it matters
            pass
    shell = app.shell
    referee = Referee(shell.user_ns, shell)
    referee.snapshot_modules()
    import builtins

    builtins.__cs_referee__ = referee  # reachable by the grader's silent requests, not by vetted code
    from cs_utils.grading import ReferenceGuard

    profile_codes = [ReferenceGuard.__enter__.__code__, ReferenceGuard.__exit__.__code__]
    import threading

    profile_codes.append(threading.Thread._bootstrap_inner.__code__)
    if settings.get("policy", True):
        install_policy(settings.get("read_roots", []), settings.get("write_roots", []), profile_codes)
    app.start()


if __name__ == "__main__":
    main()
