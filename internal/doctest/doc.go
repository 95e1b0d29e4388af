// Package doctest keeps the documentation honest. It finds the shell
// blocks of README.md and docs/*.md that are marked runnable, runs them on
// loopback against freshly built binaries, and reads the generated derper
// flag tables of docs/operating.md and docs/flags.md back to hold them
// against the binary's own -h output, so that a test fails when either
// drifts from the code. (The tables are written by one generator,
// cmd/derper's TestFlagsDoc, which `make docs` runs.)
//
// # Marking a block runnable
//
// An HTML comment on the line just before a fenced code block marks it:
//
//	<!-- doctest -->
//	```sh
//	stunc 127.0.0.1 3478
//	```
//
// The comment is invisible in rendered Markdown. Words after "doctest" are
// options, either bare or key=value (values may be double-quoted):
//
//   - background: start the block and keep it running while the later
//     blocks of the same file run; it is stopped (SIGTERM to its process
//     group, then SIGKILL) when the file is done.
//   - ready=URL: with background, wait until an HTTP GET of URL gets any
//     answer (for https, with any certificate) before going on.
//   - expect=TEXT: the block's combined output must contain TEXT.
//   - fail: the block must exit with a non-zero status.
//   - dir=repo: run in the repository root instead of the file's scratch
//     directory.
//   - needs=CMD[,CMD]: skip the block, saying why, when a command is not
//     installed.
//   - timeout=DURATION: how long the block may run (default 60s).
//
// Blocks run under bash with -e and -o pipefail, one scratch directory and
// HOME per Markdown file, with derper, derpprobe and stunc (built from this
// checkout) first on PATH. So that tests never collide with a relay already
// running on the machine, the well-known ports of DocPorts that appear in a
// block or an option are replaced by free loopback ports, the same
// replacement for a whole file.
package doctest
