"""The coverage-guided fuzz target for the compiled parser (atheris, i.e. libFuzzer).

Two modes, named in every run's first line of output:

``instrumented`` (the real thing)
    ``cext/_cparser.pyx`` is built again, out of tree in ``fuzz/build/``, with
    clang, ``-fsanitize=address,fuzzer-no-link``: libFuzzer sees the edges of
    the C code and AddressSanitizer checks every memory access. That module is
    loaded as ``aiofasthttp._cparser`` in a fuzzing process started with
    atheris's ``asan_with_fuzzer.so`` preloaded. It needs clang (with its
    compiler-rt) and atheris built from source against it, so that file exists:
    ``pip install --no-binary atheris atheris``. The installed package is not
    touched.

``python-coverage`` (the fallback, used when the above is missing)
    The installed, uninstrumented compiled parser runs for the crash check,
    and the pure-Python twin, instrumented by atheris, runs on the same input:
    libFuzzer is guided by the twin's Python coverage (which follows the same
    grammar), and the two parsers' traces must also agree.

The first two bytes of an input choose how the rest is fed: byte 0 the
methods, limits, EOF, the piece types and whether the heads are read in the
callbacks or only after the last feed; byte 1 where to cut (0 whole, 255
byte by byte, otherwise that many-seeded random cuts). Anything but a
``ProtocolError`` leaving ``feed()`` or ``feed_eof()`` is a crash; libFuzzer
saves the input to the findings directory.
"""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from .inputs import ROOT, TOKENS, all_seeds

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
FINDINGS = HERE / "findings"
CORPUS = HERE / "corpus"
PYX = ROOT / "cext" / "_cparser.pyx"
SANITIZE = "-fsanitize=address,fuzzer-no-link"
# The same directives as setup.py's build.
DIRECTIVES = "boundscheck=False,wraparound=False,cdivision=True,embedsignature=True"

METHOD_SETS: list[tuple[bytes | str, ...]] = [
    (),
    (b"HEAD",),
    (b"CONNECT",),
    ("GET", b"HEAD", b"get"),
]
LIMIT_SETS: list[dict[str, int]] = [
    {},
    {"max_head_size": 64},
    {"max_headers": 2, "max_chunk_line_size": 8},
    {"max_head_size": 48, "max_headers": 2, "max_chunk_line_size": 8},
]


# -- decoding an input ----------------------------------------------------------------


def decode(data: bytes) -> tuple[list[Any], tuple[bytes | str, ...], dict[str, int], bool]:
    """(pieces, methods, limits, eof) for a raw fuzz input."""
    if len(data) < 2:
        return [data], (), {}, True
    opts, split, payload = data[0], data[1], data[2:]
    methods = METHOD_SETS[opts & 3]
    limits = LIMIT_SETS[(opts >> 2) & 3]
    eof = not opts & 0x10
    if split == 0 or not payload:
        cuts: list[int] = []
    elif split == 255:
        cuts = list(range(1, len(payload)))
    else:
        rng = random.Random(split)
        cuts = sorted(rng.randrange(len(payload) + 1) for _ in range(1 + split % 7))
    pieces: list[Any] = []
    start = 0
    as_type = (opts >> 5) & 3
    for i, cut in enumerate([*cuts, len(payload)]):
        piece = payload[start:cut]
        start = cut
        kind = as_type if as_type < 3 else i % 3
        pieces.append(bytearray(piece) if kind == 1 else memoryview(piece) if kind == 2 else piece)
    return pieces, methods, limits, eof


def encode(payload: bytes, opts: int = 0, split: int = 0) -> bytes:
    return bytes([opts, split]) + payload


class _Sink:
    """Touches everything a head reports, so the lazy header list is built too.

    A lazy sink only keeps the heads; ``settle()`` reads them after the last feed.
    """

    __slots__ = ("head", "kept")

    def __init__(self, lazy: bool) -> None:
        self.head: Any = None
        self.kept: list[Any] | None = [] if lazy else None

    def on_head(self, head: Any) -> None:
        self.head = head
        self.on_informational(head)

    def on_informational(self, head: Any) -> None:
        if self.kept is None:
            _touch(head)
        else:
            self.kept.append(head)

    def on_body(self, chunk: Any) -> None:
        bytes(chunk)

    def on_complete(self) -> None:
        if self.head is not None and self.kept is None:
            _touch(self.head)

    def settle(self) -> None:
        for head in self.kept or ():
            _touch(head)


def _touch(head: Any) -> None:
    for name, value in head.headers:
        bytes(name), bytes(value)
    for name, value in head.trailers or ():
        bytes(name), bytes(value)
    repr(head)


