package tracked

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRepository is what `make lint` runs: nothing git tracks in this
// repository is build output or oversized.
func TestRepository(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files, err := Files(root)
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	problems, err := Check(root, files, Allowed)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("tracked file refused: %s", p)
	}
}

// TestCheckRefuses: the check fails on each kind of build output and lets
// text, scripts and listed fixtures through.
func TestCheckRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), data, mode); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, MaxSize+1)
	for i := range big {
		big[i] = 'a'
	}
	write("mmsgate-soak", append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 64)...), 0o755)
	write("tool.exe", []byte("MZ\x90\x00"), 0o644)
	write("macho", []byte{0xcf, 0xfa, 0xed, 0xfe, 0, 0}, 0o755)
	write("blob", []byte("x\x00y"), 0o755)
	write("huge.json", big, 0o644)
	write("fixture.bin", big, 0o644)
	write("run", []byte("#!/bin/sh\necho hi\n"), 0o755)
	write("main.go", []byte("package main\n"), 0o644)
	write("data.bin", []byte("\x00\x01\x02"), 0o644) // binary data, not executable, small

	files := []string{"mmsgate-soak", "tool.exe", "macho", "blob", "huge.json", "fixture.bin", "run", "main.go", "data.bin", "gone"}
	got, err := Check(dir, files, []string{"fixture.bin"})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range got {
		paths = append(paths, p.Path)
	}
	want := []string{"mmsgate-soak", "tool.exe", "macho", "blob", "huge.json"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("refused (-want +got):\n%s", diff)
	}
}
