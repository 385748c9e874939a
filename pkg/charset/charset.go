// Package charset decodes the non-UTF-8 encodings an XML document from
// Skycore may declare. Only single-byte Latin encodings are expected; they
// are small enough to map here instead of adding golang.org/x/text.
package charset

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// cp1252 maps 0x80-0x9F of windows-1252; 0 means undefined (kept as C1).
var cp1252 = [32]rune{
	0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
	0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
}

// NewReader is an xml.Decoder CharsetReader for ISO-8859-1 (Latin-1),
// windows-1252 and US-ASCII; UTF-8 passes through.
func NewReader(label string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "utf-8", "utf8", "":
		return input, nil
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "iso_8859-1", "us-ascii", "ascii":
		return &latin{r: bufio.NewReader(input)}, nil
	case "windows-1252", "cp1252":
		return &latin{r: bufio.NewReader(input), win: true}, nil
	}
	return nil, fmt.Errorf("unsupported charset %q", label)
}

type latin struct {
	r   *bufio.Reader
	win bool
}

func (l *latin) Read(p []byte) (int, error) {
	n := 0
	for n+utf8.UTFMax <= len(p) {
		b, err := l.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		r := rune(b)
		if l.win && b >= 0x80 && b <= 0x9F && cp1252[b-0x80] != 0 {
			r = cp1252[b-0x80]
		}
		n += utf8.EncodeRune(p[n:], r)
	}
	if n == 0 && len(p) > 0 {
		return 0, io.ErrShortBuffer
	}
	return n, nil
}
