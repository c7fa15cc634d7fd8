"""Every bound the conformance runner puts on what comes from outside, in one place.

A driver's stdout and stderr, a broker's bytes and every piece of text copied
from them are cut to these sizes when they are read and when they are stored,
so that no driver or broker, however broken or hostile, can make a run use
unbounded memory, write unbounded reports or run without end.
docs/CONFORMANCE.md (sections 1 and 3) states them for driver authors.
"""

from __future__ import annotations

# -- the driver's stdout ---------------------------------------------------------------

#: The longest line read from a driver's stdout. A CONSUME reply carries up to 1 MiB of payload
#: in base64 (about 1.4 MB); a longer line breaks the contract and fails the pending command.
DRIVER_LINE_BYTES = 4 * 1024 * 1024

#: Lines read ahead of the runner; then the reader stops reading and the driver's writes block.
DRIVER_LINES_AHEAD = 4

#: The deepest nesting of arrays and objects a reply may have; a deeper line is not parsed.
JSON_DEPTH = 32

#: The most requests one ``pipeline`` command holds; a driver must take that many in one command.
#: Its reply is one line too: the suite keeps a pipeline's answers well under DRIVER_LINE_BYTES.
PIPELINE_REQUESTS = 2000

# -- the driver's stderr ---------------------------------------------------------------

#: The driver's stderr kept in memory at any time (its most recent bytes).
STDERR_KEEP_BYTES = 256 * 1024

#: The stderr shown with one case (its last bytes).
STDERR_CASE_BYTES = 16 * 1024

# -- text copied from a driver or a broker ----------------------------------------------

#: Characters kept of each line of the driver conversation shown in reports.
LOG_LINE_CHARS = 400

#: Lines of the driver conversation kept per case: the first ones, then the last ones.
LOG_HEAD_LINES = 150
LOG_TAIL_LINES = 50

#: Characters kept of the ``type`` and ``code`` of a driver's error object.
ERROR_NAME_CHARS = 64

#: Characters kept of the ``message`` of a driver's error object.
ERROR_MESSAGE_CHARS = 1000

#: Characters kept of a case's reason and of its note.
REASON_CHARS = 2000
NOTE_CHARS = 2000

# -- wire transcripts in the reports ----------------------------------------------------

#: Bytes of each direction of a connection kept with a case's result (a 1 MiB frame and more).
WIRE_KEEP_BYTES = 2 * 1024 * 1024

#: Bytes of connections kept with one case's result, all connections and directions together.
WIRE_CASE_BYTES = 8 * 1024 * 1024

#: Connections kept with one case's result.
WIRE_CONNECTIONS = 100

#: Bytes of each direction of a connection written to the JSON results (so ``compare`` shows them).
JSON_WIRE_BYTES = 16 * 1024

#: Segments (reads and writes with their times) kept per connection.
WIRE_SEGMENTS = 2000

#: Frames dissected per connection and direction in the reports.
WIRE_FRAMES = 200
#: The same for a passing case in the HTML report: enough to see its shape. A full run with a
#: pipelining driver made a 2.8 MB page without it (its 200- and 1,000-request pipelines), 1.7 MB with.
WIRE_FRAMES_PASSED = 30

#: Bytes of a payload shown in a frame's preview.
PAYLOAD_PREVIEW_BYTES = 32

#: Bytes shown in a raw hex dump.
HEXDUMP_BYTES = 1024

# -- the run ----------------------------------------------------------------------------

#: A driver that hangs, exits or breaks its contract in this many cases in a row is unusable:
#: the run ends early and every case not yet run is reported as not run.
DRIVER_FAULTS_IN_A_ROW = 3

# -- files read back (``mega-conformance compare``) --------------------------------------

#: The largest JSON results file ``compare`` reads.
RESULTS_FILE_BYTES = 64 * 1024 * 1024
