"""The profile section of docs/benchmarks.md: what the current code spends its time on
(issue 18 asks for "the profile after the change"). Written by hand from profiles taken
between benchmark runs; the figures elsewhere in the file come from the run itself."""

from __future__ import annotations

PROFILE_NOTES = """## Profile

Profiles of the current code on this machine (2026-12-02), taken between benchmark
runs: py-spy (`py-spy record -r 400 -f raw`, stacks folded into self and inclusive
shares) under the sustained load of section 9, and cProfile over
`benchmarks/inprocess.py` for the in-process path (call counts, own and inclusive time;
its shares lean towards code that makes many small calls).

A caution on py-spy here: it stops the process to take a sample, and a stopped thread
is seen most often just after a system call. asyncio's `get_running_loop()` makes one
(`getpid()`), so the lines that call it (`asyncio.current_task`, future creation,
`SqliteDatabase._submit`) show 6-15% of the samples, while timed directly inside the
benchmark `asyncio.current_task()` costs 0.25 µs, about 1% of a task. The shares
below leave those lines out.

**HTTP path, memory** (`taskq serve`): 57% of the samples serve requests (uvicorn's
httptools protocol and the fast path of `POST /tasks`; the endpoint 20%, of which the
use case's submit 9%; the response 9%, nearly all of it the one `send()` of head and
body), 31% run tasks (`Worker._process` 24%, the receive loop 7%), 8% is the event
loop's own `epoll`. Per accepted request the server spends about 160 µs of CPU against
the trivial endpoint's 40 µs (section 9): the in-process work of a task (50-55 µs, at
18,000-20,000 tasks/s in section 1) and the HTTP exchange around it. Even at no cost
for anything beyond what the trivial endpoint does, a task would take 40 + 50 µs: at
most about 0.44× the trivial endpoint's rate on one core, under issue 18's 0.5×.

**HTTP path, sqlite** (same load): 30% of the samples on the SQLite thread (each batch
of waiting calls in one transaction, the tasks' UPDATEs its largest part), 70% on the
event loop (the worker's path 31%, the request path 20%). A delivery's claim is one
round trip to the database thread (the read and the compare-and-set in one
transaction, `SqliteTaskRepository.claim_pending`) instead of two: about 4% less CPU
per accepted request, the same accepted rate within noise (3+3 alternated runs).
Then (2026-12-03): encoding the task into its row took 18% of the samples, most of it
for columns a transition leaves as they were (the payload, the creation, the extra
fields). A transition now writes only the columns whose values changed (and the
derived index keys): 10 of 24 for a claim, 9 for a completion, half the encoding time
(20 µs → 10 µs a transition). `python -m benchmarks.inprocess_wired --backend sqlite`
(the engine as serve wires it, no HTTP), 3 runs alternated against the commit before:
2,491-2,668 → 2,887-3,292 tasks/s, +15-23%. Then, later that day: the writes run on
a connection of the event loop's own (docs/sqlite.md, how calls run) instead of the
SQLite thread, which handed the GIL back and forth with the loop around every
statement (the thread's samples were a third of the total, 13% of them its own queue
handling). That connection never waits: `BEGIN IMMEDIATE` is tried once (the thread
takes the batch when another process holds the lock), it never checkpoints (the thread
does, every 64 of its transactions), and with `synchronous = FULL` everything stays on
the thread. Alternated against the commit before: `benchmarks.inprocess_wired --backend
sqlite` 1,912-2,199 → 2,321-2,690 tasks/s (+14-26%, 3 runs each); section 9's `taskq
serve` on sqlite 1,538-1,743 → 1,771-1,956 accepted/s (+12-16%, 3 runs), completing
0.996 of it; the split with one worker the same within noise (2,475-3,051 →
2,509-3,119 accepted/s) and completing 0.99-1.0 (0.90-0.97 before); 50 coroutines
inserting one row each, as fast as they can, on the bare `SqliteDatabase`: 366,700 →
566,600 rows in 4 s (+55%), the WAL ending at 1.8 MiB against 4.0. The profile under
section 9's load after the change: the thread has 8.5% of the samples (it had 38%), the
loop's batches 33% (the claim's read and compare-and-set 15% of it, encoding rows 7%).
A review then found, and the tests now cover: the loop's connection synced the WAL's
header each time it started the WAL again after a checkpoint (the thread now does that
write; `strace` shows no `fdatasync` on the loop's thread), `close()` from another
thread ran some gathered writes twice, and a batch that failed in an unforeseen way
left its callers waiting.

**API and workers in separate processes, sqlite** (2026-12-03; py-spy with `--idle` on
the API process and one of two workers, split run of section 9): the database threads
spent 34% (API) and 44% (worker) of their time inside `BEGIN IMMEDIATE`, asleep in
SQLite's busy handler (1, 2, 5, 10 ... 100 ms between tries) while another process held
the write lock or long after it had let it go; the worker's event loop was idle 89% of
the time. Writers now poll for the lock (50 µs doubling to 0.5 ms). Same measure, 4
alternated runs each of `python -m benchmarks.sustained --only split`: completed while
the load lasted 1,395-1,644 → 1,908-2,441 tasks/s, completed ÷ accepted 0.59-1.0 →
0.99-1.0, p99 ÷ p50 4-8 → 2.1-2.8. Measured by hand, not adopted: a blocking `flock` on
a lock file beside the database (the same figures within noise, but a wait without a
time limit and a file more); sending the message and storing the task in one write
transaction (no gain: the split run is bound by the CPU, not by the two round trips);
keeping the last tasks written in memory so a claim skips its read (about 3%
in-process, and the handler would get the submitter's own payload object instead of a
copy).

**Worker path, in-process memory** (cProfile, 20,000 tasks): 326 Python calls a task.
Inclusive: submitting 26% (validating and building the task 12%), the claim 9%, the
attempt and its finish 44% (recording the result 18%), telling the observers of the
three events 11% (the Prometheus collector 8%), the worker's receive loop 11%. Own
time: the memory store's indexes 10.5%, asyncio's own code 8%, the memory queue 6%,
the three `Task` copies (create, claim, complete) 4%. The collector's full collections
cost 8% more (20,000 tasks/s with them put off against 18,500 with the defaults); the
benchmark, as `taskq serve` does once started, freezes what start-up made first.

Changes of this round, each measured alternated against the commit before it
(`python -m benchmarks.inprocess --tasks 30000`): `Task` copies filled in through a
plain twin class of the same slots (0.7 µs a copy against 1.8 µs; +4%); task events
made the same way (0.27 µs against 0.82 µs, three a task); a task type reads once
whether its handler is async (`inspect.iscoroutinefunction` ran on every delivery);
the tracer that is off hands out one reusable null span instead of a generator context
manager; timer lanes remember the last loop's lanes (a weak-dictionary lookup less per
timer). Together +15-19% over the commit before them (f4bb0db), and 2.03-2.05× the
commit before issue 18's work (44ce3d8, with its own benchmark, three alternated runs).
Then (2026-12-03, another machine): a task's creation, claim and completion fill in
their fields from arguments (`slot_updater`) instead of looking each field up in a
dictionary of changes, +5.5% (medians of 5 alternated runs, 19,201 → 20,267 tasks/s).
Section 1's same-run ratio against 44ce3d8 now comes from every `make bench`.
"""
