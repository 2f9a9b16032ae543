"""benchmarks/footprint.py: a callgrind profile read into instruction counts, and the
code a request runs through made of two of them. (Running valgrind is the tool's
own job; these read profiles written here, in callgrind's format.)"""

from __future__ import annotations

from benchmarks.footprint import Site, footprint, instruction_counts, report

LIB = "/usr/lib/libpython3.11.so.1.0"
EXT = "/site/aiofasthttp/engine/connection.so"


def _profile(eval_count: int, send_count: int) -> list[str]:
    """A profile as callgrind writes one with --dump-instr=yes: names compressed,
    positions relative, a call's inclusive cost after its calls= line."""
    return f"""# callgrind format
version: 1
creator: callgrind-3.19.0
positions: instr line
events: Ir
ob=(1) {LIB}
fl=(1) ceval.c
fn=(1) eval
0x1000 10 {eval_count}
+4 * {eval_count}
+60 11 {eval_count}
cob=(2) {EXT}
cfi=(2) connection.c
cfn=(2) send
calls={send_count} 0x2000 5
* 11 900000
+2 12 3
ob=(2)
fl=(2)
fn=(2)
0x2000 5 {send_count}
+0x80 6 {send_count}
fn=(3) rare
0x2400 9 2
totals: 1
""".splitlines(keepends=True)


def test_each_instruction_counts_its_own_runs_not_its_calls() -> None:
    counts, functions = instruction_counts(_profile(100, 40))
    assert counts[Site(LIB, 0x1000)] == 100
    assert counts[Site(LIB, 0x1004)] == 100
    assert counts[Site(LIB, 0x1040)] == 100  # the call's 900,000 are send's, inclusive
    assert counts[Site(LIB, 0x1042)] == 3
    assert counts[Site(EXT, 0x2000)] == 40
    assert counts[Site(EXT, 0x2080)] == 40
    assert functions[Site(EXT, 0x2080)] == "send"  # "fn=(2)" names the callee's id
    assert functions[Site(EXT, 0x2400)] == "rare"
    assert functions[Site(LIB, 0x1040)] == "eval"


def test_the_footprint_is_the_lines_of_what_each_request_runs() -> None:
    many, functions = instruction_counts(_profile(200, 80))
    few, _ = instruction_counts(_profile(100, 40))
    found = footprint(many, few, functions, requests=100)
    # eval's 0x1000 and 0x1004 share a line, 0x1040 is the next; 0x1042's count did
    # not grow, and "rare" ran as often in both.
    assert found.by_object == {"libpython3.11.so.1.0": 2, "connection.so": 2}
    assert found.by_function == {
        ("libpython3.11.so.1.0", "eval"): 2,
        ("connection.so", "send"): 2,
    }
    assert found.total == 4
    text = report("plain", found)
    assert text.splitlines()[0] == "plain: 0.2 KiB of code per request (4 lines of 64 B)"


def test_code_run_less_than_once_in_sixteen_requests_is_left_out() -> None:
    many, functions = instruction_counts(_profile(200, 46))
    few, _ = instruction_counts(_profile(100, 40))
    # send ran 6 more times over 100 more requests: not on a request's path.
    found = footprint(many, few, functions, requests=100)
    assert found.by_object == {"libpython3.11.so.1.0": 2}
    many, _ = instruction_counts(_profile(200, 47))
    assert footprint(many, few, functions, requests=100).by_object["connection.so"] == 2