def feed_compiled(compiled: ModuleType, protocol_error: type, data: bytes) -> None:
    """The crash check: only ProtocolError may escape; a failed parser refuses more input."""
    pieces, methods, limits, eof = decode(data)
    sink = _Sink(lazy=bool(data[:1]) and data[0] >= 0x80)
    parser = compiled.ResponseParser(sink, **limits)
    for method in methods:
        parser.expect(method)
    try:
        for piece in pieces:
            parser.feed(piece)
            _ = (parser.in_message, parser.upgraded, parser.upgraded_data())
        if eof:
            parser.feed_eof()
    except protocol_error:
        try:
            parser.feed(b"HTTP/1.1 200 OK\r\n\r\n")
        except protocol_error:
            pass
        else:
            raise AssertionError("a failed parser took more input") from None
        parser.feed_eof()
    sink.settle()


# -- building the instrumented module -------------------------------------------------


def module_path(build: Path = BUILD) -> Path:
    return build / ("_cparser" + sysconfig.get_config_var("EXT_SUFFIX"))


def preload_library() -> Path | None:
    """atheris's ASan runtime with libFuzzer linked in; only a source build of atheris has it."""
    try:
        spec = importlib.util.find_spec("atheris")
    except ImportError:
        return None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent.parent / "asan_with_fuzzer.so"
    return path if path.exists() else None


def build_instrumented(build: Path = BUILD, cc: str = "clang", log: Any = sys.stdout) -> Path:
    """Cythonize and compile cext/_cparser.pyx with sanitizer coverage and ASan into ``build``."""
    if shutil.which(cc) is None:
        raise RuntimeError(f"{cc} not found (apt-get install clang)")
    build.mkdir(parents=True, exist_ok=True)
    pyx = build / "_cparser.pyx"
    shutil.copyfile(PYX, pyx)
    c_file = build / "_cparser.c"
    subprocess.run(
        [sys.executable, "-m", "cython", "-3", "-X", DIRECTIVES, "-o", str(c_file), str(pyx)],
        check=True,
    )
    out = module_path(build)
    cmd = [
        cc,
        "-shared",
        "-fPIC",
        "-g",
        "-O1",
        "-fno-omit-frame-pointer",
        SANITIZE,
        "-I",
        sysconfig.get_paths()["include"],
        str(c_file),
        "-o",
        str(out),
    ]
    print(" ".join(cmd), file=log, flush=True)
    subprocess.run(cmd, check=True)
    symbols = subprocess.run(["nm", "-D", str(out)], capture_output=True, text=True).stdout
    for needed in ("__sanitizer_cov_8bit_counters_init", "__asan_report"):
        if needed not in symbols:
            raise RuntimeError(f"{out} has no {needed} symbol: not instrumented")
    print(f"built {out}", file=log, flush=True)
    return out


def load_module_from(path: Path) -> ModuleType:
    """Load the instrumented build as aiofasthttp._cparser (the package must not have one yet)."""
    name = "aiofasthttp._cparser"
    if name in sys.modules:
        raise RuntimeError(
            "aiofasthttp._cparser was imported already; set AIOFASTHTTP_NO_EXTENSIONS"
        )
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# -- the fuzzing process --------------------------------------------------------------


def fuzz_process(mode: str, libfuzzer_args: list[str]) -> None:
    """Inside the fuzzing process: set up the target and hand over to libFuzzer."""
    import atheris

    import aiofasthttp  # noqa: F401 - the package first, without its compiled parser
    from aiofasthttp.errors import ProtocolError

    from . import harness

    if mode == "instrumented":
        compiled = load_module_from(module_path())
        twin = None
    else:
        import aiofasthttp._cparser as compiled  # type: ignore[import-not-found, no-redef]

        sys.modules.pop("aiofasthttp.h1._pyparser", None)
        with atheris.instrument_imports(include=["aiofasthttp.h1._pyparser"]):
            import aiofasthttp.h1._pyparser as twin
    print(f"coverage target: mode={mode} compiled={compiled.__file__}", flush=True)

    def test_one_input(data: bytes) -> None:
        feed_compiled(compiled, ProtocolError, data)
        if twin is not None and len(data) >= 2:
            pieces, methods, limits, eof = decode(data)
            case = harness.Case(
                data=data[2:],
                cuts=tuple(_cuts_of(pieces)),
                methods=methods,
                limits=tuple(sorted(limits.items())),
                eof=eof,
                lazy_heads=data[0] >= 0x80,
            )
            a, b = harness.run(twin, case), harness.run(compiled, case)
            if a != b:
                raise AssertionError("the parsers disagree:\n" + harness.explain(a, b))

    atheris.Setup([sys.argv[0], *libfuzzer_args], test_one_input)
    atheris.Fuzz()


