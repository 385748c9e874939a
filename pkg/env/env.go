// Package env reads a function's configuration from its environment: one
// reader for the three functions, each variable read by one call of a
// table (Required, Duration, Int...), every problem kept and reported at
// once by Err, in the order the variables were read.
package env

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Reader reads variables through getenv and collects their problems.
type Reader struct {
	getenv func(string) string
	errs   []error
}

// New returns a reader of getenv (os.Getenv in main, a map in tests).
func New(getenv func(string) string) *Reader { return &Reader{getenv: getenv} }

// Err is every problem found so far, joined; nil when none.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// Fail records a problem found outside the reader (a rule across two
// variables, a value a package parses itself).
func (r *Reader) Fail(err error) {
	if err != nil {
		r.errs = append(r.errs, err)
	}
}

// Get is name's value, "" when unset.
func (r *Reader) Get(name string) string { return r.getenv(name) }

// String is name's value, def when unset.
func (r *Reader) String(name, def string) string {
	if v := r.getenv(name); v != "" {
		return v
	}
	return def
}

// Required reads each variable of vars into its string: unset ones are
// problems ("NAME is required").
func (r *Reader) Required(vars ...Var) {
	for _, v := range vars {
		*v.To = r.getenv(v.Name)
		if *v.To == "" {
			r.errs = append(r.errs, errors.New(v.Name+" is required"))
		}
	}
}

// Var is one required variable and where it goes.
type Var struct {
	Name string
	To   *string
}

// Duration reads a Go duration, def when unset; zeroOK allows "0" (off).
// A bad value is a problem and gives def.
func (r *Reader) Duration(name string, def time.Duration, zeroOK bool) time.Duration {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || (d == 0 && !zeroOK) {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want a duration such as 24h or 15m", name, v))
		return def
	}
	return d
}

// Int reads a whole number in [lo, hi], def when unset.
func (r *Reader) Int(name string, def, lo, hi int) int {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want %d-%d", name, v, lo, hi))
		return def
	}
	return n
}

// Float reads a number ≥ 0, def when unset.
func (r *Reader) Float(name string, def float64) float64 {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want a number ≥ 0", name, v))
		return def
	}
	return f
}

// Bool reads true or false, def when unset.
func (r *Reader) Bool(name string, def bool) bool {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want true or false", name, v))
		return def
	}
	return b
}

// List reads a comma-separated list, upper-cased and trimmed; def when
// unset, none when set to "-" or "none".
func (r *Reader) List(name string, def []string) []string {
	v := r.getenv(name)
	switch {
	case v == "":
		return def
	case v == "-" || strings.EqualFold(v, "none"):
		return nil
	}
	var out []string
	for _, c := range strings.Split(v, ",") {
		if c = strings.ToUpper(strings.TrimSpace(c)); c != "" {
			out = append(out, c)
		}
	}
	return out
}
