// Package tracked checks what git tracks for build output: `make lint` fails
// when a tracked file is an executable binary or larger than MaxSize, so a
// built tool (`go build` at the root) never lands in a commit. Fixtures that
// must stay are listed by path in Allowed, never matched by pattern.
package tracked

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// MaxSize is the largest file git may track, fixtures in Allowed excepted.
const MaxSize = 1 << 20

// Allowed lists, by exact path, the tracked files the check lets through.
// Adding one is a reviewed decision: say why beside it.
var Allowed = []string{}

// magics are the first bytes of the executable formats Go builds.
var magics = [][]byte{
	[]byte("\x7fELF"),        // Linux, BSD
	[]byte("MZ"),             // Windows PE
	{0xfe, 0xed, 0xfa, 0xce}, // Mach-O 32-bit
	{0xfe, 0xed, 0xfa, 0xcf}, // Mach-O 64-bit
	{0xce, 0xfa, 0xed, 0xfe}, // Mach-O 32-bit, little-endian
	{0xcf, 0xfa, 0xed, 0xfe}, // Mach-O 64-bit, little-endian
	{0xca, 0xfe, 0xba, 0xbe}, // Mach-O universal
	[]byte("\x00asm"),        // WebAssembly
}

// Problem is one tracked file the check refuses.
type Problem struct {
	Path   string
	Reason string
}

func (p Problem) String() string { return p.Path + ": " + p.Reason }

// Files lists what git tracks under root.
func Files(root string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files: %w", err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00"), nil
}

// Check reads each of files (relative to root) and reports every one that is
// an executable binary or larger than MaxSize, unless it is in allowed.
// A file listed by git but gone from the work tree is skipped: it is about
// to be removed.
func Check(root string, files, allowed []string) ([]Problem, error) {
	var problems []Problem
	for _, f := range files {
		if f == "" || slices.Contains(allowed, f) {
			continue
		}
		fh, err := os.Open(filepath.Join(root, f))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		info, err := fh.Stat()
		if err != nil {
			fh.Close()
			return nil, err
		}
		head := make([]byte, 8000)
		n, err := io.ReadFull(fh, head)
		fh.Close()
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return nil, err
		}
		head = head[:n]
		switch {
		case isExecutable(head, info.Mode()):
			problems = append(problems, Problem{f, "an executable binary (build output: build into .bin/ or use go run)"})
		case info.Size() > MaxSize:
			problems = append(problems, Problem{f, fmt.Sprintf("%d bytes, over the %d-byte limit (list it in tracked.Allowed if it is a fixture)", info.Size(), MaxSize)})
		}
	}
	return problems, nil
}

// isExecutable: an executable format's magic, or the executable bit on a
// file with NUL bytes (a script with a shebang is text and passes).
func isExecutable(head []byte, mode os.FileMode) bool {
	for _, m := range magics {
		if bytes.HasPrefix(head, m) {
			return true
		}
	}
	return mode&0o111 != 0 && bytes.IndexByte(head, 0) >= 0
}