def _cuts_of(pieces: list[Any]) -> list[int]:
    cuts, at = [], 0
    for piece in pieces[:-1]:
        at += len(piece)
        cuts.append(at)
    return cuts


# -- the launcher ------------------------------------------------------------------


def write_seeds(corpus: Path) -> None:
    """The seeds as fuzz inputs (fed whole, and byte by byte), unless the corpus has files."""
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    for i, seed in enumerate(all_seeds()):
        opts = METHOD_SETS.index(seed.methods) if seed.methods in METHOD_SETS else 0
        (corpus / f"seed-{i:04d}").write_bytes(encode(seed.data, opts, 0))
        (corpus / f"seed-{i:04d}-split").write_bytes(encode(seed.data, opts | 0x90, 37))


def write_dictionary(path: Path) -> None:
    def quote(token: bytes) -> str:
        return (
            '"'
            + "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\x{b:02x}" for b in token)
            + '"'
        )

    extra = [b"HTTP/1.1", b"HTTP/1.0", b"\r\n", b"chunked", b"close", b"keep-alive", b"timeout="]
    path.write_text("".join(quote(t) + "\n" for t in TOKENS + extra))


def choose_mode(requested: str) -> tuple[str, str]:
    """("instrumented" | "python-coverage", why)."""
    if requested == "python":
        return "python-coverage", "requested"
    preload = preload_library()
    if preload is None:
        why = "atheris has no asan_with_fuzzer.so (pip install --no-binary atheris atheris)"
    elif shutil.which("clang") is None:
        why = "clang is not installed"
    else:
        try:
            if not module_path().exists() or module_path().stat().st_mtime < PYX.stat().st_mtime:
                build_instrumented()
            return "instrumented", f"{module_path()} with {preload.name} preloaded"
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            why = f"the instrumented build failed: {exc}"
    if requested == "instrumented":
        raise SystemExit(f"cannot fuzz instrumented: {why}")
    return "python-coverage", why


def launch(
    seconds: float,
    seed: int,
    findings: Path = FINDINGS,
    corpus: Path | None = None,
    mode: str = "auto",
    extra_args: list[str] | None = None,
) -> int:
    """Run the target for ``seconds`` in a fresh process; its exit status (0: nothing found)."""
    if importlib.util.find_spec("atheris") is None:
        raise SystemExit("atheris is not installed: pip install atheris")
    chosen, why = choose_mode(mode)
    print(f"coverage target: {chosen} ({why})", flush=True)
    findings.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aiofasthttp-cov-") as tmp:
        work = corpus if corpus is not None else Path(tmp) / "corpus"
        write_seeds(work)
        dictionary = Path(tmp) / "http.dict"
        write_dictionary(dictionary)
        args = [
            f"-max_total_time={max(1, int(seconds))}",
            f"-seed={seed}",
            f"-artifact_prefix={findings}/",
            f"-dict={dictionary}",
            "-max_len=12288",  # room for a head followed by more than 4 KiB in one feed
            "-timeout=10",
            "-rss_limit_mb=4096",
            "-print_final_stats=1",
            *(extra_args or []),
            str(work),
        ]
        env = dict(os.environ)
        env["AIOFASTHTTP_NO_EXTENSIONS"] = "1" if chosen == "instrumented" else ""
        if chosen == "instrumented":
            env["LD_PRELOAD"] = str(preload_library())
            env["ASAN_OPTIONS"] = "detect_leaks=0:allocator_may_return_null=1"
        before = set(findings.iterdir())
        cmd = [sys.executable, "-m", "fuzz.coverage_target", "--run", chosen]
        status = subprocess.run([*cmd, *args], cwd=str(ROOT), env=env).returncode
        for artifact in sorted(set(findings.iterdir()) - before):
            print(f"coverage target: FINDING {artifact}", flush=True)
            if artifact.name.startswith("crash-"):
                _minimise_artifact(cmd, artifact, env)
        return status


def _minimise_artifact(cmd: list[str], artifact: Path, env: dict[str, str]) -> None:
    """libFuzzer's own crash minimisation, for up to a minute; writes minimized-from-* files."""
    args = ["-minimize_crash=1", "-max_total_time=60", f"-exact_artifact_path={artifact}.min"]
    subprocess.run(
        [*cmd, *args, str(artifact)], cwd=str(ROOT), env=env, capture_output=True, check=False
    )
    if Path(f"{artifact}.min").exists():
        print(f"coverage target: minimised to {artifact}.min", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--run":
        fuzz_process(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) > 1 and sys.argv[1] == "--build":
        build_instrumented()
    else:
        sys.exit("use: python -m fuzz --target coverage --seconds N [--seed S]")
